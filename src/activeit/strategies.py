"""Task selection strategies: plain functions registered by name (docs/semantics.md).

A strategy is `fn(pool, scores, k, rng, **options) -> picked task names`. `pool` holds objects
with `.name`, `.kind`, `.category`; `scores` maps task name to an object with
`.prompt_uncertainty`, `.prediction_probability`, `.perplexity`. Strategies rank; they never
touch a model. Options (`rate`, `pu_order`, ...) come from the `strategy:` config section and
are passed only to functions that declare them. Ties always break by task name.
"""

from __future__ import annotations

import difflib
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from activeit.errors import ConfigError
from activeit.rng import make_rng
from activeit.scores import PP, PPL, PU, SCORERS, produced_scores, pu_median

log = logging.getLogger(__name__)


class PoolTask(Protocol):
    name: str
    kind: str
    category: str


StrategyFn = Callable[..., list[str]]


@dataclass(frozen=True)
class Strategy:
    name: str
    fn: StrategyFn
    needs: tuple[str, ...]
    """Scores the strategy reads; checked before any work starts."""


STRATEGIES: dict[str, Strategy] = {}


def register_strategy(name: str, needs: Sequence[str] = ()) -> Callable[[StrategyFn], StrategyFn]:
    """Register `fn(pool, scores, k, rng, **options)` under `name` (usable in configs)."""
    unknown = set(needs) - produced_scores()
    if unknown:
        raise ValueError(f"unknown score names {sorted(unknown)}; known: {sorted(produced_scores())}")

    def wrap(fn: StrategyFn) -> StrategyFn:
        if name in STRATEGIES:
            raise ValueError(f"strategy {name!r} is already registered")
        STRATEGIES[name] = Strategy(name, fn, tuple(needs))
        return fn

    return wrap


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        close = difflib.get_close_matches(name, STRATEGIES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown strategy {name!r}; {hint}known: {', '.join(sorted(STRATEGIES))}")
    return STRATEGIES[name]


def needed_scores(names: Sequence[str]) -> set[str]:
    return {score for name in names for score in get_strategy(name).needs}


def scores_to_compute(cfg: Any, *, all_by_default: bool = False) -> tuple[str, ...]:
    """The scorers to run: `scoring.compute` if set; else those producing what the configured
    strategies need (or every registered scorer)."""
    if cfg.scoring.compute is not None:
        unknown = [n for n in cfg.scoring.compute if n not in SCORERS]
        if unknown:
            raise ConfigError(f"scoring.compute: unknown scorer {unknown[0]!r}; known: {', '.join(SCORERS)}")
        return tuple(n for n in SCORERS if n in cfg.scoring.compute)
    if all_by_default:
        return tuple(SCORERS)
    needed = needed_scores(cfg.strategies)
    return tuple(n for n, scorer in SCORERS.items() if needed & set(scorer.produces))


def check_strategy_names(cfg: Any) -> None:
    """Config-time check: every strategy exists and the scores it needs will be computed."""
    for name in cfg.strategies:
        get_strategy(name)
    computed = scores_to_compute(cfg) if cfg.scoring.compute is not None else None
    if computed is not None:
        missing = needed_scores(cfg.strategies) - produced_scores(computed)
        if missing:
            raise ConfigError(f"strategies {', '.join(cfg.strategies)} need scores {', '.join(sorted(missing))} "
                              f"but scoring.compute is {list(cfg.scoring.compute)}")


def check_scores_available(name: str, entries: Iterable[Any]) -> None:
    """Before picking: every task carries every score the strategy reads."""
    for score in get_strategy(name).needs:
        missing = [e.name for e in entries if getattr(e, score, None) is None]
        if missing:
            raise ConfigError(f"strategy {name!r} needs {score} but {len(missing)} task(s) have none "
                              f"(e.g. {missing[0]!r}); score them with scoring.compute including {score}")


def _value(scores: Mapping[str, Any], name: str, score: str) -> float:
    entry = scores.get(name)
    value = None if entry is None else getattr(entry, score, None)
    if value is None:
        raise ConfigError(f"task {name!r} has no {score} score; score the pool with that score first")
    return float(value)


def rank(pool: Sequence[PoolTask], scores: Mapping[str, Any], score: str, high_first: bool) -> list[str]:
    """Task names ordered by a score, ties by name."""
    sign = -1.0 if high_first else 1.0
    return [n for _, n in sorted((sign * _value(scores, t.name, score), t.name) for t in pool)]


def _shuffled(pool: Sequence[PoolTask], rng: np.random.Generator) -> list[PoolTask]:
    ordered = sorted(pool, key=lambda t: t.name)
    return [ordered[i] for i in rng.permutation(len(ordered))]


# --------------------------------------------------------------------------- random baselines


@register_strategy("random")
def random(pool, scores, k, rng):
    return [t.name for t in _shuffled(pool, rng)[:k]]


@register_strategy("random_category")
def random_category(pool, scores, k, rng):
    """One task per not-yet-seen first category (in shuffled order), then random fill."""
    picked, seen, rest = [], set(), []
    for t in _shuffled(pool, rng):
        if len(picked) < k and t.category not in seen:
            picked.append(t.name)
            seen.add(t.category)
        else:
            rest.append(t.name)
    if len(picked) < k:
        rest = [rest[i] for i in rng.permutation(len(rest))]
        picked += rest[: k - len(picked)]
    return picked


def _kind_first(pool, k, rng, kind):
    shuffled = _shuffled(pool, rng)
    first = [t.name for t in shuffled if t.kind == kind]
    other = [t.name for t in shuffled if t.kind != kind]
    return (first + other)[:k]


@register_strategy("random_cls")
def random_cls(pool, scores, k, rng):
    return _kind_first(pool, k, rng, "cls")


@register_strategy("random_gen")
def random_gen(pool, scores, k, rng):
    return _kind_first(pool, k, rng, "gen")


# --------------------------------------------------------------------------- score rankings


@register_strategy("high_perplexity", needs=[PPL])
def high_perplexity(pool, scores, k, rng):
    return rank(pool, scores, PPL, high_first=True)[:k]


@register_strategy("low_perplexity", needs=[PPL])
def low_perplexity(pool, scores, k, rng):
    return rank(pool, scores, PPL, high_first=False)[:k]


@register_strategy("high_prompt_uncertainty", needs=[PU])
def high_prompt_uncertainty(pool, scores, k, rng):
    """The method: tasks whose answers move most when the instruction is perturbed."""
    return rank(pool, scores, PU, high_first=True)[:k]


@register_strategy("low_prompt_uncertainty", needs=[PU])
def low_prompt_uncertainty(pool, scores, k, rng):
    return rank(pool, scores, PU, high_first=False)[:k]


@register_strategy("merge_rank", needs=[PU, PP])
def merge_rank(pool, scores, k, rng, *, rate=0.5, pu_order="high", pp_order="high"):
    """floor(rate·k) tasks from the PU ranking, the rest from the PP ranking, no duplicates."""
    picked = rank(pool, scores, PU, pu_order == "high")[: int(k * rate // 1)]
    taken = set(picked)
    for name in rank(pool, scores, PP, pp_order == "high"):
        if len(picked) >= k:
            break
        if name not in taken:
            picked.append(name)
            taken.add(name)
    return picked


@register_strategy("sum_rank", needs=[PU, PP])
def sum_rank(pool, scores, k, rng, *, reverse_pp=False, order="high", sum_rank_ties="prompt_uncertainty"):
    """Sum of ascending PU rank and PP rank (PP descending if `reverse_pp`); highest or lowest sums.

    Equal sums keep ascending PU order and the whole list is reversed for `high` — the reference's
    stable sort then `reverse()` (TLAL_utils.PI_Std_Select) — so ties go to the higher PU when taking
    the highest sums and to the lower PU when taking the lowest. `sum_rank_ties: name`: by task name.
    """
    pu_order = rank(pool, scores, PU, high_first=False)
    pu_rank = {name: i for i, name in enumerate(pu_order)}
    total = dict(pu_rank)
    for i, name in enumerate(rank(pool, scores, PP, high_first=reverse_pp)):
        total[name] += i
    if sum_rank_ties == "name":
        sign = -1 if order == "high" else 1
        return [n for _, n in sorted((sign * s, n) for n, s in total.items())][:k]
    ascending = sorted(pu_order, key=lambda n: (total[n], pu_rank[n]))
    return (ascending[::-1] if order == "high" else ascending)[:k]


# --------------------------------------------------------------------------- task-map regions


@register_strategy("ambiguous", needs=[PU])
def ambiguous(pool, scores, k, rng):
    return rank(pool, scores, PU, high_first=True)[:k]


def _low_pu_by_pp(pool, scores, k, high_pp: bool) -> list[str]:
    mid = pu_median([_value(scores, t.name, PU) for t in pool])
    low = [t for t in pool if _value(scores, t.name, PU) < mid]
    picked = rank(low, scores, PP, high_first=high_pp)[:k]
    if len(picked) < k:
        taken = set(picked)
        picked += [n for n in rank(pool, scores, PP, high_first=high_pp) if n not in taken][: k - len(picked)]
    return picked


@register_strategy("easy", needs=[PU, PP])
def easy(pool, scores, k, rng):
    """Low prompt uncertainty (below the pool median), highest prediction probability first."""
    return _low_pu_by_pp(pool, scores, k, high_pp=True)


@register_strategy("difficult", needs=[PU, PP])
def difficult(pool, scores, k, rng):
    """Low prompt uncertainty (below the pool median), lowest prediction probability first."""
    return _low_pu_by_pp(pool, scores, k, high_pp=False)


# --------------------------------------------------------------------------- calling


def _options_for(fn: StrategyFn, options: Mapping[str, Any]) -> dict[str, Any]:
    params = inspect.signature(fn).parameters
    return {key: value for key, value in options.items() if key in params}


def _call(strategy: Strategy, pool, scores, k, rng, options) -> list[str]:
    picked = list(strategy.fn(pool, scores, k, rng, **_options_for(strategy.fn, options)))
    names = {t.name for t in pool}
    if len(set(picked)) != len(picked) or not set(picked) <= names or len(picked) != min(k, len(pool)):
        raise RuntimeError(f"strategy {strategy.name!r} returned an invalid pick: {picked}")
    return picked


def select(
    name: str,
    pool: Sequence[PoolTask],
    scores: Mapping[str, Any],
    k: int,
    rng: np.random.Generator,
    *,
    cls_ratio: float | None = None,
    options: Mapping[str, Any] | None = None,
) -> list[str]:
    """Pick `k` tasks with strategy `name`; with `cls_ratio`, the cls/gen ratio wrapper.

    The wrapper takes `min(int(k·ratio), #cls)` cls tasks and the rest from gen tasks, each
    with the same strategy on its sub-pool (cls topped up if gen runs out).
    """
    strategy = get_strategy(name)
    options = dict(options or {})
    if k >= len(pool):
        if k > len(pool):
            log.warning("pool has %d tasks, fewer than the %d asked for: taking all of them", len(pool), k)
        k = len(pool)
    if k <= 0:
        return []
    if cls_ratio is None:
        return _call(strategy, pool, scores, k, rng, options)
    cls_pool = [t for t in pool if t.kind == "cls"]
    gen_pool = [t for t in pool if t.kind != "cls"]
    n_cls = min(int(k * cls_ratio), len(cls_pool))
    n_gen = min(k - n_cls, len(gen_pool))
    n_cls = k - n_gen
    picked = _call(strategy, cls_pool, scores, n_cls, rng, options) if n_cls else []
    return picked + (_call(strategy, gen_pool, scores, n_gen, rng, options) if n_gen else [])


def select_for_round(strategy: Any, name: str, pool: Sequence[PoolTask], scores: Mapping[str, Any], k: int,
                     seed: int, round_index: int) -> list[str]:
    """`select` with the options of a `strategy:` config section and the rng of (seed, name, round).

    `activeit select` and `activeit run` both pick through here, so a round-0 pick made by hand
    equals the one the pipeline makes from the same scores.
    """
    return select(name, pool, scores, k, make_rng(seed, "select", name, round_index), cls_ratio=strategy.cls_ratio,
                  options=strategy.model_dump(exclude={"name", "cls_ratio"}))
