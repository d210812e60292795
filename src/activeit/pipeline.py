"""The active instruction tuning loop (docs/semantics.md), resumable, for strategies × seeds.

Each round of a track (one strategy, one seed): train a fresh model from the base on every
task picked so far → evaluate on dev and test → (not after the last round) score the remain
pool → the strategy picks the round's tasks (`rounds.chunk`, or the next step of `rounds.sizes`).
Round 0 is the same for every strategy of a seed and is computed once. With `evaluation.judge`,
each later round's model also answers the judge's questions, and after all tracks each strategy's
round is judged against the `against` strategy's. Every step writes its outputs atomically, then
records itself in `manifest.json` with a hash of its inputs; a rerun skips finished steps and
refuses to reuse one whose inputs changed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from activeit import atomic, distributed
from activeit.config import AUTO_SPLIT, Config
from activeit.engine import engine_names
from activeit.errors import ConfigError, RunStateError
from activeit.evaluate import build_items, predict
from activeit.judge import LazyJudge, Question, check_rule, answer_inputs, answer_with, judge_resumable, partial_path, \
    questions_digest, read_questions, summarize
from activeit.metrics import score_records
from activeit.models import LoadedModel, load_trained
from activeit.pool import PoolState, config_pool, pool_lines, read_task_list, resolve_split_dir, write_task_list
from activeit.replay import Replay, plan_replay
from activeit.rundir import JUDGE_SUMMARY, Manifest, RunLayout, Track, changed_keys, clean_stale, input_hash, \
    write_summary
from activeit.scores import read_task_scores, score_tasks
from activeit.strategies import check_scores_available, check_strategy_names, scores_to_compute, select_for_round
from activeit.tasks import TaskLibrary
from activeit.training import train as train_model

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- steps


@dataclass
class Step:
    """One resumable piece of a round: its inputs (hashed into the manifest), the files it writes,
    and the function that writes them."""

    key: str
    kind: str
    round: int
    track: Track
    inputs: dict[str, Any]
    outputs: list[str]
    run: Callable[[], None]
    hash: str = field(init=False)

    def __post_init__(self) -> None:
        self.inputs = {"round": self.round, **self.inputs}
        self.hash = input_hash(self.inputs)


@dataclass
class Context:
    cfg: Config
    root: Path
    library: TaskLibrary
    layout: RunLayout
    manifest: Manifest
    replays: dict[Track, Replay] | None = None
    """Per-track lists to replay (`--task-lists`) instead of scoring and selecting."""
    progress: bool = True
    loaded: tuple[str, LoadedModel] | None = None
    """(round directory, its trained model): evaluation and scoring of a round share one load."""
    questions: list[Question] = field(default_factory=list)
    """`evaluation.judge.questions`, read once."""
    judge: LazyJudge | None = None
    """`evaluation.judge.judge`, loaded on first use and kept for every judge step of the run."""

    def model_for(self, round_dir: Path, cfg: Config) -> LoadedModel:
        key = str(round_dir)
        if self.loaded is None or self.loaded[0] != key:
            self.loaded = None
            self.loaded = (key, load_trained(round_dir, cfg))
        return self.loaded[1]


def _seeded(cfg: Config, seed: int) -> Config:
    return cfg.model_copy(update={"seed": seed})


def needs_for(cfg: Config, strategies: Sequence[str], replay: bool) -> list[str]:
    """Scorers a round must run for these strategies (none when replaying given lists)."""
    if cfg.scoring.compute is not None:
        return list(scores_to_compute(cfg))
    if replay:
        return []
    return list(scores_to_compute(cfg.model_copy(update={"experiment": cfg.experiment.model_copy(
        update={"strategies": list(strategies)})})))


def track_steps(ctx: Context, track: Track, pool0: PoolState, picks: Sequence[int]) -> Iterator[Step]:
    """One track (strategy, seed), round by round as the method (docs/semantics.md): train a fresh
    model on every task picked so far → evaluate it → score the remain pool with it → pick the next
    tasks (`picks[i]` after round i). Later steps read what earlier ones wrote, so the walk is lazy."""
    cfg = _seeded(ctx.cfg, track.seed)
    train, remain = list(pool0.train), list(pool0.remain)
    last = cfg.rounds.count - 1
    for i in range(cfg.rounds.count):
        trained = train_step(ctx, cfg, track, i, train, pool0)
        yield trained
        yield evaluate_step(ctx, cfg, track, i, trained, pool0)
        if cfg.evaluation.judge is not None and i > 0:
            yield answer_step(ctx, cfg, track, i, trained)
        if i == last:
            return
        scored = score_step(ctx, cfg, track, i, trained, remain)
        if scored is not None:
            yield scored
        yield select_step(ctx, cfg, track, i, scored, train, remain, picks[i])
        picked = read_task_list(ctx.layout.picked_path(track, i), ctx.library)
        taken = set(picked)
        train, remain = train + picked, [n for n in remain if n not in taken]


def train_step(ctx: Context, cfg: Config, track: Track, i: int, train: list[str], pool0: PoolState) -> Step:
    """Train from the base model on `train` (checkpoints on dev)."""
    rdir = ctx.layout.round_dir(track, i)
    inputs = {"seed": track.seed, "model": cfg.section("model"), "prompt": cfg.section("prompt"),
              "training": cfg.section("training"), "data": cfg.section("data"), "train_tasks": list(train),
              "dev_tasks": list(pool0.dev)}

    def run() -> None:
        rdir.mkdir(parents=True, exist_ok=True)
        if distributed.is_main():
            write_task_list(rdir / "train_tasks.txt", train)
        ctx.loaded = None
        train_model(cfg, train, rdir, dev_tasks=list(pool0.dev), library=ctx.library, callbacks=_crash_callbacks(),
                    force=True)

    model_dir = "adapter" if cfg.training.lora.enabled else "model"
    return Step(ctx.layout.key(track, i, "train"), "train", i, track, inputs,
                [model_dir, "train_result.json", "train_tasks.txt"], run)


def evaluate_step(ctx: Context, cfg: Config, track: Track, i: int, trained: Step, pool0: PoolState) -> Step:
    """Greedy predictions and metrics on the dev and test tasks."""
    rdir = ctx.layout.round_dir(track, i)
    inputs = {"train": trained.hash, "evaluation": cfg.evaluation.result_inputs(), "prompt": cfg.section("prompt"),
              "dtype": cfg.model.dtype, "engine": cfg.engine.result_key(), "dev_tasks": list(pool0.dev),
              "test_tasks": list(pool0.test)}

    def run() -> None:
        lm = ctx.model_for(rdir, cfg)
        metrics: dict[str, Any] = {}
        records: list[dict[str, Any]] = []
        for split, names in (("dev", pool0.dev), ("test", pool0.test)):
            if not names:
                continue
            items = build_items([ctx.library.load(n) for n in names], lm.tokenizer, cfg, causal=lm.causal, split=split)
            rows = predict(lm, items, cfg, progress=ctx.progress)
            metrics[split] = score_records(rows)
            records += rows
        if distributed.is_main():
            atomic.write_jsonl(rdir / "predictions.jsonl", records)
            atomic.write_json(rdir / "metrics.json", metrics)

    return Step(ctx.layout.key(track, i, "evaluate"), "evaluate", i, track, inputs,
                ["metrics.json", "predictions.jsonl"], run)


def score_step(ctx: Context, cfg: Config, track: Track, i: int, trained: Step, remain: list[str]) -> Step | None:
    """Score the remain pool with the round's model (None when the strategies need no scores)."""
    replay = ctx.replays is not None
    needed = needs_for(cfg, ctx.cfg.strategies if i == 0 else [track.strategy], replay)
    if not needed:
        return None
    rdir = ctx.layout.round_dir(track, i)
    inputs = {"train": trained.hash, "scoring": cfg.scoring.result_inputs(), "prompt": cfg.section("prompt"),
              "dtype": cfg.model.dtype, "engine": cfg.engine.result_key(), "seed": track.seed, "remain": list(remain),
              "compute": needed}

    def run() -> None:
        score_tasks(ctx.model_for(rdir, cfg), ctx.library, remain, cfg, rdir / "scores", compute=needed,
                    progress=ctx.progress, round_index=i)

    return Step(ctx.layout.key(track, i, "score"), "score", i, track, inputs,
                ["scores/tasks.json", "scores/records.jsonl"], run)


def select_step(ctx: Context, cfg: Config, track: Track, i: int, scored: Step | None, train: list[str],
                remain: list[str], k: int) -> Step:
    """The strategy picks `k` tasks of the remain pool (or the replayed list gives them)."""
    rdir = ctx.layout.round_dir(track, i)
    picked_path = ctx.layout.picked_path(track, i)
    replay = ctx.replays[track] if ctx.replays is not None else None
    if replay is not None:
        inputs: dict[str, Any] = {"replay": list(replay.lists[i + 1]), "train": list(train), "remain": list(remain)}
    else:
        inputs = {"scores": scored.hash if scored is not None else None, "seed": track.seed,
                  "strategy": cfg.section("strategy") | {"name": track.strategy}, "k": k, "train": list(train),
                  "remain": list(remain)}

    def run() -> None:
        if not distributed.is_main():
            return
        if replay is not None:
            picked = list(replay.picked(i))
        else:
            scores_file = rdir / "scores" / "tasks.json"
            table = read_task_scores(scores_file)[0] if scores_file.exists() else {}
            check_scores_available(track.strategy, [table.get(n) or _Missing(n) for n in remain])
            pool = [ctx.library.summary(n) for n in remain]
            picked = select_for_round(cfg.strategy, track.strategy, pool, table, k, track.seed, i)
        write_task_list(picked_path, picked)

    return Step(ctx.layout.key(track, i, "select"), "select", i, track, inputs,
                [os.path.relpath(picked_path, rdir)], run)


@dataclass(frozen=True)
class _Missing:
    name: str


# --------------------------------------------------------------------------- judging (evaluation.judge)

ANSWERS = "answers.jsonl"
JUDGE_DIR = "judge"
REDONE_ON_CHANGE = frozenset({"answer", "judge"})
"""Steps no later step of a track reads: when their inputs change (another judge, another answer
length) they are redone instead of refused, without touching training."""


def answer_step(ctx: Context, cfg: Config, track: Track, i: int, trained: Step) -> Step:
    """The round's model answers the judge's questions, once; every comparison of the round reads them."""
    rdir = ctx.layout.round_dir(track, i)
    judge = cfg.evaluation.judge
    assert judge is not None
    inputs = {"train": trained.hash, **answer_inputs(cfg, questions_digest(ctx.questions), judge.max_new_tokens)}

    def run() -> None:
        if not distributed.is_main():
            return
        rows = answer_with(ctx.model_for(rdir, cfg), cfg, ctx.questions, max_new_tokens=judge.max_new_tokens,
                           progress=ctx.progress)
        atomic.write_jsonl(rdir / ANSWERS, rows)

    return Step(ctx.layout.key(track, i, "answer"), "answer", i, track, inputs, [ANSWERS], run)


def judge_steps(ctx: Context) -> Iterator[Step]:
    """Round i of every strategy against round i of `against`, per seed, once every track has run:
    both answer files exist then, and the judge model (loaded once) is not held while training.

    Round 0 is one model shared by all strategies (a tie by construction), so it is not judged.
    """
    judge = ctx.cfg.evaluation.judge
    if judge is None:
        return
    for seed in ctx.cfg.seeds:
        for strategy in ctx.cfg.strategies:
            if strategy == judge.against:
                continue
            track, base = Track(seed, strategy), Track(seed, judge.against)
            for i in range(1, ctx.cfg.rounds.count):
                answered = [ctx.manifest.entry(ctx.layout.key(t, i, "answer")) for t in (track, base)]
                if None in answered:
                    return  # only when checking a run whose tracks are unfinished
                yield judge_step(ctx, track, base, i, answered[0]["hash"], answered[1]["hash"])


def judge_step(ctx: Context, track: Track, base: Track, i: int, answers_hash: str, base_hash: str) -> Step:
    """Verdicts of the judge on both answer files, in both orders, and their counts."""
    rdir, base_dir = ctx.layout.round_dir(track, i), ctx.layout.round_dir(base, i)
    spec = ctx.cfg.evaluation.judge
    assert spec is not None and ctx.judge is not None
    inputs = {"seed": track.seed, "answers": answers_hash, "against": {"strategy": base.strategy, "answers": base_hash},
              **ctx.judge.inputs()}
    out = rdir / JUDGE_DIR
    step = Step(ctx.layout.key(track, i, "judge"), "judge", i, track, inputs,
                [f"{JUDGE_DIR}/verdicts.jsonl", JUDGE_SUMMARY], lambda: None)

    def run() -> None:
        if not distributed.is_main():
            return
        ctx.loaded = None
        answers, against = (atomic.read_jsonl(d / ANSWERS, RunStateError) for d in (rdir, base_dir))
        out.mkdir(parents=True, exist_ok=True)
        assert ctx.judge is not None
        verdicts = judge_resumable(ctx.judge, ctx.questions, [r["answer"] for r in answers],
                                   [r["answer"] for r in against], out, step.hash, progress=ctx.progress)
        summary = {**summarize(verdicts), "strategy": track.strategy, "against": base.strategy, "seed": track.seed,
                   "round": i, "judge": spec.judge, "rule": spec.rule, "questions": spec.questions}
        atomic.write_jsonl(out / "verdicts.jsonl", verdicts)
        atomic.write_json(rdir / JUDGE_SUMMARY, summary)
        partial_path(out, step.hash).unlink(missing_ok=True)

    step.run = run
    return step


# --------------------------------------------------------------------------- crash points (tests)


def _crash_callbacks() -> list[Any]:
    """A Trainer callback that SIGKILLs the process at a step when `ACTIVEIT_CRASH_AT` asks for it."""
    if not os.environ.get(atomic.CRASH_ENV):
        return []

    class CrashAtStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            atomic.crashpoint(f"train-step-{state.global_step}")

    return [CrashAtStep()]


# --------------------------------------------------------------------------- driver


def _format_s(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def _plan(cfg: Config, library: TaskLibrary) -> tuple[dict[int, PoolState], list[int]]:
    """Each seed's round-0 pool and the tasks picked after each round; a pool too small for the
    rounds is an error here, before any work."""
    pools = {seed: config_pool(library, cfg, seed) for seed in cfg.seeds}
    picks = cfg.rounds.picks(len(next(iter(pools.values())).train))
    sizes = cfg.rounds.sizes
    key, initial = ("rounds.initial", cfg.rounds.initial) if cfg.rounds.initial is not None else \
        ("rounds.sizes[0]", sizes[0] if sizes else None)
    for seed, pool in pools.items():
        if initial is not None and len(pool.train) != initial:
            raise ConfigError(f"{key} is {initial} but the initial train list of split {cfg.data.split!r} has "
                              f"{len(pool.train)} tasks; make them agree")
        if sum(picks) > len(pool.remain):
            how = "rounds.sizes" if sizes else "rounds.count × rounds.chunk"
            raise ConfigError(f"{cfg.rounds.count} rounds pick {sum(picks)} tasks after round 0 ({how}), but the remain "
                              f"pool of seed {seed} has {len(pool.remain)}; pick fewer or draw a smaller initial, dev or "
                              f"held-out set")
    return pools, picks


def rounds_line(cfg: Config, picks: Sequence[int], n_initial: int) -> str:
    """How the train set grows, for `activeit validate`."""
    if cfg.rounds.sizes or len(set(picks)) > 1:
        sizes = [n_initial]
        for k in picks:
            sizes.append(sizes[-1] + k)
        return f"train tasks per round: {' → '.join(map(str, sizes))}"
    return f"{picks[0] if picks else cfg.rounds.chunk or n_initial} tasks a round"


def check_run_config(cfg: Config, task_lists: Path | None = None) -> None:
    """Everything checkable before any work: registry names, scores, task lists."""
    if cfg.engine.name not in engine_names():
        raise ConfigError(f"engine.name: unknown engine {cfg.engine.name!r}; one of {', '.join(engine_names())}")
    if task_lists is None:
        check_strategy_names(cfg)
    elif not task_lists.is_dir():
        raise RunStateError(f"--task-lists {task_lists}: not a directory")
    if cfg.evaluation.judge is not None:
        read_questions(cfg.evaluation.judge.questions)
        check_rule(cfg.evaluation.judge.judge, cfg.evaluation.judge.rule)


def plan_replays(cfg: Config, task_lists: Path, library: TaskLibrary, pools: dict[int, PoolState],
                 picks: Sequence[int]) -> dict[Track, Replay]:
    """Every track's lists, read and checked before any work."""
    return {Track(seed, strategy): plan_replay(task_lists, strategy, cfg.rounds.count, pools[seed], picks, library)
            for seed in cfg.seeds for strategy in cfg.strategies}


def check_config(cfg: Config, task_lists: Path | None = None) -> list[str]:
    """`activeit validate`: everything checkable without a model, described line by line.

    Raises the first `ActiveitError`.
    """
    library = TaskLibrary(cfg.data.path, metadata=cfg.data.metadata, cache_size=0)
    lines = [f"data: {library.root} ({len(library)} tasks)"]
    if cfg.data.split == AUTO_SPLIT:
        lines.append(f"split: {AUTO_SPLIT} (drawn from all tasks with the seed)")
    else:
        lines.append(f"split: {resolve_split_dir(library, cfg.data.split)}")
    check_run_config(cfg, task_lists)
    pools, picks = _plan(cfg, library)
    seed = cfg.seeds[0]
    lines.append(f"round-0 pool (seed {seed}), {rounds_line(cfg, picks, len(pools[seed].train))}:")
    lines += pool_lines(pools[seed], library)
    lines.append(f"kinds: {library.kinds_source}")
    library.flush()
    if task_lists is not None:
        for track, replay in plan_replays(cfg, task_lists, library, pools, picks).items():
            if track.seed == seed:
                lines.append(f"replay: {track.strategy} from {task_lists / replay.name}_<0..{len(replay.lists) - 1}>")
    else:
        lines.append(f"strategies: {', '.join(cfg.strategies)}")
    if cfg.evaluation.judge is not None:
        judge = cfg.evaluation.judge
        lines.append(f"judge: {judge.judge} ({judge.rule}), rounds 1+ against {judge.against}, "
                     f"{len(read_questions(judge.questions))} questions from {judge.questions}")
    lines.append(f"engine: {cfg.engine.name}")
    return lines


def _walk(ctx: Context, pools: dict[int, PoolState], picks: Sequence[int], execute: bool,
          echo: Callable[[str], None]) -> int:
    """Check every finished step against the config (execute=False) or run what is left."""
    mismatches: dict[str, str] = {}
    total = _count_steps(ctx.cfg, ctx.replays is not None)
    done_keys: set[str] = set()
    started = time.perf_counter()
    ran = 0
    for steps in _streams(ctx, pools, picks):
        for step in steps:
            entry = ctx.manifest.entry(step.key)
            rdir = ctx.layout.round_dir(step.track, step.round)
            finished = entry is not None and all((rdir / o).exists() for o in entry["outputs"])
            if finished and entry["hash"] != step.hash and step.kind in REDONE_ON_CHANGE:
                if not execute:
                    continue
                finished = False
            if finished and entry["hash"] != step.hash:
                keys = changed_keys(entry["inputs"], step.inputs)
                mismatches[step.key] = f"{step.key}: {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}"
                steps.close()
                break
            if finished:
                done_keys.add(step.key)
                continue
            if not execute:
                steps.close()
                break
            done_keys.add(step.key)
            ran += 1
            elapsed = time.perf_counter() - started
            n_done = len(done_keys)
            eta = f", ETA ~{_format_s(elapsed / ran * (total - n_done + 1))}" if ran > 1 else ""
            if distributed.is_main():
                echo(f"[{n_done}/{total}] seed {step.track.seed} · {step.track.strategy} · round {step.round} · "
                     f"{step.kind} (elapsed {_format_s(elapsed)}{eta})")
            atomic.set_crash_context(step.key)
            t0 = time.perf_counter()
            step.run()
            atomic.crashpoint("before-manifest")
            ctx.manifest.finish(step.key, step.hash, step.inputs, step.outputs, time.perf_counter() - t0)
            distributed.barrier()
            atomic.set_crash_context("")
    if mismatches:
        raise RunStateError(
            "the config changed since these steps finished: " + "; ".join(mismatches.values())
            + ". Rerun with --force-from-round N to redo from round N, or use a new --out directory")
    return ran


def _streams(ctx: Context, pools: dict[int, PoolState], picks: Sequence[int]) -> Iterator[Iterator[Step]]:
    """Every track's steps in order, then the judge steps (which read every track's answers)."""
    for seed in ctx.cfg.seeds:
        for strategy in ctx.cfg.strategies:
            yield track_steps(ctx, Track(seed, strategy), pools[seed], picks)
    yield judge_steps(ctx)


def _count_steps(cfg: Config, replay: bool) -> int:
    """Steps a full run has (for the progress line); shared round-0 steps counted once per seed."""
    count = cfg.rounds.count
    if count == 1:
        return 2 * len(cfg.seeds)
    shared_score = 1 if needs_for(cfg, cfg.strategies, replay) else 0
    per_seed = 2 + shared_score
    if cfg.evaluation.judge is not None:
        per_seed += (count - 1) * len(cfg.strategies)  # answer steps
        per_seed += (count - 1) * (len(cfg.strategies) - 1)  # judge steps
    for strategy in cfg.strategies:
        later_score = 1 if needs_for(cfg, [strategy], replay) else 0
        per_seed += 1 + (count - 1) * 2 + (count - 2) * (later_score + 1)
    return per_seed * len(cfg.seeds)


def run_experiment(
    cfg: Config,
    out: str | os.PathLike,
    *,
    force_from_round: int | None = None,
    task_lists: str | os.PathLike | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> Path:
    """Run (or resume) every track of the experiment into `out`; returns the run directory.

    Writes `summary.json`; `activeit.report.write_report(root)` draws the curves and task maps."""
    root = Path(out)
    lists = Path(task_lists) if task_lists is not None else None
    check_run_config(cfg, lists)
    echo = echo or (lambda line: log.info(line))
    library = TaskLibrary(cfg.data.path, metadata=cfg.data.metadata)
    pools, picks = _plan(cfg, library)
    root.mkdir(parents=True, exist_ok=True)
    if distributed.is_main():
        clean_stale(root)
    distributed.barrier()
    manifest = Manifest(root)
    if force_from_round is not None:
        dropped = manifest.drop_from_round(force_from_round)
        echo(f"--force-from-round {force_from_round}: {len(dropped)} finished step(s) will be redone")
    replays = plan_replays(cfg, lists, library, pools, picks) if lists is not None else None
    if replays is not None:
        for track, replay in replays.items():
            if track.seed == cfg.seeds[0]:
                echo(f"replaying {track.strategy} from {lists / replay.name}_<0..{len(replay.lists) - 1}>")
    ctx = Context(cfg, root, library, RunLayout(root, cfg.strategies, cfg.seeds), manifest, replays, progress)
    if cfg.evaluation.judge is not None:
        ctx.questions = read_questions(cfg.evaluation.judge.questions)
        ctx.judge = LazyJudge(cfg.evaluation.judge.judge, cfg, url_model=cfg.evaluation.judge.url_model,
                              rule=cfg.evaluation.judge.rule, echo=echo)
    _walk(ctx, pools, picks, execute=False, echo=echo)
    if distributed.is_main():
        atomic.write_text(root / "config.yaml", cfg.to_yaml())
    ran = _walk(ctx, pools, picks, execute=True, echo=echo)
    if not distributed.is_main():
        return root
    write_summary(root, cfg)
    echo(f"{'finished' if ran else 'nothing left to do'}: {root}")
    return root


