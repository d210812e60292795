"""The run config: typed sections loaded from YAML, with dotted `--set key=value` overrides.

Precedence: model defaults < YAML file < `--set`. Unknown keys are errors that name the key,
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from activeit.errors import ConfigError
from activeit.metrics import FLAT_METRICS


AUTO_SPLIT = "auto"
"""`data.split` that draws the lists from the data itself."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    path: str = "bundled:demo"
    """An NI-style directory (`tasks/`, `splits/`), a flat task directory, a JSONL/JSON
    instruction dataset, or `bundled:demo`."""
    split: str = "default"
    """A split name under `<path>/splits/`, a split directory (reference `init/` layout or NI lists), or
    `auto`: draw the lists with the seed from every task of the data (for a JSONL/JSON instruction
    dataset or a task directory without `splits/`): `held_out` test tasks, `dev` dev tasks,
    `rounds.initial` initial train tasks, the rest is the pool. `activeit split` writes such a draw."""
    held_out: int = Field(0, ge=0)
    """`split: auto`: tasks held out as the test set (evaluated every round, never trained on)."""
    dev: int = Field(0, ge=0)
    """`split: auto`: tasks drawn as the dev set (best-checkpoint selection); 0: keep the last checkpoint."""
    metadata: str | None = None
    """TSV/JSON with per-task `kind` / `categories`, or the reference's `task_metadata.json`
    (cls iff `DefHasLabel` is `ExactMentioned`); every task used must be in it. Default: infer kinds."""
    test_tasks: str | None = None
    """Where a split's dev and test lists overlap (the reference's files), the tasks of this list
    are test and the rest dev. Default: `<path>/splits/default/test_tasks.txt` (NI's official list)."""

    @model_validator(mode="after")
    def _auto_only(self) -> DataConfig:
        if self.split != AUTO_SPLIT and (self.held_out or self.dev):
            raise ValueError(f"data.held_out and data.dev are drawn only with data.split: {AUTO_SPLIT}; the split "
                             f"{self.split!r} gives its own dev and test lists")
        return self


class ModelConfig(Section):
    name: str = "smollm2-135m"
    """HF model id, local directory, `.gguf` file, or alias such as `smollm2-135m`."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    trust_remote_code: bool = False
    chat_template: bool = False
    revision: str | None = None
    cache_dir: str | None = None
    """Where converted GGUF checkpoints are cached (default: ~/.cache/activeit)."""


class PromptConfig(Section):
    num_pos_examples: int = Field(2, ge=0)
    add_definition: bool = True
    max_source_length: int = Field(1024, ge=16)
    max_target_length: int = Field(128, ge=1)
    stop_strings: list[str] = Field(default_factory=lambda: ["\n"])
    """Causal-model generation also stops at the first token containing one of these."""


class ScoringConfig(Section):
    instances: int = Field(10, ge=1)
    """n: instances sampled per task."""
    perturbations: int = Field(10, ge=1)
    """K: perturbed prompts per task (plus the original)."""
    drop_rate: float = Field(0.2, ge=0.0, le=1.0)
    target: Literal["definition", "examples", "both"] = "both"
    perturb_input: bool = False
    """Also drop words of the scored instance's input in each perturbed prompt (an instruction dataset's
    task has one instance, so its short instruction is often all there is to perturb); false: the reference."""
    redraw_identical: int = Field(0, ge=0)
    """Draw a perturbation again, up to this many times, while its texts equal the original prompt's
    (a 3-word instruction at drop rate 0.2 is left whole 51% of the time); deterministic with the seed.
    0: keep identical perturbations (the reference). Records flag identical prompts either way."""
    label: Literal["predicted", "gold"] = "predicted"
    mask: bool = False
    absolute: bool = True
    aggregate: Literal["mean", "std"] = "mean"
    extra_examples: int = Field(20, ge=0)
    """`target: examples` draws demonstrations from positive examples + this many unscored instances."""
    batch_size: int = Field(32, ge=1)
    max_new_tokens: int | None = Field(None, ge=1)
    """Greedy-label length limit; null: the reference's, `prompt.max_target_length` tokens in all, i.e.
    max_target_length - 1 new tokens for seq2seq models (HF's `max_length` counts the decoder start token)
    and max_target_length for causal models (the length of their training targets)."""
    retokenize_labels: bool = True
    """Seq2seq predicted labels: decode the generated ids (special tokens skipped, tokenization spaces
    cleaned), strip, and re-tokenise the text with EOS, truncated to `prompt.max_target_length` (the
    reference's round trip through predicted_examples.jsonl); false: score the generated ids as they are.
    Causal labels are always the generated ids (docs/semantics.md). Perplexity always scores the generated ids."""
    redraw_each_round: bool = True
    """Draw the scored instances and the perturbations afresh every round (the reference); false: a task
    keeps its draws across rounds (keyed by seed and task only)."""
    pad_examples: bool = True
    """A task with fewer positive examples than `prompt.num_pos_examples` gets up to `extra_examples`
    unscored instances after them as demonstrations in its scoring prompts (the reference appends them
    for every perturbation method); false: it is scored with what it has."""
    resample_original: bool = True
    """`target: examples`: prompt 0 re-draws its demonstrations too, as the reference does for every
    perturbation id; false: prompt 0 keeps the task's first positive examples."""
    mask_numbering: Literal["per_text", "per_prompt"] = "per_text"
    """`mask: true`: sentinels restart at `<extra_id_0>` in every perturbed text (definition, each example
    input), as the reference; `per_prompt`: numbered on through the whole prompt."""
    std_over: Literal["all", "perturbed"] = "all"
    """`aggregate: std`: the standard deviation over the original prompt and K-1 perturbed ones (the
    reference's K prompts in all); `perturbed`: over K perturbed prompts (k >= 1)."""
    compute: list[str] | None = None
    """Scorers to run, by registered name (`perplexity`, `prompt_uncertainty`, ...); default: what the
    strategies need (`activeit score`: all)."""

    def result_inputs(self) -> dict[str, Any]:
        """The settings scores depend on, for input hashes."""
        return self.model_dump(mode="json")


VLLM_RESULT_ARGS = frozenset({"dtype", "quantization", "kv_cache_dtype", "tokenizer", "tokenizer_revision", "revision",
                              "hf_overrides", "load_format", "calculate_kv_scales", "logprobs_mode"})
"""`engine.vllm` arguments that change scores or predictions (the rest decide speed and memory)."""


class EngineConfig(Section):
    name: str = "auto"
    """Inference backend for scoring, evaluation and judging: `native` (activeit's CPU-optimised engine),
    `hf` (plain transformers forward/generate), `auto` (native), or any registered backend."""
    workers: int | None = Field(None, ge=1)
    """native: engine threads scoring (and prefilling label prompts) side by side on CPU (None: 2 on a
    multi-core CPU). Decides how results are computed, not what they are: not part of input hashes."""
    vllm: dict[str, Any] = Field(default_factory=dict)
    """vllm: engine arguments passed to `vllm.LLM` (`tensor_parallel_size`, `gpu_memory_utilization`,
    `max_model_len`, `enable_prefix_caching`, ...). Only those that change results (`VLLM_RESULT_ARGS`)
    enter input hashes."""

    def result_key(self) -> str:
        """What input hashes record of the engine: its name, plus the vLLM arguments that change results."""
        changing = {k: v for k, v in sorted(self.vllm.items()) if k in VLLM_RESULT_ARGS}
        return self.name if not changing else f"{self.name} {json.dumps(changing, sort_keys=True)}"


class StrategyConfig(Section):
    name: str = "high_prompt_uncertainty"
    cls_ratio: float | None = Field(None, ge=0.0, le=1.0)
    """Fraction of each pick taken from classification tasks (reference: 0.356)."""
    rate: float = Field(0.5, ge=0.0, le=1.0)
    """merge_rank: share of the pick taken from the prompt-uncertainty ranking."""
    pu_order: Literal["high", "low"] = "high"
    pp_order: Literal["high", "low"] = "high"
    reverse_pp: bool = False
    """sum_rank: rank prediction probability descending instead of ascending."""
    order: Literal["high", "low"] = "high"
    """sum_rank: take the highest or the lowest rank sums."""
    sum_rank_ties: Literal["prompt_uncertainty", "name"] = "prompt_uncertainty"
    """sum_rank: equal rank sums go by prompt uncertainty, higher first when taking the highest sums and
    lower first when taking the lowest (the reference's stable sort); `name`: by task name."""


class LoraConfig(Section):
    enabled: bool = False
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | str = "all-linear"


class TrainingConfig(Section):
    instances_per_task: int = Field(200, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    lr_scheduler: str = "constant_with_warmup"
    warmup_steps: int = Field(50, ge=0)
    epochs: float = Field(8.0, gt=0)
    max_steps: int = -1
    per_device_batch_size: int = Field(8, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    effective_batch_size: int | None = Field(None, ge=1)
    """If set, accumulation = effective / (per-device × processes), which must divide exactly."""
    weight_decay: float = 0.0
    bf16: bool | Literal["auto"] = "auto"
    gradient_checkpointing: bool = False
    group_by_length: bool = True
    report_to: Literal["none", "tensorboard", "wandb"] = "none"
    best_metric: str | None = "rougeL_cls"
    """Dev metric that picks the best checkpoint (`rougeL`, `rougeL_cls`, `exact_match`, ...); null: last."""
    eval_steps: int | None = None
    """Evaluate on dev (and checkpoint) every N steps; default: once an epoch."""
    logging_steps: int = Field(10, ge=1)
    save_steps: int | None = Field(None, ge=1)
    """Checkpoint every N steps (a multiple of eval_steps when both are set); default: when
    evaluating, or once an epoch. An interrupted run resumes from the last checkpoint."""
    save_total_limit: int = Field(2, ge=1)
    keep_checkpoints: bool = False
    """Keep `checkpoints/` after the final model is saved (default: delete them)."""
    lora: LoraConfig = Field(default_factory=LoraConfig)
    target_sampling: Literal["random", "first"] = "random"
    """Which reference output an example trains on: `random` re-draws one each epoch, seeded by
    (seed, task, instance, epoch), like the reference collator's `random.choice`; `first`: always output[0]."""

    @field_validator("best_metric")
    @classmethod
    def _known_metric(cls, value: str | None) -> str | None:
        if value is not None and value not in FLAT_METRICS:
            raise ValueError(f"unknown metric {value!r}; one of {', '.join(FLAT_METRICS)} or null")
        return value

    @model_validator(mode="after")
    def _save_with_eval(self) -> TrainingConfig:
        if self.eval_steps and self.save_steps and self.best_metric and self.save_steps % self.eval_steps:
            raise ValueError("save_steps must be a multiple of eval_steps when best_metric is set")
        return self


class JudgeConfig(Section):
    """Pairwise judging of every round against another strategy's model of the same round and seed
    (the paper's Self-Instruct evaluation; docs/semantics.md)."""

    questions: str
    """JSONL (or JSON list) of `{id?, instruction, input?}`, as `activeit judge --questions`."""
    judge: str = "smollm2-135m"
    """A local model name/directory, or an OpenAI-compatible chat-completions URL, as `activeit judge --judge`
    (key from `$ACTIVEIT_JUDGE_API_KEY` or `$OPENAI_API_KEY`). The default only shows that judging works."""
    against: str = "random"
    """The strategy every other strategy is judged against; must be one of `experiment.strategies`."""
    max_new_tokens: int | None = Field(None, ge=1)
    """Answer length limit; null: `evaluation.max_new_tokens`."""
    url_model: str | None = None
    """Model name sent to a URL judge (default: `$ACTIVEIT_JUDGE_MODEL`, else gpt-4)."""
    rule: Literal["both_orders", "calibrated"] = "both_orders"
    """`both_orders`: a side wins only when the judge prefers it with its answer shown first and second,
    any disagreement is a tie (the paper's pairwise protocol). `calibrated` (local judges): the side
    favoured by the judge's log-odds of "1" over "2" averaged over both orders, which cancels a small
    judge's preference for a position (a 135M judge picks "1" either way, so `both_orders` gives ties)."""


class EvaluationConfig(Section):
    test_instances: int = Field(100, ge=1)
    """Reported test metrics: the first N instances of every test task (the NI README's rule)."""
    dev_instances: int = Field(50, ge=1)
    """Checkpoint selection: N instances of every dev task, drawn as `dev_selection` says."""
    dev_selection: Literal["random", "first"] = "random"
    """`random`: a seeded random draw per dev task (the reference shuffles dev instances); `first`: file order."""
    dev_report_instances: int | None = Field(None, ge=1)
    """Reported dev metrics: the first N instances of every dev task; null: `test_instances` (the
    reference's dev tasks sit in its test list, first 100 each)."""
    max_new_tokens: int = Field(128, ge=1)
    batch_size: int = Field(32, ge=1)
    judge: JudgeConfig | None = None
    """Judge each round's model against the `against` strategy's (wins − losses per round); null: off."""

    def result_inputs(self) -> dict[str, Any]:
        """The settings dev/test metrics depend on, for input hashes: turning judging on or changing it
        leaves finished evaluations (and training checkpoints) valid."""
        return self.model_dump(mode="json", exclude={"judge"})


class RoundsConfig(Section):
    count: int = Field(5, ge=1)
    """Rounds; each trains and evaluates, all but the last score and pick. With `sizes`: len(sizes)."""
    chunk: int | None = Field(None, ge=1)
    """Tasks picked a round; default: the number of initial train tasks. Not together with `sizes`."""
    sizes: list[int] | None = None
    """Total train tasks of each round, strictly increasing, e.g. [1000, 2000, 4000, 8000, 16000] (the
    paper's Self-Instruct run): round i picks sizes[i+1] - sizes[i] tasks. sizes[0] is the initial train
    size: drawn that large (`data.split: auto`, a plain NI split), or checked against a split's own list."""
    initial: int | None = Field(None, ge=1)
    """Initial train tasks: drawn (`data.split: auto`; a plain NI split draws a dev list as large) or
    checked against a split directory's own list; default: sizes[0], else chunk (an NI split: an
    eleventh of its train tasks)."""

    @model_validator(mode="before")
    @classmethod
    def _count_from_sizes(cls, data: Any) -> Any:
        sizes = data.get("sizes") if isinstance(data, dict) else None
        if isinstance(sizes, list) and sizes and data.get("count") is None:
            data = {**data, "count": len(sizes)}
        return data

    @model_validator(mode="after")
    def _sizes(self) -> RoundsConfig:
        if self.sizes is None:
            return self
        if self.chunk is not None:
            raise ValueError("give rounds.chunk (the same pick every round) or rounds.sizes (train size per round), "
                             "not both")
        if not self.sizes or self.sizes[0] < 1 or any(b <= a for a, b in zip(self.sizes, self.sizes[1:])):
            raise ValueError(f"rounds.sizes must be strictly increasing positive train sizes, got {self.sizes}")
        if self.count != len(self.sizes):
            raise ValueError(f"rounds.count is {self.count} but rounds.sizes gives {len(self.sizes)} rounds; "
                             f"drop rounds.count (it defaults to len(sizes)) or make them agree")
        if self.initial is not None and self.initial != self.sizes[0]:
            raise ValueError(f"rounds.initial ({self.initial}) must equal rounds.sizes[0] ({self.sizes[0]}), "
                             f"the round-0 train size; drop one")
        return self

    def initial_size(self) -> int | None:
        """The initial train size a drawn split takes (None: the split's own default)."""
        if self.initial is not None:
            return self.initial
        if self.sizes:
            return self.sizes[0]
        return self.chunk

    def picks(self, n_initial: int) -> list[int]:
        """Tasks picked after each round but the last (`n_initial`: the split's initial train size)."""
        if self.sizes:
            return [b - a for a, b in zip(self.sizes, self.sizes[1:])]
        return [self.chunk or n_initial] * (self.count - 1)


class ExperimentConfig(Section):
    strategies: list[str] | None = None
    """Default: [strategy.name]."""
    seeds: list[int] | None = None
    """Default: [seed]."""


class OutputConfig(Section):
    dir: str | None = None


class Config(Section):
    seed: int = 42
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    rounds: RoundsConfig = Field(default_factory=RoundsConfig)
    experiment: ExperimentConfig = Field(default_factory=ExperimentConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @model_validator(mode="after")
    def _distinct_lists(self) -> Config:
        for key in ("strategies", "seeds"):
            values = getattr(self.experiment, key)
            if values is not None and (not values or len(set(values)) != len(values)):
                raise ValueError(f"experiment.{key} must be a non-empty list without repeats")
        judge = self.evaluation.judge
        if judge is not None:
            if judge.against not in self.strategies:
                raise ValueError(f"evaluation.judge.against: {judge.against!r} is not one of the experiment's "
                                 f"strategies ({', '.join(self.strategies)}); add it to experiment.strategies")
            if len(self.strategies) < 2:
                raise ValueError(f"evaluation.judge: nothing to judge against {judge.against!r}; "
                                 "experiment.strategies needs at least one other strategy")
        return self

    @property
    def strategies(self) -> list[str]:
        return list(self.experiment.strategies or [self.strategy.name])

    @property
    def seeds(self) -> list[int]:
        return list(self.experiment.seeds or [self.seed])

    def section(self, key: str) -> Any:
        return self.model_dump(mode="json")[key]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


# --------------------------------------------------------------------------- loading


def _section_type(ann: Any) -> type[BaseModel] | None:
    """The section model of a field annotated `Section` or `Section | None`."""
    for candidate in (ann, *get_args(ann)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _known_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, info in model.model_fields.items():
        keys.append(prefix + name)
        section = _section_type(info.annotation)
        if section is not None:
            keys += _known_keys(section, prefix + name + ".")
    return keys


def _format_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        close = difflib.get_close_matches(key, _known_keys(Config), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"{source}: unknown config key '{key}'{hint}"
    msg = first["msg"].removeprefix("Value error, ")
    value = f" (got {first['input']!r})" if "input" in first and not isinstance(first["input"], dict) else ""
    return f"{source}: {key or 'config'}: {msg}{value}"


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=value` → (["a", "b"], YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. scoring.perturbations=5")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {text!r}: bad key {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({e.problem})") from None
    return parts, value


def _check_key(parts: list[str], text: str) -> None:
    """An override must name a real key: a typo fails here instead of creating a section."""
    model: type[BaseModel] = Config
    for i, part in enumerate(parts):
        if part not in model.model_fields:
            key = ".".join(parts)
            close = difflib.get_close_matches(key, _known_keys(Config), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"--set {text!r}: unknown config key '{key}'{hint}")
        ann = model.model_fields[part].annotation
        if get_origin(ann) is dict:  # a free-form mapping (engine.vllm): any key below it
            return
        section = _section_type(ann)
        if i < len(parts) - 1:
            if section is None:
                raise ConfigError(f"--set {text!r}: '{'.'.join(parts[: i + 1])}' is not a section")
            model = section


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        parts, value = parse_override(text)
        _check_key(parts, text)
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: '{'.'.join(parts[: i + 1])}' is not a section")
            node = child
        node[parts[-1]] = value
    return data


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {getattr(e, 'problem', e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections")
    return data


def config_from_dict(data: dict[str, Any], source: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_error(e, source)) from None


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults < YAML file < overrides; `path=None` starts from the defaults."""
    data = read_yaml(path) if path is not None else {}
    apply_overrides(data, list(overrides or []))
    return config_from_dict(data, str(path) if path is not None else "config")


def bundled_config(name: str) -> Path:
    """A config shipped with the package (`configs/<name>.yaml`)."""
    from importlib.resources import files

    path = Path(str(files("activeit") / "configs" / f"{name}.yaml"))
    if not path.is_file():
        raise ConfigError(f"no bundled config named {name!r}")
    return path
