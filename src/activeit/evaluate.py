"""Evaluate a model on dev or test tasks: greedy predictions, `predictions.jsonl` and `metrics.json`.

The first `evaluation.test_instances` (100) instances of every test task, or `dev_instances`
(50) of every dev task, in file order (the NI README's rule); greedy decoding of at most
`evaluation.max_new_tokens` tokens; causal models stop at EOS or at the first token that
contains one of `prompt.stop_strings`; the prediction is the text before the stop, stripped.
Generation goes through the likelihood engine (`activeit.likelihood.generate`) when it is
installed and falls back to a batched `model.generate` otherwise.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from activeit import atomic
from activeit.config import Config
from activeit.metrics import score_records
from activeit.prompts import encode, model_prompt
from activeit.tasks import Instance, Task

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


def instances_per_task(cfg: Config, split: str) -> int:
    if split not in SPLITS:
        from activeit.errors import ConfigError

        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return cfg.evaluation.dev_instances if split == "dev" else cfg.evaluation.test_instances


def build_items(
    tasks: Sequence[Task], tokenizer: Any, cfg: Config, *, causal: bool, split: str, n_instances: int | None = None,
) -> list[EvalItem]:
    """The prompts and references of the first `n_instances` (default: by split) of each task."""
    n = n_instances if n_instances is not None else instances_per_task(cfg, split)
    items = []
    for task in tasks:
        for inst in eval_instances(task, n):
            source = encode(task, inst, num_pos_examples=cfg.prompt.num_pos_examples,
                            add_definition=cfg.prompt.add_definition, tokenizer=tokenizer,
                            max_source_length=cfg.prompt.max_source_length)
            prompt = model_prompt(source, causal=causal, tokenizer=tokenizer, chat_template=cfg.model.chat_template)
            items.append(EvalItem(task.name, inst.id, prompt, tuple(inst.outputs), task.category, task.kind, split))
    return items


# --------------------------------------------------------------------------- generation


def _engine() -> Any:
    """`activeit.likelihood.generate` when that module provides it, else None."""
    try:
        from activeit.likelihood import generate
    except ImportError:
        return None
    return generate


def generate_texts(
    lm: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    stop_strings: Sequence[str] = ("\n",),
    batch_size: int = 32,
    max_source_length: int | None = None,
    progress: bool = False,
    desc: str = "generating",
) -> list[str]:
    """Greedy continuations of `prompts`, cut before the first stop string and stripped.

    Stop strings apply to causal models only; seq2seq models stop at EOS (as the reference).
    """
    if not prompts:
        return []
    stops = tuple(stop_strings) if lm.causal else ()
    engine = _engine()
    if engine is not None:
        extra = {"progress": progress and sys.stderr.isatty()} if "progress" in inspect.signature(engine).parameters else {}
        generations = engine(lm, list(prompts), max_new_tokens=max_new_tokens, stop_strings=stops,
                             batch_size=batch_size, **extra)
        return [_cut(g.text, stops).strip() for g in generations]
    return _fallback_generate(lm, prompts, max_new_tokens=max_new_tokens, stop_strings=stops, batch_size=batch_size,
                              max_source_length=max_source_length, progress=progress, desc=desc)


def _cut(text: str, stop_strings: Sequence[str]) -> str:
    cut = len(text)
    for stop in stop_strings:
        at = text.find(stop)
        if at != -1:
            cut = min(cut, at)
    return text[:cut]


@lru_cache(maxsize=8)
def _stop_token_ids(tokenizer: Any, stop_strings: tuple[str, ...]) -> frozenset[int]:
    """Every token id whose decoded text contains a stop string."""
    ids = list(range(len(tokenizer)))
    texts = tokenizer.batch_decode([[i] for i in ids])
    return frozenset(i for i, t in zip(ids, texts) if any(s in t for s in stop_strings))


class _StopOnTokens:
    """A per-row stopping criterion: a row is done once its last token is a stop token."""

    def __init__(self, stop_ids: frozenset[int]):
        self.stop = torch.tensor(sorted(stop_ids), dtype=torch.long)

    def __call__(self, input_ids: torch.Tensor, scores: Any = None, **kwargs: Any) -> torch.Tensor:
        return torch.isin(input_ids[:, -1], self.stop.to(input_ids.device))


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="inst", disable=not enabled or not sys.stderr.isatty(), leave=False)


@torch.inference_mode()
def _fallback_generate(
    lm: Any, prompts: Sequence[str], *, max_new_tokens: int, stop_strings: tuple[str, ...], batch_size: int,
    max_source_length: int | None, progress: bool, desc: str,
) -> list[str]:
    """Batched greedy `model.generate`, longest prompts first, left padding for causal models."""
    from transformers import GenerationConfig, StoppingCriteriaList

    tok, model = lm.tokenizer, lm.model
    if lm.causal:
        encoded = [tok(p)["input_ids"] for p in prompts]
    else:
        kwargs = dict(max_length=max_source_length, truncation=True) if max_source_length else {}
        encoded = [tok(p, **kwargs)["input_ids"] for p in prompts]
    eos = tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    gen_cfg = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                               eos_token_id=eos, pad_token_id=pad, use_cache=True)
    if not lm.causal:
        gen_cfg.decoder_start_token_id = model.config.decoder_start_token_id
    criteria = None
    stop_ids: frozenset[int] = frozenset()
    if stop_strings:
        stop_ids = _stop_token_ids(tok, stop_strings)
        criteria = StoppingCriteriaList([_StopOnTokens(stop_ids)])
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    texts: list[str] = [""] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        with _progress(len(prompts), desc, progress) as bar:
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                width = max(len(encoded[i]) for i in rows)
                ids = torch.full((len(rows), width), pad, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for r, i in enumerate(rows):
                    seq = encoded[i]
                    if lm.causal:  # left padding: generation continues at the right edge
                        ids[r, width - len(seq):] = torch.tensor(seq)
                        mask[r, width - len(seq):] = 1
                    else:
                        ids[r, :len(seq)] = torch.tensor(seq)
                        mask[r, :len(seq)] = 1
                out = model.generate(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device),
                                     generation_config=gen_cfg, stopping_criteria=criteria)
                new = out[:, width:] if lm.causal else out
                for r, i in enumerate(rows):
                    texts[i] = _decode_answer(tok, new[r].tolist(), eos, stop_ids, stop_strings, lm.causal)
                bar.update(len(rows))
    finally:
        model.train(was_training)
    return texts


def _decode_answer(tok: Any, ids: list[int], eos: int, stop_ids: frozenset[int], stop_strings: tuple[str, ...],
                   causal: bool) -> str:
    if causal:
        keep = []
        for t in ids:
            if t == eos:
                break
            keep.append(t)
            if t in stop_ids:
                break
        ids = keep
    return _cut(tok.decode(ids, skip_special_tokens=True), stop_strings).strip()


# --------------------------------------------------------------------------- evaluation


def predict(lm: Any, items: Sequence[EvalItem], cfg: Config, *, progress: bool = True) -> list[dict[str, Any]]:
    """Prediction records (`task`, `instance_id`, `prompt`, `prediction`, `references`, `category`, `kind`, `split`)."""
    desc = f"predicting {items[0].split}" if items else "predicting"
    texts = generate_texts(lm, [it.prompt for it in items], max_new_tokens=cfg.evaluation.max_new_tokens,
                           stop_strings=cfg.prompt.stop_strings, batch_size=cfg.evaluation.batch_size,
                           max_source_length=cfg.prompt.max_source_length, progress=progress, desc=desc)
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
        from activeit.errors import ConfigError

        raise ConfigError(f"no {split} tasks to evaluate on")
    start = time.perf_counter()
    items = build_items(tasks, lm.tokenizer, cfg, causal=lm.causal, split=split, n_instances=n_instances)
    records = predict(lm, items, cfg, progress=progress)
    metrics = score_records(records)
    log.info("%s: %d instances of %d tasks in %.1f s: rougeL %.2f, exact_match %.2f", split, len(records),
             len(tasks), time.perf_counter() - start, metrics["rougeL"], metrics["exact_match"])
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic.write_jsonl(out / "predictions.jsonl", records)
        atomic.write_json(out / "metrics.json", metrics)
    return metrics


def split_tasks(cfg: Config, library: Any, split: str, tasks_file: str | os.PathLike | None = None) -> list[str]:
    """Task names of a split from the config's pool (or from a task-list file)."""
    from activeit.pool import initial_pool, read_task_list

    instances_per_task(cfg, split)  # validates the split name
    if tasks_file is not None:
        return read_task_list(tasks_file, library)
    pool = initial_pool(library, cfg.data.split, cfg.seed, cfg.rounds.chunk)
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
    from activeit.tasks import TaskLibrary
    from activeit.training import load_trained

    library = TaskLibrary(cfg.data.path, metadata=cfg.data.metadata)
    names = split_tasks(cfg, library, split, tasks_file)
    lm = load_trained(model, cfg)
    return evaluate(lm, [library.load(n) for n in names], cfg, split=split, out_dir=out_dir, progress=progress)
