"""Exact match, ROUGE-1 and ROUGE-L of predictions against references, grouped as the reference does.

The numbers are those of the reference `compute_metrics.py` (PlusLabNLP/Active-IT
`ActiveIT/src/compute_metrics.py`, itself Tk-Instruct's `src/compute_metrics.py`), read line by line:

* **Exact match** compares `normalize_answer(prediction) == normalize_answer(reference)`, where
  `normalize_answer` lower-cases, deletes every `string.punctuation` character and collapses
  whitespace. Articles are kept (the SQuAD article removal is commented out there).
* **ROUGE-1 / ROUGE-L** are `rouge_score.RougeScorer([...], use_stemmer=True)` F-measures on the
  **raw** strings: `normalize_answer` is *not* applied first. rouge_score's default tokenizer does
  its own normalisation (lower-case, every character outside `[a-z0-9]` becomes a space, Porter
  stemming of tokens longer than 3 characters). Consequence kept on purpose: text with no ASCII
  letters or digits (e.g. "東京") has no ROUGE tokens and scores 0, even when it matches exactly
  (its exact match is 100). The reference's GPT-2 tokenizer is for the cross-lingual track only.
* For each instance, each metric is the **max over its references**; then ×100.
* **Grouping averages over instances**, not over task averages: `compute_grouped_metrics` pools
  all instances of a group (a task, a category, a split, a split+kind such as `dev_cls`) and
  calls `compute_metrics` on them, so a category with a 100-instance task and a 10-instance task
  weighs the first ten times more. The overall score is the mean over all instances. Every
  value is rounded to 4 decimals, as there. `average="task"` gives the macro mean over task
  scores instead (not what the reference reports).

Categories are the task's first NI category, as in the reference (which also lower-cases and
joins it with `_` for its key names; here the category is kept as written).
"""

from __future__ import annotations

import math
import os
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from activeit import atomic
from activeit.errors import ActiveitError

METRIC_NAMES = ("exact_match", "rouge1", "rougeL")
KINDS = ("cls", "gen")
FLAT_METRICS = METRIC_NAMES + tuple(f"{name}_{kind}" for kind in KINDS for name in METRIC_NAMES)
"""Top-level keys of a metrics object (what a best-checkpoint metric may name)."""
DECIMALS = 4
UNCATEGORIZED = "Uncategorized"
_PUNCTUATION = frozenset(string.punctuation)


class PredictionFileError(ActiveitError):
    """A predictions file is missing, malformed or empty."""


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Metric:
    """A per-instance metric: `fn(prediction, reference) -> score in [0, 1]`."""

    name: str
    fn: Callable[[str, str], float]
    higher_is_better: bool = True
    aggregation: str = "mean"
    """How instance scores combine: max over references, then the mean over instances (×100)."""


METRICS: dict[str, Metric] = {}


def register_metric(name: str, *, higher_is_better: bool = True, aggregation: str = "mean"):
    """Decorator: add a `(prediction, reference) -> float` function to `METRICS`."""

    def wrap(fn: Callable[[str, str], float]) -> Callable[[str, str], float]:
        METRICS[name] = Metric(name, fn, higher_is_better, aggregation)
        return fn

    return wrap


# --------------------------------------------------------------------------- per instance


def normalize_answer(text: str) -> str:
    """Lower-case, drop ASCII punctuation, collapse whitespace (articles are kept)."""
    return " ".join("".join(ch for ch in text.lower() if ch not in _PUNCTUATION).split())


@lru_cache(maxsize=1)
def _scorer() -> Any:
    from rouge_score import rouge_scorer

    # One scorer for both types: same tokenizer and stemmer as two separate scorers, half the work.
    return rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)


@lru_cache(maxsize=65536)
def _rouge(prediction: str, reference: str) -> tuple[float, float]:
    scores = _scorer().score(target=reference, prediction=prediction)
    return float(scores["rouge1"].fmeasure), float(scores["rougeL"].fmeasure)


@register_metric("exact_match")
def exact_match(prediction: str, reference: str) -> float:
    """1.0 if the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


@register_metric("rouge1")
def rouge1(prediction: str, reference: str) -> float:
    """ROUGE-1 F-measure (rouge_score default tokenizer, Porter stemming) on the raw strings."""
    return _rouge(prediction, reference)[0]


@register_metric("rougeL")
def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (rouge_score default tokenizer, Porter stemming) on the raw strings."""
    return _rouge(prediction, reference)[1]


def instance_scores(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """Each metric's max over the references, ×100 (not rounded)."""
    if isinstance(references, str) or not references:
        raise ValueError("references must be a non-empty list of strings")
    return {name: 100.0 * max(METRICS[name].fn(prediction, ref) for ref in references) for name in METRIC_NAMES}


def compute_metrics(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean over instances of the per-instance scores, rounded to 4 decimals (reference `compute_metrics`)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
    if not predictions:
        raise ValueError("no predictions to score")
    rows = [instance_scores(p, r) for p, r in zip(predictions, references)]
    return _mean(rows)


def _mean(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    return {name: round(math.fsum(r[name] for r in rows) / len(rows), DECIMALS) for name in METRIC_NAMES}


# --------------------------------------------------------------------------- grouping


@dataclass(frozen=True)
class Scored:
    """One scored instance with the labels it is grouped by."""

    task: str
    category: str
    kind: str | None
    scores: Mapping[str, float]


def _group(rows: Sequence[Scored], average: str) -> dict[str, Any]:
    if average == "instance":
        out: dict[str, Any] = _mean([r.scores for r in rows])
    else:
        per_task: dict[str, list[Scored]] = {}
        for r in rows:
            per_task.setdefault(r.task, []).append(r)
        task_means = [{k: math.fsum(x.scores[k] for x in g) / len(g) for k in METRIC_NAMES} for g in per_task.values()]
        out = _mean(task_means)
    out["n"] = len(rows)
    out["n_tasks"] = len({r.task for r in rows})
    return out


def aggregate(rows: Sequence[Scored], *, average: Literal["instance", "task"] = "instance") -> dict[str, Any]:
    """Overall scores, flat per-kind keys (`rougeL_cls`, ...) and `by_task` / `by_category` / `by_kind`.

    `average="instance"` (the reference) pools instances inside every group; `"task"` averages
    task means. Per-task scores are the same either way.
    """
    if average not in ("instance", "task"):
        raise ValueError(f"average must be 'instance' or 'task', got {average!r}")
    if not rows:
        raise ValueError("no predictions to score")
    by_task: dict[str, list[Scored]] = {}
    by_category: dict[str, list[Scored]] = {}
    by_kind: dict[str, list[Scored]] = {}
    for r in rows:
        by_task.setdefault(r.task, []).append(r)
        by_category.setdefault(r.category, []).append(r)
        if r.kind is not None:
            by_kind.setdefault(r.kind, []).append(r)
    result = _group(rows, average)
    for kind in sorted(by_kind):
        group = _group(by_kind[kind], average)
        for name in METRIC_NAMES:
            result[f"{name}_{kind}"] = group[name]
    result["average"] = average
    result["by_task"] = {
        name: {**_mean([r.scores for r in group]), "n": len(group), "category": group[0].category, "kind": group[0].kind}
        for name, group in sorted(by_task.items())
    }
    result["by_category"] = {c: _group(by_category[c], average) for c in sorted(by_category)}
    result["by_kind"] = {k: _group(by_kind[k], average) for k in sorted(by_kind)}
    return result


def score_records(records: Iterable[Mapping[str, Any]], *, average: Literal["instance", "task"] = "instance") -> dict[str, Any]:
    """Metrics of prediction records (`task`, `prediction`, `references`, optional `category`, `kind`).

    Returns the `metrics.json` object: `exact_match`, `rouge1`, `rougeL` (overall), `n`,
    `n_tasks`, `<metric>_cls` / `<metric>_gen`, `by_task`, `by_category`, `by_kind`, and `split`
    when every record names the same one.
    """
    rows = []
    splits = set()
    for i, rec in enumerate(records):
        _check_record(rec, i)
        rows.append(Scored(
            task=rec["task"],
            category=rec.get("category") or UNCATEGORIZED,
            kind=rec.get("kind"),
            scores=instance_scores(rec["prediction"], rec["references"]),
        ))
        splits.add(rec.get("split"))
    result = aggregate(rows, average=average)
    if len(splits) == 1 and None not in splits:
        result = {"split": splits.pop(), **result}
    return result


def _check_record(rec: Any, index: int) -> None:
    where = f"record {index + 1}"
    if not isinstance(rec, Mapping):
        raise PredictionFileError(f"{where}: must be a JSON object")
    if not isinstance(rec.get("task"), str):
        raise PredictionFileError(f"{where}: missing string field 'task'")
    if not isinstance(rec.get("prediction"), str):
        raise PredictionFileError(f"{where}: missing string field 'prediction'")
    refs = rec.get("references")
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
        raise PredictionFileError(f"{where}: 'references' must be a non-empty list of strings")
    if rec.get("kind") is not None and rec["kind"] not in KINDS:
        raise PredictionFileError(f"{where}: 'kind' must be 'cls' or 'gen', got {rec['kind']!r}")


def read_predictions(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a `predictions.jsonl` file; a one-line `PredictionFileError` if malformed."""
    path = Path(path)
    if not path.is_file():
        raise PredictionFileError(f"{path}: predictions file not found")
    records = atomic.read_jsonl(path, PredictionFileError)
    if not records:
        raise PredictionFileError(f"{path}: no predictions")
    return records


def metrics_from_file(path: str | os.PathLike, *, average: Literal["instance", "task"] = "instance",
                      split: str | None = None) -> dict[str, Any]:
    """Recompute `metrics.json` from a `predictions.jsonl` file (only the records of `split`, if given)."""
    records = read_predictions(path)
    if split is not None:
        records = [r for r in records if isinstance(r, Mapping) and r.get("split") == split]
        if not records:
            raise PredictionFileError(f"{path}: no predictions of split {split!r}")
    try:
        return score_records(records, average=average)
    except PredictionFileError as e:
        raise PredictionFileError(f"{path}: {e}") from None


# --------------------------------------------------------------------------- display


def format_table(metrics: Mapping[str, Any]) -> str:
    """A plain-text table: overall, per kind, per category, per task."""
    header = ("group", "n", "exact_match", "rouge1", "rougeL")
    rows: list[tuple[str, ...]] = []

    def add(label: str, m: Mapping[str, Any]) -> None:
        rows.append((label, str(m["n"]), *(f"{m[k]:.2f}" for k in METRIC_NAMES)))

    add("overall", metrics)
    for kind, m in metrics.get("by_kind", {}).items():
        add(f"kind: {kind}", m)
    for cat, m in metrics.get("by_category", {}).items():
        add(f"category: {cat}", m)
    for task, m in metrics.get("by_task", {}).items():
        add(f"task: {task}", m)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in [header, *rows]]
    return "\n".join(lines)

