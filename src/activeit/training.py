"""Fine-tune a fresh copy of the base model on the picked tasks with `transformers.Trainer` (+ peft LoRA).

Data: for each task, the first `training.instances_per_task` instances after a seeded shuffle;
source = the Tk-Instruct encoding; target = one of the references, re-drawn every epoch (seeded; the
reference collator's `random.choice`) or always the first (`training.target_sampling`). Causal models see the prompt
ids followed by `" " + output` and EOS, with the loss on the target tokens only; seq2seq models
get the target as labels. The best checkpoint is chosen by a dev metric (reference: ROUGE-L on
the dev classification tasks) computed by `activeit.evaluate` inside `Trainer.evaluate`.

Output directory: `checkpoints/` (Trainer checkpoints; an interrupted run resumes from the
last one), then `adapter/` (LoRA) or `model/` (full) and `train_result.json`, each moved into
place whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from activeit import atomic, distributed
from activeit.config import Config
from activeit.errors import ConfigError
from activeit.evaluate import build_items, predict
from activeit.metrics import FLAT_METRICS, score_records
from activeit.models import (ADAPTER_DIR, MODEL_DIR, LoadedModel, cpu_supports_bf16, hidden_and_head, load_model,
                             quiet_peft, resolve_device, warn_if_bf16_emulated)
from activeit.prompts import encode, model_prompt, training_target
from activeit.rng import make_rng
from activeit.tasks import Instance, Task, TaskLibrary

log = logging.getLogger(__name__)

RESULT_FILE = "train_result.json"
CHECKPOINT_DIR = "checkpoints"
FINGERPRINT_FILE = "activeit_fingerprint.json"
IGNORE_INDEX = -100


# --------------------------------------------------------------------------- data


def training_instances(task: Task, n: int, seed: int) -> list[Instance]:
    """The first `n` instances after a shuffle seeded by (seed, "train-instances", task name)."""
    order = make_rng(seed, "train-instances", task.name).permutation(len(task.instances))
    return [task.instances[i] for i in order[:n]]


def encode_targets(task: Task, instance: Instance, tokenizer: Any, cfg: Config, *,
                   causal: bool) -> tuple[dict[str, list[int]], ...]:
    """`input_ids` and `labels` of one training example for each of its reference outputs, in order
    (labels are -100 on the prompt of causal models). The prompt is encoded once."""
    source = encode(task, instance, num_pos_examples=cfg.prompt.num_pos_examples,
                    add_definition=cfg.prompt.add_definition, tokenizer=tokenizer,
                    max_source_length=cfg.prompt.max_source_length)
    max_target = cfg.prompt.max_target_length
    if not causal:
        input_ids = tokenizer(source, max_length=cfg.prompt.max_source_length, truncation=True)["input_ids"]
        return tuple({"input_ids": input_ids,
                      "labels": tokenizer(text_target=training_target(output, causal=False), max_length=max_target,
                                          truncation=True)["input_ids"]}
                     for output in instance.outputs)
    chat = cfg.model.chat_template
    prompt_ids = tokenizer(model_prompt(source, causal=True, tokenizer=tokenizer, chat_template=chat))["input_ids"]
    out = []
    for output in instance.outputs:
        target = tokenizer(training_target(output, causal=True, chat_template=chat), add_special_tokens=False)["input_ids"]
        target = target[: max_target - 1] + [tokenizer.eos_token_id]
        out.append({"input_ids": prompt_ids + target, "labels": [IGNORE_INDEX] * len(prompt_ids) + target})
    return tuple(out)


def encode_example(task: Task, instance: Instance, tokenizer: Any, cfg: Config, *, causal: bool) -> dict[str, list[int]]:
    """`input_ids` and `labels` of one training example on its first reference output."""
    first = Instance(instance.id, instance.input, tuple(instance.outputs[:1]))
    return encode_targets(task, first, tokenizer, cfg, causal=causal)[0]


class TrainingSet(torch.utils.data.Dataset):
    """Training examples; each item is one reference output of its instance, drawn per epoch.

    The reference collator picks `random.choice(outputs)` each time an example is collated; here the
    draw is seeded by (seed, task, instance id, epoch), so a resumed run sees what an uninterrupted
    one did. `epoch` is set by `EpochCallback` (the Trainer's data loader runs in this process).
    """

    def __init__(self, examples: Sequence[tuple[str, str, tuple[dict[str, list[int]], ...]]], seed: int,
                 sampling: str = "random"):
        self.examples = list(examples)
        self.seed, self.sampling, self.epoch = seed, sampling, 0

    def __len__(self) -> int:
        return len(self.examples)

    def choice(self, index: int, epoch: int) -> int:
        """Which reference output item `index` trains on in `epoch`."""
        task, instance_id, choices = self.examples[index]
        if self.sampling == "first" or len(choices) == 1:
            return 0
        return int(make_rng(self.seed, "train-target", task, instance_id, epoch).integers(len(choices)))

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not 0 <= index < len(self.examples):
            raise IndexError(index)
        return self.examples[index][2][self.choice(index, self.epoch)]


def _epoch_callback(dataset: TrainingSet) -> Any:
    from transformers import TrainerCallback

    class EpochCallback(TrainerCallback):
        """Tells the training set which epoch is starting (a resumed epoch included)."""

        def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            dataset.epoch = int(state.epoch or 0)

    return EpochCallback()


def build_examples(tasks: Sequence[Task], tokenizer: Any, cfg: Config, *, causal: bool) -> TrainingSet:
    """All training examples, task by task (the Trainer's sampler shuffles them)."""
    return TrainingSet([(task.name, inst.id, encode_targets(task, inst, tokenizer, cfg, causal=causal))
                        for task in tasks
                        for inst in training_instances(task, cfg.training.instances_per_task, cfg.seed)],
                       cfg.seed, cfg.training.target_sampling)


@dataclass
class PadCollator:
    """Right-pads `input_ids` (pad id), `attention_mask` (0) and `labels` (-100) to the longest in the batch."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def _width(self, n: int) -> int:
        m = self.pad_to_multiple_of
        return n if not m else -(-n // m) * m

    def __call__(self, features: Sequence[dict[str, Sequence[int]]]) -> dict[str, torch.Tensor]:
        width = self._width(max(len(f["input_ids"]) for f in features))
        label_width = self._width(max(len(f["labels"]) for f in features))
        ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        labels = torch.full((len(features), label_width), IGNORE_INDEX, dtype=torch.long)
        for row, f in enumerate(features):
            n, m = len(f["input_ids"]), len(f["labels"])
            ids[row, :n] = torch.as_tensor(f["input_ids"])
            mask[row, :n] = 1
            labels[row, :m] = torch.as_tensor(f["labels"])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# --------------------------------------------------------------------------- trainer


def use_bf16(setting: bool | str, device: torch.device) -> bool:
    """`training.bf16`: true/false, or "auto" = where the hardware runs bf16 fast."""
    if setting == "auto":
        if device.type == "cuda":
            return torch.cuda.is_bf16_supported()
        return device.type == "cpu" and cpu_supports_bf16()
    if setting:
        warn_if_bf16_emulated(device.type, "training.bf16 true")
    return bool(setting)


def accumulation_steps(cfg: Config, world_size: int | None = None) -> int:
    """Gradient accumulation so that per-device × accumulation × processes = effective batch size."""
    tr = cfg.training
    if tr.effective_batch_size is None:
        return tr.gradient_accumulation_steps
    world = world_size if world_size is not None else int(os.environ.get("WORLD_SIZE", "1"))
    per_step = tr.per_device_batch_size * world
    if tr.effective_batch_size % per_step:
        raise ConfigError(
            f"training.effective_batch_size={tr.effective_batch_size} is not a multiple of per_device_batch_size "
            f"× processes = {tr.per_device_batch_size} × {world}; change one of them")
    return tr.effective_batch_size // per_step


def resolve_best_metric(cfg: Config, dev_tasks: Sequence[Task]) -> str | None:
    """The dev metric that picks the checkpoint: `*_cls`/`*_gen` falls back to the overall metric
    when no dev task is of that kind; no dev tasks or `best_metric: null` → None (keep the last)."""
    name = cfg.training.best_metric
    if name is None or not dev_tasks:
        if name is not None:
            log.warning("no dev tasks: keeping the last model instead of the best by %s", name)
        return None
    for kind in ("cls", "gen"):
        if name.endswith("_" + kind) and not any(t.kind == kind for t in dev_tasks):
            base = name[: -len(kind) - 1]
            log.info("no %s dev tasks: best checkpoint by %s instead of %s", kind, base, name)
            return base
    return name


def training_arguments(cfg: Config, output_dir: Path, *, device: torch.device, best_metric: str | None,
                       world_size: int | None = None) -> Any:
    """`TrainingArguments` from the `training:` section (seeded, bf16 autocast, checkpoints, logging)."""
    from transformers import TrainingArguments

    tr = cfg.training
    if best_metric is None:
        eval_strategy = "no"
        save_strategy = "steps" if tr.save_steps else "epoch"
        save_steps = tr.save_steps
    elif tr.eval_steps:
        eval_strategy = save_strategy = "steps"
        save_steps = tr.save_steps or tr.eval_steps
    else:
        eval_strategy = save_strategy = "epoch"
        save_steps = None
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        learning_rate=tr.learning_rate,
        lr_scheduler_type=tr.lr_scheduler,
        warmup_steps=tr.warmup_steps,
        num_train_epochs=tr.epochs,
        max_steps=tr.max_steps,
        per_device_train_batch_size=tr.per_device_batch_size,
        gradient_accumulation_steps=accumulation_steps(cfg, world_size),
        weight_decay=tr.weight_decay,
        bf16=use_bf16(tr.bf16, device),
        use_cpu=device.type == "cpu",
        **_version_specific(TrainingArguments, tr.gradient_checkpointing, tr.group_by_length),
        report_to=[] if tr.report_to == "none" else [tr.report_to],
        logging_strategy="steps",
        logging_steps=tr.logging_steps,
        eval_strategy=eval_strategy,
        eval_steps=tr.eval_steps if eval_strategy == "steps" else None,
        save_strategy=save_strategy,
        save_steps=save_steps,
        save_total_limit=tr.save_total_limit,
        load_best_model_at_end=best_metric is not None,
        metric_for_best_model=best_metric,
        greater_is_better=True,
        seed=cfg.seed,
        data_seed=cfg.seed,
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False,
        label_names=["labels"],
        disable_tqdm=not sys.stderr.isatty(),
        dataloader_num_workers=0,
    )
    if save_steps is None:
        del kwargs["save_steps"]
    try:
        return TrainingArguments(**kwargs)
    except ValueError as e:
        raise ConfigError(f"training: {str(e).splitlines()[0]}") from None


def _version_specific(args_class: type, checkpointing: bool, group_by_length: bool) -> dict[str, Any]:
    """Argument names that changed in transformers 5 (activation checkpointing, sampling strategy)."""
    fields = args_class.__dataclass_fields__
    prefix = "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
    out: dict[str, Any] = {prefix: checkpointing, f"{prefix}_kwargs": {"use_reentrant": False} if checkpointing else None}
    if "train_sampling_strategy" in fields:
        out["train_sampling_strategy"] = "group_by_length" if group_by_length else "random"
    else:
        out["group_by_length"] = group_by_length
    return out


class _TiedWeightsFilter(logging.Filter):
    """Drop Trainer's "missing keys" warning when the only missing keys are tied output embeddings."""

    def __init__(self, tied: set[str]):
        super().__init__()
        self.tied = tied

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        only_tied = bool(self.tied) and message.endswith(f": {sorted(self.tied)}.")
        return not ("missing keys in the checkpoint model loaded" in message and only_tied)


def _trainer_class() -> type:
    """`Trainer` whose `evaluate` runs activeit's generation-based evaluation on the dev tasks."""
    from transformers import Trainer

    class ActiveitTrainer(Trainer):
        def __init__(self, *args: Any, dev_items: Sequence[Any] = (), run_config: Config | None = None,
                     loaded: LoadedModel | None = None, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.dev_items = list(dev_items)
            self.run_config = run_config
            self.loaded = loaded
            self.eval_seconds = 0.0
            self.eval_history: list[dict[str, Any]] = []

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            """Causal models: project only the target positions onto the vocabulary.

            Prompts are long and answers short, so the default loss spends most of the LM head
            (49k × 576 per position for SmolLM2) and most of the activation memory on positions
            whose label is -100. The loss is the same token-summed cross-entropy, normalised as
            the default one (by `num_items_in_batch` when the Trainer passes it, else the mean).
            """
            body, head = (None, None) if return_outputs or "labels" not in inputs else self._target_head(model)
            if body is None:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            hidden = body(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"))
            labels = inputs["labels"][:, 1:]
            keep = labels != -100
            logits = head(hidden[:, :-1][keep]).float()
            total = torch.nn.functional.cross_entropy(logits, labels[keep], reduction="sum")
            if not (self.model_accepts_loss_kwargs and num_items_in_batch is not None):
                return total / keep.sum().clamp_min(1)
            if torch.is_tensor(num_items_in_batch):
                num_items_in_batch = num_items_in_batch.to(total.device)
            loss = total / num_items_in_batch
            if getattr(self.args, "average_tokens_across_devices", False):  # as Trainer.compute_loss does
                tp = self.get_tp_size() if hasattr(self, "get_tp_size") else 1
                loss = loss * (self.accelerator.num_processes // tp if self.args.n_gpu <= 1 else self.args.n_gpu)
            return loss

        def _target_head(self, model: Any) -> tuple[Any, Any]:
            if self.loaded is None or not self.loaded.causal:
                return None, None
            if not hasattr(self, "_head_parts"):
                self._head_parts = hidden_and_head(self.accelerator.unwrap_model(model))
            return self._head_parts

        def evaluate(self, eval_dataset: Any = None, ignore_keys: Any = None,
                     metric_key_prefix: str = "eval") -> dict[str, float]:
            start = time.perf_counter()
            # LoRA layers live inside the wrapped transformers model: generate with that model itself
            model = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
            lm = LoadedModel(model, self.loaded.tokenizer, self.loaded.causal, self.loaded.name,
                             self.loaded.source, self.args.device, self.loaded.dtype)
            use_cache = _set_use_cache(model, True)
            try:
                records = predict(lm, self.dev_items, self.run_config, progress=not self.args.disable_tqdm)
            finally:
                _set_use_cache(model, use_cache)
            scores = score_records(records)
            metrics = {f"{metric_key_prefix}_{k}": scores[k] for k in FLAT_METRICS if k in scores}
            elapsed = time.perf_counter() - start
            self.eval_seconds += elapsed
            metrics[f"{metric_key_prefix}_runtime"] = round(elapsed, 4)
            self.eval_history.append({"step": self.state.global_step, "epoch": self.state.epoch,
                                      **{k: scores[k] for k in FLAT_METRICS if k in scores}})
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    return ActiveitTrainer


def _no_final_checkpoint() -> Any:
    """A callback that skips the Trainer checkpoint at the last step: the final model is saved anyway."""
    from transformers import TrainerCallback

    class NoFinalCheckpoint(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.max_steps and state.global_step >= state.max_steps:
                control.should_save = False

        on_epoch_end = on_step_end

    return NoFinalCheckpoint()


def _set_use_cache(model: Any, value: bool) -> bool:
    config = getattr(model, "config", None)
    old = bool(getattr(config, "use_cache", True))
    if config is not None:
        config.use_cache = value
    return old


def _lora_model(model: Any, cfg: Config, *, causal: bool) -> Any:
    from peft import LoraConfig as PeftLoraConfig
    from peft import TaskType, get_peft_model

    lora = cfg.training.lora
    peft_cfg = PeftLoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target_modules,
        task_type=TaskType.CAUSAL_LM if causal else TaskType.SEQ_2_SEQ_LM,
    )
    try:
        with quiet_peft():
            return get_peft_model(model, peft_cfg)
    except ValueError as e:
        raise ConfigError(f"training.lora.target_modules: {str(e).splitlines()[0]}") from None


# --------------------------------------------------------------------------- results


@dataclass
class TrainResult:
    """What `train` did; saved as `train_result.json`."""

    model_dir: str
    lora: bool
    steps: int
    epochs: float
    train_loss: float
    loss_history: list[dict[str, float]]
    eval_history: list[dict[str, Any]]
    best_metric: str | None
    best_value: float | None
    best_step: int | None
    n_tasks: int
    n_examples: int
    tokens: int
    tokens_per_s: float
    train_s: float
    eval_s: float
    wall_s: float
    peak_rss_mb: float
    bf16: bool
    resumed_from: str | None
    fingerprint: str
    tasks: list[str] = field(default_factory=list)
    dev_tasks: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: str | os.PathLike) -> TrainResult:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def fingerprint(cfg: Config, tasks: Sequence[str], dev_tasks: Sequence[str]) -> str:
    """Hash of everything a trained model depends on; checkpoints of another fingerprint are not resumed."""
    data = {
        "seed": cfg.seed, "model": cfg.section("model"), "prompt": cfg.section("prompt"),
        "training": {k: v for k, v in cfg.section("training").items() if k not in ("keep_checkpoints", "report_to")},
        "evaluation": cfg.evaluation.result_inputs(), "data": cfg.section("data"),
        "tasks": list(tasks), "dev_tasks": list(dev_tasks),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _resume_point(checkpoints: Path, fp: str) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    if not checkpoints.is_dir():
        return None
    stamp = checkpoints / FINGERPRINT_FILE
    old = json.loads(stamp.read_text()).get("fingerprint") if stamp.is_file() else None
    if old != fp:
        log.warning("%s holds checkpoints of another config or task list; starting afresh", checkpoints)
        shutil.rmtree(checkpoints)
        return None
    return get_last_checkpoint(str(checkpoints))


# --------------------------------------------------------------------------- train


def _resolve_tasks(items: Sequence[str | Task], library: TaskLibrary | None, cfg: Config) -> list[Task]:
    if any(isinstance(t, str) for t in items) and library is None:
        library = TaskLibrary(cfg.data.path, metadata=cfg.data.metadata)
    return [t if isinstance(t, Task) else library.load(library.require(t)) for t in items]


def train(
    cfg: Config,
    tasks: Sequence[str | Task],
    out_dir: str | os.PathLike,
    *,
    dev_tasks: Sequence[str | Task] = (),
    library: TaskLibrary | None = None,
    callbacks: Sequence[Any] = (),
    force: bool = False,
) -> TrainResult:
    """Train a fresh model from `cfg.model` on `tasks`; pick the best checkpoint on `dev_tasks`.

    Resumes from the last checkpoint in `out_dir/checkpoints/` if a run with the same config
    and tasks was interrupted; returns the saved result at once if that run already finished
    (unless `force`). Writes `out_dir/adapter/` (LoRA) or `out_dir/model/`, and `train_result.json`.
    """
    wall_start = time.perf_counter()
    out = Path(out_dir)
    train_tasks = _resolve_tasks(tasks, library, cfg)
    dev = _resolve_tasks(dev_tasks, library, cfg)
    if not train_tasks:
        raise ConfigError("no training tasks given")
    fp = fingerprint(cfg, [t.name for t in train_tasks], [t.name for t in dev])
    lora = cfg.training.lora.enabled
    model_dir = out / (ADAPTER_DIR if lora else MODEL_DIR)
    if not force and (out / RESULT_FILE).is_file() and model_dir.is_dir():
        done = TrainResult.read(out / RESULT_FILE)
        if done.fingerprint == fp:
            log.info("%s: already trained with this config; reusing it", out)
            return done

    from transformers import PrinterCallback, set_seed

    device = resolve_device(cfg.model.device)
    base = load_model(cfg.model.name, dtype="float32", device=str(device), trust_remote_code=cfg.model.trust_remote_code,
                      revision=cfg.model.revision, cache_dir=cfg.model.cache_dir)
    tokenizer = base.tokenizer
    examples = build_examples(train_tasks, tokenizer, cfg, causal=base.causal)
    best_metric = resolve_best_metric(cfg, dev)
    dev_items: list[Any] = []
    if best_metric is not None:
        dev_items = build_items(dev, tokenizer, cfg, causal=base.causal, split="dev", selection=True)

    set_seed(cfg.seed)  # LoRA's initial weights come from the global torch RNG
    model = base.model
    model.train()
    _set_use_cache(model, False)
    if lora:
        model = _lora_model(model, cfg, causal=base.causal)

    checkpoints = out / CHECKPOINT_DIR
    if distributed.is_main():  # another process clearing the directory while this one stamps it lost the stamp
        _resume_point(checkpoints, fp)
        checkpoints.mkdir(parents=True, exist_ok=True)
        atomic.write_json(checkpoints / FINGERPRINT_FILE, {"fingerprint": fp})
    distributed.barrier()
    resume = _resume_point(checkpoints, fp)
    args = training_arguments(cfg, checkpoints, device=device, best_metric=best_metric)
    trainer = _trainer_class()(
        model=model, args=args, train_dataset=examples, eval_dataset=dev_items or None,
        data_collator=PadCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id),
        processing_class=tokenizer,
        callbacks=list(callbacks) + [_epoch_callback(examples)]
        + ([] if best_metric or cfg.training.keep_checkpoints else [_no_final_checkpoint()]),
        dev_items=dev_items, run_config=cfg, loaded=base,
    )
    trainer.remove_callback(PrinterCallback)  # logs go to train_result.json, not to stdout
    if resume:
        log.info("resuming from %s", resume)
    tokens_before = _tokens_seen_at(resume)
    tied = {"lm_head.weight"} if getattr(base.model.config, "tie_word_embeddings", False) else set()
    quiet = _TiedWeightsFilter(tied)
    trainer_log = logging.getLogger("transformers.trainer")
    trainer_log.addFilter(quiet)
    try:
        output = trainer.train(resume_from_checkpoint=resume)
    finally:
        trainer_log.removeFilter(quiet)
    train_s = float(output.metrics.get("train_runtime", 0.0))
    tokens = int(trainer.state.num_input_tokens_seen - tokens_before)

    _set_use_cache(trainer.model, True)
    trainer.model.eval()
    main_process = trainer.is_world_process_zero()
    if main_process:
        tmp = Path(tempfile.mkdtemp(prefix=f".{model_dir.name}.", dir=out))
        trainer.model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        atomic.replace_dir(tmp, model_dir)

    state = trainer.state
    best_step = state.best_global_step if best_metric is not None else None
    busy_s = max(train_s - trainer.eval_seconds, 1e-9)
    result = TrainResult(
        model_dir=str(model_dir),
        lora=lora,
        steps=state.global_step,
        epochs=float(state.epoch or 0.0),
        train_loss=float(output.training_loss),
        loss_history=[{"step": h["step"], "loss": h["loss"]} for h in state.log_history if "loss" in h],
        eval_history=trainer.eval_history,
        best_metric=best_metric,
        best_value=state.best_metric if best_metric is not None else None,
        best_step=best_step,
        n_tasks=len(train_tasks),
        n_examples=len(examples),
        tokens=tokens,
        tokens_per_s=round(tokens / busy_s, 2),
        train_s=round(train_s, 3),
        eval_s=round(trainer.eval_seconds, 3),
        wall_s=round(time.perf_counter() - wall_start, 3),
        peak_rss_mb=round(peak_rss_mb(), 1),
        bf16=bool(args.bf16),
        resumed_from=resume,
        fingerprint=fp,
        tasks=[t.name for t in train_tasks],
        dev_tasks=[t.name for t in dev],
    )
    if main_process:
        atomic.write_json(out / RESULT_FILE, asdict(result))
        if not cfg.training.keep_checkpoints:
            shutil.rmtree(checkpoints, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return result


def _tokens_seen_at(checkpoint: str | None) -> int:
    if not checkpoint:
        return 0
    state = Path(checkpoint) / "trainer_state.json"
    if not state.is_file():
        return 0
    return int(json.loads(state.read_text()).get("num_input_tokens_seen", 0))
