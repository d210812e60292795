"""Evaluate a model on dev or test tasks: greedy predictions, `predictions.jsonl` and `metrics.json`.

Reported metrics: the first `evaluation.test_instances` (100) instances of every test task and of
every dev task (or `dev_report_instances`), in file order (the NI README's rule; the reference's dev
tasks are in its test list). Checkpoint selection: `dev_instances` (50) of every dev
task, a seeded random draw (`dev_selection`), as the reference's validation set. Greedy decoding of at most
`evaluation.max_new_tokens` tokens; causal models stop at EOS or at the first token that
contains one of `prompt.stop_strings`; the prediction is the text before the stop, stripped.
Generation goes through the configured inference engine (`engine.name`).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from activeit import atomic, distributed
from activeit.config import Config
from activeit.engine import Engine, engine_for
from activeit.errors import ConfigError
from activeit.metrics import score_records
from activeit.models import LoadedModel, load_trained
from activeit.pool import config_pool, read_task_list
from activeit.prompts import encode, model_prompt
from activeit.rng import make_rng
from activeit.tasks import Instance, Task, TaskLibrary

log = logging.getLogger(__name__)

SPLITS = ("dev", "test")


@dataclass(frozen=True)
class EvalItem:
    """One instance to predict: what is fed to the model and what it is compared with."""

    task: str
    instance_id: str
    prompt: str
    references: tuple[str, ...]
    category: str
    kind: str
    split: str


def eval_instances(task: Task, n: int) -> list[Instance]:
    """The first `n` instances in file order (no shuffle)."""
    return list(task.instances[:n])


def selection_instances(task: Task, n: int, seed: int, how: str = "random") -> list[Instance]:
    """The dev instances that pick the best checkpoint: `n` drawn by a shuffle seeded by (seed, task)
    (the reference shuffles each dev task's instances with its seed), or the first `n` for `first`."""
    if how == "first":
        return eval_instances(task, n)
    order = make_rng(seed, "dev-select", task.name).permutation(len(task.instances))
    return [task.instances[i] for i in order[:n]]


def instances_per_task(cfg: Config, split: str) -> int:
    """Instances per task in the reported metrics of a split."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    ev = cfg.evaluation
    if split == "dev" and ev.dev_report_instances is not None:
        return ev.dev_report_instances
    return ev.test_instances


def report_instances(task: Task, cfg: Config, split: str, n_instances: int | None = None) -> list[Instance]:
    """The instances of a task in the reported metrics of `split`: the first N."""
    return eval_instances(task, n_instances if n_instances is not None else instances_per_task(cfg, split))


def build_items(
    tasks: Sequence[Task], tokenizer: Any, cfg: Config, *, causal: bool, split: str, n_instances: int | None = None,
    selection: bool = False,
) -> list[EvalItem]:
    """The prompts and references of each task's reported instances of `split` (the first
    `n_instances` when given), or with `selection` of its checkpoint-selection dev instances."""
    instances_per_task(cfg, split)  # validates the split name
    items = []
    for task in tasks:
        if selection:
            chosen = selection_instances(task, cfg.evaluation.dev_instances, cfg.seed, cfg.evaluation.dev_selection)
        else:
            chosen = report_instances(task, cfg, split, n_instances)
        for inst in chosen:
            source = encode(task, inst, num_pos_examples=cfg.prompt.num_pos_examples,
                            add_definition=cfg.prompt.add_definition, tokenizer=tokenizer,
                            max_source_length=cfg.prompt.max_source_length)
            prompt = model_prompt(source, causal=causal, tokenizer=tokenizer, chat_template=cfg.model.chat_template)
            items.append(EvalItem(task.name, inst.id, prompt, tuple(inst.outputs), task.category, task.kind, split))
    return items


# --------------------------------------------------------------------------- generation


def generate_texts(engine: Engine, prompts: Sequence[str], *, max_new_tokens: int,
                   stop_strings: Sequence[str] = ("\n",), batch_size: int = 32, progress: bool = False) -> list[str]:
    """Greedy predictions: text before EOS / the first stop string, stripped.

    Stop strings apply to causal models only; seq2seq models stop at EOS (as the reference).
    """
    stops = tuple(stop_strings) if engine.lm.causal else ()
    generations = engine.generate(list(prompts), max_new_tokens=max_new_tokens, stop_strings=stops,
                                  batch_size=batch_size, progress=progress and sys.stderr.isatty())
    return [g.text for g in generations]


# --------------------------------------------------------------------------- evaluation


def predict(lm: LoadedModel, items: Sequence[EvalItem], cfg: Config, *, progress: bool = True) -> list[dict[str, Any]]:
    """Prediction records (`task`, `instance_id`, `prompt`, `prediction`, `references`, `category`, `kind`, `split`).

    In a multi-process launch every process must call this: each generates its share of the
    prompts and every process gets all records back.
    """
    mine = generate_texts(engine_for(cfg, lm), distributed.shard([it.prompt for it in items]), max_new_tokens=cfg.evaluation.max_new_tokens,
                          stop_strings=cfg.prompt.stop_strings, batch_size=cfg.evaluation.batch_size,
                          progress=progress and distributed.is_main())
    texts = distributed.gather(mine)
    return [
        {"task": it.task, "instance_id": it.instance_id, "prompt": it.prompt, "prediction": text,
         "references": list(it.references), "category": it.category, "kind": it.kind, "split": it.split}
        for it, text in zip(items, texts)
    ]


def evaluate(
    lm: Any,
    tasks: Sequence[Task],
    cfg: Config,
    *,
    split: str,
    out_dir: str | os.PathLike | None = None,
    n_instances: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Predict and score the tasks; with `out_dir`, write `predictions.jsonl` then `metrics.json` atomically.

    Returns the metrics object (see `activeit.metrics.score_records`).
    """
    if not tasks:
        raise ConfigError(f"no {split} tasks to evaluate on")
    start = time.perf_counter()
    items = build_items(tasks, lm.tokenizer, cfg, causal=lm.causal, split=split, n_instances=n_instances)
    records = predict(lm, items, cfg, progress=progress)
    metrics = score_records(records)
    log.info("%s: %d instances of %d tasks in %.1f s: rougeL %.2f, exact_match %.2f", split, len(records),
             len(tasks), time.perf_counter() - start, metrics["rougeL"], metrics["exact_match"])
    if out_dir is not None and distributed.is_main():
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic.write_jsonl(out / "predictions.jsonl", records)
        atomic.write_json(out / "metrics.json", metrics)
    return metrics


def split_tasks(cfg: Config, library: Any, split: str, tasks_file: str | os.PathLike | None = None) -> list[str]:
    """Task names of a split from the config's pool (or from a task-list file)."""
    instances_per_task(cfg, split)  # validates the split name
    if tasks_file is not None:
        return read_task_list(tasks_file, library)
    pool = config_pool(library, cfg)
    return list(getattr(pool, split))


def evaluate_model(
    cfg: Config,
    model: str | os.PathLike,
    *,
    split: str,
    out_dir: str | os.PathLike,
    tasks_file: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """`activeit evaluate`: load a trained model (or a base model) and evaluate it on a split."""
    library = TaskLibrary(cfg.data.path, metadata=cfg.data.metadata)
    names = split_tasks(cfg, library, split, tasks_file)
    lm = load_trained(model, cfg)
    return evaluate(lm, [library.load(n) for n in names], cfg, split=split, out_dir=out_dir, progress=progress)
