"""Task scores from the current model: perplexity, prompt uncertainty, prediction probability.

Semantics are docs/semantics.md. Every number a task gets is written as one
record per (task, instance, perturbation) — the exact prompt, label, target ids, token count,
mean CE and p — so `task_scores_from_records` recomputes any task score from `records.jsonl`
alone. Scorers are registered by name (`@register_scorer(name, produces=...)`) with the
function that turns a task's records into its scores; configs and strategies refer to the
names. All inference goes through `activeit.engine`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from tqdm import tqdm

from activeit import atomic, distributed
from activeit.config import Config, ScoringConfig
from activeit.engine import Engine, engine_for, target_ids
from activeit.errors import ConfigError
from activeit.perturb import mask_tokens_for, perturbations
from activeit.prompts import build_source, model_prompt
from activeit.rng import make_rng
from activeit.tasks import Example, Instance, Task, TaskLibrary

PU, PP, PPL = "prompt_uncertainty", "prediction_probability", "perplexity"

Aggregate = Callable[[Mapping[str, Sequence[Mapping[str, Any]]], ScoringConfig], dict[str, float | None]]


@dataclass(frozen=True)
class Request:
    """A (prompt, target) pair a scorer wants scored, and the record it becomes."""

    purpose: str
    instance: Instance
    perturbation: int
    prompt: str
    label: str
    target_ids: list[int]
    known: Any = None
    """Its score when generation already computed it (then it is not scored again)."""
    identical: bool = False
    """A perturbed prompt (k >= 1) that came out as the same text as the original one (k = 0)."""


@dataclass(frozen=True)
class ScorerDef:
    name: str
    produces: tuple[str, ...]
    """The task scores (TaskScores fields) it fills, which strategies may `need`."""
    requests: Callable[[TaskDraw], list[Request]]
    """The pairs to score for one task (their records carry `purpose` = the scorer's name)."""
    aggregate: Aggregate
    """A task's records by purpose → its scores."""


SCORERS: dict[str, ScorerDef] = {}


def register_scorer(name: str, produces: Sequence[str]) -> Callable[[type], type]:
    """Register a scorer class (static `requests(draw)` and `aggregate(parts, scoring)`) under `name`,
    usable in `scoring.compute`; strategies `need` what it `produces`."""
    def wrap(cls: type) -> type:
        if name in SCORERS:
            raise ValueError(f"scorer {name!r} is already registered")
        SCORERS[name] = ScorerDef(name, tuple(produces), cls.requests, cls.aggregate)
        return cls
    return wrap


def produced_scores(names: Sequence[str] | None = None) -> set[str]:
    """The task scores these scorers (default: all registered) produce."""
    return {score for n in (SCORERS if names is None else names) for score in SCORERS[n].produces}


@dataclass(frozen=True)
class Record:
    """One scored (task, instance, perturbation) pair: a line of records.jsonl."""

    task: str
    instance_id: str
    perturbation: int
    prompt: str
    label: str
    target_ids: list[int]
    n_tokens: int
    mean_ce: float
    p: float
    purpose: str
    """`prompt_uncertainty` or `perplexity` (perplexity reuses PU's k=0 records when labels are predicted)."""
    identical: bool = False
    """A perturbed prompt (k >= 1) whose text equals the original prompt's: dropping words changed nothing."""


@dataclass
class TaskScores:
    """One line of tasks.json: the scores of a task and what they were computed from."""

    task: str
    kind: str
    category: str
    n: int
    K: int
    prompt_uncertainty: float | None = None
    prediction_probability: float | None = None
    perplexity: float | None = None
    perturbed_mean: float | None = None
    """Mean p over instances and perturbations k >= 1 (the `aggregate: std` variant's mean)."""
    identical_perturbations: int | None = None
    """How many of the task's n × K perturbed prompts equal the original prompt (their p differs from
    p_i0 by nothing, which pulls PU down); `scoring.redraw_identical` draws such prompts again."""
    region: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Scores of registered scorers beyond the built-in ones, by name."""

    @property
    def name(self) -> str:
        return self.task

    def __getattr__(self, key: str) -> Any:
        """A registered scorer's score reads like a built-in one (`entry.my_score`)."""
        extra = self.__dict__.get("extra") or {}
        if key in extra:
            return extra[key]
        raise AttributeError(key)


_FIELDS = {f.name for f in fields(TaskScores)}


# --------------------------------------------------------------------------- the formulas


def prompt_uncertainty(p: np.ndarray, *, absolute: bool = True, aggregate: str = "mean",
                       std_over: str = "all") -> float:
    """PU from a (n instances × K+1 prompts) matrix of p; column 0 is the original prompt.

    `mean`: mean over i, k >= 1 of |p_ik − p_i0| (signed if not `absolute`).
    `std`: standard deviation of p_ik over i and every column (`std_over: all`, the reference's
    variant without `bald`, whose K prompts include the original) or over k >= 1 (`perturbed`).
    """
    p = np.asarray(p, dtype=np.float64)
    if aggregate == "std" and std_over == "all" and p.ndim == 2 and p.shape[1] >= 1:
        return float(np.std(p))
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError("prompt uncertainty needs an (n, K+1) matrix with K >= 1")
    if aggregate == "std":
        return float(np.std(p[:, 1:]))
    diff = p[:, 1:] - p[:, :1]
    return float(np.mean(np.abs(diff) if absolute else diff))


def prediction_probability(p: np.ndarray) -> float:
    """PP: mean over instances of p under the original prompt."""
    return float(np.mean(np.asarray(p, dtype=np.float64)[:, 0]))


def perplexity(mean_ces: Sequence[float]) -> float:
    """Arithmetic mean of per-instance perplexities exp(mean CE) (reference definition)."""
    return float(np.mean(np.exp(np.asarray(mean_ces, dtype=np.float64))))


def _p_matrix(records: Sequence[Mapping[str, Any]]) -> np.ndarray:
    by_instance: dict[str, dict[int, float]] = defaultdict(dict)
    for r in records:
        by_instance[r["instance_id"]][int(r["perturbation"])] = float(r["p"])
    ks = sorted({k for row in by_instance.values() for k in row})
    if ks != list(range(len(ks))) or any(sorted(row) != ks for row in by_instance.values()):
        raise ValueError("records do not form a complete instance × perturbation grid")
    return np.array([[row[k] for k in ks] for _, row in sorted(by_instance.items())])


@register_scorer(PU, produces=(PU, PP))
class PromptUncertaintyScorer:
    """p of each instance's label under the original prompt (k = 0) and K perturbed ones."""

    @staticmethod
    def requests(draw: TaskDraw) -> list[Request]:
        if draw.scoring.label == "predicted":
            labels = [draw.scorer.predicted_label(g) for g in draw.generated()]
        else:
            labels = [(inst.outputs[0], target_ids(draw.scorer.lm, inst.outputs[0]), None) for inst in draw.instances]
        out = []
        firsts: dict[str, str] = {}
        for v in draw.variants:
            for inst, original, (text, ids, known) in zip(draw.instances, draw.originals, labels):
                shown = inst if v.input_of(inst) == inst.input else replace(inst, input=v.input_of(inst))
                prompt = draw.prompt(v.definition, v.examples, shown)
                first = firsts.setdefault(inst.id, prompt)
                out.append(Request(PU, inst, v.index, prompt, text, ids, known if v.index == 0 and prompt == original
                                   else None, identical=v.index > 0 and prompt == first))
        return out

    @staticmethod
    def aggregate(parts, scoring):
        if not parts.get(PU):
            return {}
        p = _p_matrix(parts[PU])
        flags = [r.get("identical") for r in parts[PU] if int(r["perturbation"]) > 0]
        identical = sum(bool(f) for f in flags) if any(f is not None for f in flags) else None
        return {"n": p.shape[0], "K": p.shape[1] - 1, "identical_perturbations": identical,
                PU: prompt_uncertainty(p, absolute=scoring.absolute, aggregate=scoring.aggregate,
                                       std_over=scoring.std_over),
                PP: prediction_probability(p), "perturbed_mean": float(np.mean(p[:, 1:])) if p.shape[1] > 1 else None}


@register_scorer(PPL, produces=(PPL,))
class PerplexityScorer:
    """The generated labels under the task's own prompt; their likelihood comes free with generation."""

    @staticmethod
    def requests(draw: TaskDraw) -> list[Request]:
        gens = draw.generated()
        if PU in draw.scorer.compute and draw.scoring.label == "predicted":
            v0 = next(v for v in draw.variants if v.index == 0)
            if all(draw.prompt(v0.definition, v0.examples, inst) == original
                   and draw.scorer.predicted_label(g)[1] == list(g.token_ids)
                   for inst, original, g in zip(draw.instances, draw.originals, gens)):
                return []  # prompt uncertainty's k = 0 records are these very pairs: not written twice
        return [Request(PPL, inst, 0, original, g.text, list(g.token_ids), g.score)
                for inst, original, g in zip(draw.instances, draw.originals, gens)]

    @staticmethod
    def aggregate(parts, scoring):
        records = parts.get(PPL) or [r for r in parts.get(PU, []) if int(r["perturbation"]) == 0
                                     and scoring.label == "predicted"]
        if not records:
            return {}
        return {PPL: perplexity([r["mean_ce"] for r in records]), "n": len(records)}


def task_scores_from_records(records: Iterable[Mapping[str, Any]], scoring: ScoringConfig,
                             info: Mapping[str, tuple[str, str]] | None = None) -> dict[str, TaskScores]:
    """Recompute every task's scores from records with each registered scorer's aggregation;
    `info`: name → (kind, category)."""
    grouped: dict[str, dict[str, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        grouped[r["task"]][r.get("purpose", PU)].append(r)
    out = {task: _task_entry(task, parts, scoring, info) for task, parts in sorted(grouped.items())}
    _assign_regions(out)
    return out


def _task_entry(task: str, parts: Mapping[str, Sequence[Mapping[str, Any]]], scoring: ScoringConfig,
                info: Mapping[str, tuple[str, str]] | None) -> TaskScores:
    kind, category = (info or {}).get(task, ("", ""))
    entry = TaskScores(task, kind, category, n=0, K=0)
    for scorer in SCORERS.values():
        for key, value in scorer.aggregate(parts, scoring).items():
            if key == "n" and entry.n:
                continue
            if key in _FIELDS:
                setattr(entry, key, value)
            else:
                entry.extra[key] = value
    return entry


def stream_task_scores(records: Iterable[Mapping[str, Any]], scoring: ScoringConfig,
                       info: Mapping[str, tuple[str, str]] | None = None) -> dict[str, TaskScores]:
    """`task_scores_from_records` for records grouped by task (as `score_tasks` writes them): one task's
    records in memory at a time, so a 52K-task records.jsonl aggregates in bounded memory."""
    out: dict[str, TaskScores] = {}
    task: str | None = None
    parts: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        if r["task"] != task:
            if task is not None:
                if task in out:
                    raise ValueError(f"records of task {task!r} are not contiguous")
                out[task] = _task_entry(task, parts, scoring, info)
            task, parts = r["task"], defaultdict(list)
        parts[r.get("purpose", PU)].append(r)
    if task is not None:
        if task in out:
            raise ValueError(f"records of task {task!r} are not contiguous")
        out[task] = _task_entry(task, parts, scoring, info)
    out = dict(sorted(out.items()))
    _assign_regions(out)
    return out


IDENTICAL_WARN_SHARE = 0.1
"""`activeit score` warns when at least this share of all perturbed prompts equal their original."""


def identical_warning(scores: Mapping[str, TaskScores]) -> str | None:
    """One warning line when many perturbed prompts equal the original prompt (short instructions at a
    low drop rate): they measure nothing and pull prompt uncertainty towards 0."""
    counted = [s for s in scores.values() if s.identical_perturbations is not None and s.K]
    total = sum(s.n * s.K for s in counted)
    same = sum(s.identical_perturbations for s in counted)
    if not total or same < IDENTICAL_WARN_SHARE * total:
        return None
    tasks = sum(1 for s in counted if s.identical_perturbations)
    return (f"warning: {same} of {total} perturbed prompts ({100 * same / total:.0f}%, in {tasks} of {len(counted)} "
            f"tasks) are identical to the original prompt; consider scoring.redraw_identical, "
            f"scoring.perturb_input or a higher scoring.drop_rate")


# --------------------------------------------------------------------------- task-map regions


def pu_median(values: Iterable[float]) -> float:
    return float(np.median(list(values)))


def region(pu: float, pp: float, pu_mid: float, pp_mid: float) -> str:
    """Task-map region: PU at or above the pool median is ambiguous; below it, easy if PP is
    at or above the pool's PP median, else difficult."""
    if pu >= pu_mid:
        return "ambiguous"
    return "easy" if pp >= pp_mid else "difficult"


def regions(pus: Mapping[str, float], pps: Mapping[str, float]) -> dict[str, str]:
    if not pus:
        return {}
    pu_mid, pp_mid = pu_median(pus.values()), pu_median(pps.values())
    return {name: region(pus[name], pps[name], pu_mid, pp_mid) for name in pus}


def _assign_regions(scores: Mapping[str, TaskScores]) -> None:
    have = {n: s for n, s in scores.items() if s.prompt_uncertainty is not None}
    labels = regions({n: s.prompt_uncertainty for n, s in have.items()},
                     {n: s.prediction_probability for n, s in have.items()})
    for name, label in labels.items():
        scores[name].region = label


# --------------------------------------------------------------------------- computing


def sample_instances(task: Task, n: int, extra: int, seed: int,
                     round_index: int | None = None) -> tuple[list[Instance], list[Example]]:
    """The n scored instances (seeded shuffle from (seed, round, task), or (seed, task) when the
    round is None) and up to `extra` unscored ones after them, as demonstrations."""
    round_key = () if round_index is None else (int(round_index),)
    order = make_rng(seed, "score-instances", *round_key, task.name).permutation(len(task.instances))
    chosen = [task.instances[i] for i in order[:n]]
    spare = [task.instances[i] for i in order[n: n + extra]]
    return chosen, [Example(inst.input, inst.outputs[0]) for inst in spare]


_CLEANUPS = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
             (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def clean_up_tokenization(text: str) -> str:
    """transformers' `clean_up_tokenization_spaces=True` (as in 4.18, the reference's version): no
    space before punctuation and English contractions. Newer releases skip it for BPE tokenizers."""
    for old, new in _CLEANUPS:
        text = text.replace(old, new)
    return text


def label_max_new_tokens(cfg: Config, *, causal: bool) -> int:
    """`scoring.max_new_tokens`, or the reference's limit: labels of `prompt.max_target_length` tokens in
    all — max_target_length - 1 new tokens for seq2seq (HF's `max_length` counts the decoder start)."""
    if cfg.scoring.max_new_tokens is not None:
        return cfg.scoring.max_new_tokens
    limit = cfg.prompt.max_target_length
    return limit if causal else max(1, limit - 1)


def round_from_dir(out_dir: str | os.PathLike) -> int:
    """The round of a run's `round_<i>/scores` directory (0 for any other directory)."""
    name = Path(out_dir).resolve().parent.name
    head, _, tail = name.partition("_")
    return int(tail) if head == "round" and tail.isdigit() else 0


class Scorer:
    """Scores tasks with one loaded model; holds the prompt/scoring settings of a config."""

    def __init__(self, lm: Any, cfg: Config, *, seed: int | None = None, compute: Sequence[str] | None = None,
                 round_index: int = 0, engine: Engine | None = None):
        compute = tuple(SCORERS) if compute is None else tuple(compute)
        unknown = set(compute) - set(SCORERS)
        if unknown:
            raise ConfigError(f"unknown scores {sorted(unknown)}; known: {', '.join(SCORERS)}")
        self.lm, self.cfg, self.compute = lm, cfg, compute
        self.engine = engine or engine_for(cfg, lm)
        self.seed = cfg.seed if seed is None else seed
        s = cfg.scoring
        self.round_key: int | None = int(round_index) if s.redraw_each_round else None
        self.mask_tokens = mask_tokens_for(lm.tokenizer) if s.mask else None

    def _prompt(self, definition: str | None, examples: Sequence[Example], instance: Instance) -> str:
        p = self.cfg.prompt
        source = build_source(definition if p.add_definition else None, examples, instance.input,
                              tokenizer=self.lm.tokenizer, max_source_length=p.max_source_length)
        return model_prompt(source, causal=self.lm.causal, tokenizer=self.lm.tokenizer,
                            chat_template=self.cfg.model.chat_template)

    def _generate(self, prompts: list[str]) -> list[Any]:
        """Greedy outputs with their likelihood under the prompt they came from, which generation
        computes anyway (equal to re-scoring them, see the likelihood tests)."""
        s = self.cfg.scoring
        return self.engine.generate(prompts, max_new_tokens=label_max_new_tokens(self.cfg, causal=self.lm.causal),
                                    stop_strings=tuple(self.cfg.prompt.stop_strings), batch_size=s.batch_size)

    def predicted_label(self, generation: Any) -> tuple[str, list[int], Any]:
        """(text, target ids, score if known) of a greedy output used as a label.

        Seq2seq with `retokenize_labels`: the reference's round trip — decode the ids (special tokens
        skipped, spaces cleaned), strip, re-tokenise with EOS truncated to max_target_length; the
        generation's score is kept only when that gives back the same ids. Otherwise the generated ids.
        """
        ids = list(generation.token_ids)
        if self.lm.causal or not self.cfg.scoring.retokenize_labels:
            return generation.text, ids, generation.score
        tok = self.lm.tokenizer
        text = clean_up_tokenization(tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False))
        text = text.strip()
        new = list(tok(text, max_length=self.cfg.prompt.max_target_length, truncation=True)["input_ids"])
        return text, new, generation.score if new == ids else None

    def score_task(self, task: Task) -> list[Record]:
        """All records of one task. Depends only on (model, config, seed, round, task).

        Labels and perplexity come from the task's own prompt (the reference's unperturbed
        prediction run); prompt 0 of prompt uncertainty may differ from it (padded or re-drawn
        demonstrations), and then it is scored, not reused from generation.
        """
        return self.score_block([task])[0]

    def score_block(self, tasks: Sequence[Task]) -> list[list[Record]]:
        """The records of several tasks, each list what `score_task` gives for its task: every draw
        is keyed by its own task, only the engine calls are shared, so that one-instance tasks (11
        prompts each) still fill the engine's batches."""
        draws = [self.draw(task) for task in tasks]
        for d in draws:
            d.block = draws
        requests = [[r for name, scorer in SCORERS.items() if name in self.compute for r in scorer.requests(d)]
                    for d in draws]
        todo = [r for per_task in requests for r in per_task if r.known is None]
        fresh = iter(self.engine.score([r.prompt for r in todo], [r.target_ids for r in todo],
                                       batch_size=self.cfg.scoring.batch_size))
        return [[Record(task.name, r.instance.id, r.perturbation, r.prompt, r.label, list(r.target_ids), res.n_tokens,
                        res.mean_ce, res.p, r.purpose, r.identical)
                 for r in per_task
                 for res in [r.known if r.known is not None else next(fresh)]]
                for task, per_task in zip(tasks, requests)]

    def draw(self, task: Task) -> TaskDraw:
        """The instances and perturbations of a task that every scorer shares."""
        s, p = self.cfg.scoring, self.cfg.prompt
        n_extra = s.extra_examples if (s.target == "examples" or s.pad_examples) else 0
        instances, extra = sample_instances(task, s.instances, n_extra, self.seed, self.round_key)
        k = s.perturbations - 1 if (s.aggregate == "std" and s.std_over == "all") else s.perturbations
        variants = perturbations(task, k=k, rate=s.drop_rate, target=s.target, seed=self.seed,
                                 num_pos_examples=p.num_pos_examples, mask_tokens=self.mask_tokens,
                                 extra_examples=extra, round_index=self.round_key, pad_examples=s.pad_examples,
                                 resample_original=s.resample_original, mask_numbering=s.mask_numbering,
                                 instances=instances if s.perturb_input else (), redraw_identical=s.redraw_identical)
        own = tuple(task.positive_examples[:p.num_pos_examples])
        originals = [self._prompt(task.definition, own, inst) for inst in instances]
        return TaskDraw(self, task, instances, list(variants), originals)


@dataclass
class TaskDraw:
    """One task's sampled instances, perturbed prompt variants and own prompts, with the greedy
    labels under the own prompts generated once, when the first scorer asks for them."""

    scorer: Scorer
    task: Task
    instances: list[Instance]
    variants: list[Any]
    originals: list[str]
    _generated: list[Any] | None = None
    block: list[TaskDraw] | None = field(default=None, repr=False, compare=False)
    """The draws scored together with this one: their labels are generated in one engine call."""

    @property
    def scoring(self) -> ScoringConfig:
        return self.scorer.cfg.scoring

    def prompt(self, definition: str | None, examples: Sequence[Example], instance: Instance) -> str:
        return self.scorer._prompt(definition, examples, instance)

    def generated(self) -> list[Any]:
        if self._generated is None:
            pending = [d for d in (self.block or [self]) if d._generated is None]
            outputs = iter(self.scorer._generate([p for d in pending for p in d.originals]))
            for d in pending:
                d._generated = [next(outputs) for _ in d.originals]
        return self._generated


BLOCK_PAIRS = 512
"""Scored pairs a block of tasks aims at: enough for full engine batches, little to redo after a kill."""


def plan_blocks(names: Sequence[str], pairs: Callable[[str], int], block_pairs: int = BLOCK_PAIRS) -> list[range]:
    """Consecutive runs of `names` (as index ranges) of about `block_pairs` pairs each; a task is
    never split, so a task with more pairs than that is a block alone."""
    blocks, start, total = [], 0, 0
    for i, name in enumerate(names):
        n = pairs(name)
        if i > start and total + n > block_pairs:
            blocks.append(range(start, i))
            start, total = i, 0
        total += n
    if start < len(names):
        blocks.append(range(start, len(names)))
    return blocks


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=True).encode()).hexdigest()


def score_tasks(
    lm: Any,
    library: TaskLibrary,
    names: Sequence[str],
    cfg: Config,
    out_dir: str | os.PathLike,
    *,
    seed: int | None = None,
    compute: Sequence[str] | None = None,
    progress: bool = True,
    round_index: int | None = None,
    block_pairs: int = BLOCK_PAIRS,
) -> dict[str, TaskScores]:
    """Score `names`, writing `out_dir/records.jsonl` and `out_dir/tasks.json`.

    `round_index` keys the instance and perturbation draws (`scoring.redraw_each_round`); by
    default it is read from a run's layout (`round_<i>/scores`), else 0.

    Tasks are scored in blocks of consecutive names (`plan_blocks`, ~`block_pairs` pairs), whose
    engine calls are shared; each finished block's records go to `out_dir/parts/<block>.jsonl`
    (atomically), so an interrupted call resumes at the first unfinished block. The two final files
    are streamed from the blocks (one task's records in memory at a time) and appear only when all
    is done. In a multi-process launch every process must call this: each scores its share of the
    blocks, the main process writes the two files, and every process returns all scores.
    """
    out_dir = Path(out_dir)
    compute = tuple(SCORERS) if compute is None else tuple(compute)
    parts = out_dir / "parts"
    if round_index is None:
        round_index = round_from_dir(out_dir)
    scorer = Scorer(lm, cfg, seed=seed, compute=compute, round_index=round_index)
    s = cfg.scoring
    per_instance = s.perturbations + 1 if PU in compute else 1
    def pairs(name: str) -> int:
        return min(s.instances, library.summary(name).n_instances) * per_instance

    if distributed.world_size() > 1:  # every process gets blocks, however small the pool
        block_pairs = max(1, min(block_pairs, -(-sum(map(pairs, names)) // distributed.world_size())))
    blocks = plan_blocks(names, pairs, block_pairs)
    if distributed.is_main():
        _reset_stale_parts(parts, {
            "model": getattr(lm, "source", None), "dtype": str(getattr(lm, "dtype", "")), "seed": scorer.seed,
            "round": scorer.round_key,
            "compute": sorted(compute), "scoring": cfg.scoring.result_inputs(),
            "prompt": cfg.prompt.model_dump(mode="json"), "chat_template": cfg.model.chat_template,
            "blocks": {"count": len(blocks), "sha256": _digest([list(names[b.start:b.stop]) for b in blocks])},
        })
    distributed.barrier()
    started = time.perf_counter()
    mine = distributed.shard(range(len(blocks)))
    bar = tqdm(total=sum(len(blocks[b]) for b in mine), desc="scoring tasks", unit="task",
               disable=not (progress and distributed.is_main()), dynamic_ncols=True)
    for b in mine:
        part = _block_path(parts, b)
        if not part.exists():
            bar.set_postfix_str(names[blocks[b].start][:40])
            records = scorer.score_block([library.load(names[i]) for i in blocks[b]])
            atomic.write_jsonl(part, (asdict(r) for per_task in records for r in per_task))
            atomic.crashpoint(f"scored-{b:06d}")
        bar.update(len(blocks[b]))
    bar.close()
    distributed.barrier()
    if not distributed.is_main():
        distributed.barrier()
        return read_task_scores(out_dir / "tasks.json")[0]
    info = {n: (library.summary(n).kind, library.summary(n).category) for n in names}
    with atomic.atomic_open(out_dir / "records.jsonl") as f:
        scores = stream_task_scores(_copied_rows([_block_path(parts, b) for b in range(len(blocks))], f),
                                    cfg.scoring, info)
    write_task_scores(out_dir / "tasks.json", scores, meta={
        "model": getattr(lm, "name", None), "seed": scorer.seed, "round": scorer.round_key, "compute": list(compute),
        "scoring": cfg.scoring.model_dump(mode="json"), "seconds": round(time.perf_counter() - started, 3),
    })
    shutil.rmtree(parts)
    distributed.barrier()
    return scores


def _block_path(parts: Path, block: int) -> Path:
    return parts / f"{block:06d}.jsonl"


def _copied_rows(paths: Sequence[Path], out: Any) -> Iterator[dict[str, Any]]:
    """The rows of JSONL files in order, each line also copied to `out` as it is read."""
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{lineno}: invalid JSON: {e.msg}") from None
                out.write(line if line.endswith("\n") else line + "\n")
                yield row


def _reset_stale_parts(parts: Path, key: Mapping[str, Any]) -> None:
    """Finished blocks are reused on resume only if they were scored with the same settings and the
    same tasks in the same blocks."""
    stamp = parts / "settings.json"
    if parts.exists():
        try:
            same = json.loads(stamp.read_text(encoding="utf-8")) == json.loads(json.dumps(key))
        except (OSError, json.JSONDecodeError):
            same = False
        if not same:
            shutil.rmtree(parts)
    if not parts.exists():
        parts.mkdir(parents=True)
        atomic.write_json(stamp, key)


# --------------------------------------------------------------------------- tasks.json


def write_task_scores(path: str | os.PathLike, scores: Mapping[str, TaskScores], meta: Mapping[str, Any]) -> None:
    atomic.write_json(path, {"meta": dict(meta), "tasks": {name: _clean(asdict(s)) for name, s in scores.items()}})


def _clean(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in entry.items()}


def read_task_scores(path: str | os.PathLike) -> tuple[dict[str, TaskScores], dict[str, Any]]:
    """Load tasks.json written by `score_tasks`; a clear error for anything else."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        tasks = {name: TaskScores(**entry) for name, entry in data["tasks"].items()}
    except FileNotFoundError:
        raise ConfigError(f"{path}: scores file not found") from None
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"{path}: not a tasks.json written by `activeit score` ({type(e).__name__}: {e})") from None
    return tasks, data.get("meta", {})
