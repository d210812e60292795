"""The active instruction tuning loop (DESIGN.md §1), resumable, for strategies × seeds.

Each round of a track (one strategy, one seed): train a fresh model from the base on every
task picked so far → evaluate on dev and test → (not after the last round) score the remain
pool → the strategy picks `chunk` tasks. Round 0 is the same for every strategy of a seed
and is computed once. Every step writes its outputs atomically, then records itself in
`manifest.json` with a hash of its inputs; a rerun skips finished steps and refuses to reuse
one whose inputs changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from activeit import atomic, distributed
from activeit.config import Config
from activeit.errors import RunStateError
from activeit.pool import PoolState, config_pool, pool_lines, read_task_list, resolve_split_dir, write_task_list
from activeit.replay import Replay, plan_replay
from activeit.tasks import TaskLibrary

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SUMMARY = "summary.json"


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Track:
    seed: int
    strategy: str


class RunLayout:
    """Where each round of each track lives.

    One strategy and one seed: `RUN/round_<i>/` (DESIGN.md §6). Several: round 0 of a seed is
    shared at `RUN/seed_<s>/round_0/`, later rounds at `RUN/seed_<s>/<strategy>/round_<i>/`,
    and each strategy's round-0 pick at `RUN/seed_<s>/<strategy>/round_0/picked.txt`.
    """

    def __init__(self, root: Path, strategies: Sequence[str], seeds: Sequence[int]):
        self.root = root
        self.flat = len(strategies) == 1 and len(seeds) == 1

    def round_dir(self, track: Track, i: int) -> Path:
        if self.flat:
            return self.root / f"round_{i}"
        base = self.root / f"seed_{track.seed}"
        return base / "round_0" if i == 0 else base / track.strategy / f"round_{i}"

    def picked_path(self, track: Track, i: int) -> Path:
        if self.flat or i > 0:
            return self.round_dir(track, i) / "picked.txt"
        return self.root / f"seed_{track.seed}" / track.strategy / "round_0" / "picked.txt"

    def key(self, track: Track, i: int, step: str) -> str:
        if self.flat:
            return f"round_{i}/{step}"
        if i == 0 and step != "select":
            return f"seed_{track.seed}/round_0/{step}"
        return f"seed_{track.seed}/{track.strategy}/round_{i}/{step}"


# --------------------------------------------------------------------------- manifest


def input_hash(inputs: Any) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, ensure_ascii=True).encode()).hexdigest()[:16]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def changed_keys(old: Any, new: Any) -> list[str]:
    a, b = _flatten(old), _flatten(new)
    return sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))


class Manifest:
    """`manifest.json`: finished steps, each with its input hash, inputs and outputs."""

    def __init__(self, root: Path):
        self.path = root / MANIFEST
        self.steps: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                self.steps = json.loads(self.path.read_text(encoding="utf-8"))["steps"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise RunStateError(f"{self.path}: unreadable manifest ({e}); move the run directory away") from None

    def entry(self, key: str) -> dict[str, Any] | None:
        return self.steps.get(key)

    def finish(self, key: str, digest: str, inputs: Any, outputs: Sequence[str], seconds: float) -> None:
        self.steps[key] = {"hash": digest, "inputs": inputs, "outputs": list(outputs),
                           "seconds": round(seconds, 3), "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self.save()

    def drop_from_round(self, n: int) -> list[str]:
        dropped = [k for k, v in self.steps.items() if v["inputs"].get("round", 0) >= n]
        for k in dropped:
            del self.steps[k]
        self.save()
        return dropped

    def save(self) -> None:
        """Only the main process of a multi-process launch writes; the others keep the same steps in memory."""
        if distributed.is_main():
            atomic.write_json(self.path, {"version": 1, "steps": self.steps})


# --------------------------------------------------------------------------- steps


@dataclass
class Step:
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
    loaded: tuple[str, Any] | None = None
    """(round directory, its trained model): evaluation and scoring of a round share one load."""

    def model_for(self, round_dir: Path, cfg: Config) -> Any:
        """The round's trained model, loaded once for evaluation and scoring."""
        from activeit.training import load_trained

        key = str(round_dir)
        if self.loaded is None or self.loaded[0] != key:
            self.loaded = None
            self.loaded = (key, load_trained(round_dir, cfg))
        return self.loaded[1]


def _seeded(cfg: Config, seed: int) -> Config:
    return cfg.model_copy(update={"seed": seed})


def needs_for(cfg: Config, strategies: Sequence[str], replay: bool) -> list[str]:
    """Scores a round must compute for these strategies (none when replaying given lists)."""
    from activeit.scores import scores_to_compute

    if cfg.scoring.compute is not None:
        return list(scores_to_compute(cfg))
    if replay:
        return []
    return list(scores_to_compute(cfg.model_copy(update={"experiment": cfg.experiment.model_copy(
        update={"strategies": list(strategies)})})))


def track_steps(ctx: Context, track: Track, pool0: PoolState, chunk: int) -> Iterator[Step]:
    """The steps of one track in order; later steps read what earlier ones wrote."""
    cfg = _seeded(ctx.cfg, track.seed)
    data = cfg.data.model_dump(mode="json")
    replay = ctx.replays[track] if ctx.replays is not None else None
    shared_strategies = ctx.cfg.strategies
    train = list(pool0.train)
    remain = list(pool0.remain)
    count = cfg.rounds.count
    for i in range(count):
        rdir = ctx.layout.round_dir(track, i)
        lora = cfg.training.lora.enabled
        train_inputs = {"seed": track.seed, "model": cfg.section("model"), "prompt": cfg.section("prompt"),
                        "training": cfg.section("training"), "data": data, "train_tasks": list(train),
                        "dev_tasks": list(pool0.dev)}
        yield Step(ctx.layout.key(track, i, "train"), "train", i, track, train_inputs,
                   [("adapter" if lora else "model"), "train_result.json", "train_tasks.txt"],
                   _train_step(ctx, cfg, rdir, list(train), list(pool0.dev)))
        train_hash = input_hash({"round": i, **train_inputs})
        eval_inputs = {"train": train_hash, "evaluation": cfg.section("evaluation"), "prompt": cfg.section("prompt"),
                       "dtype": cfg.model.dtype, "dev_tasks": list(pool0.dev), "test_tasks": list(pool0.test)}
        yield Step(ctx.layout.key(track, i, "evaluate"), "evaluate", i, track, eval_inputs,
                   ["metrics.json", "predictions.jsonl"], _evaluate_step(ctx, cfg, rdir, pool0))
        if i == count - 1:
            break
        needed = needs_for(cfg, shared_strategies if i == 0 else [track.strategy], replay is not None)
        score_hash = None
        if needed:
            score_inputs = {"train": train_hash, "scoring": cfg.scoring.result_inputs(), "prompt": cfg.section("prompt"),
                            "dtype": cfg.model.dtype, "seed": track.seed, "remain": list(remain), "compute": needed}
            score_hash = input_hash({"round": i, **score_inputs})
            yield Step(ctx.layout.key(track, i, "score"), "score", i, track, score_inputs,
                       ["scores/tasks.json", "scores/records.jsonl"], _score_step(ctx, cfg, rdir, list(remain), needed))
        picked_path = ctx.layout.picked_path(track, i)
        if replay is not None:
            select_inputs = {"replay": list(replay.lists[i + 1]), "train": list(train), "remain": list(remain)}
        else:
            select_inputs = {"scores": score_hash, "seed": track.seed, "strategy": cfg.section("strategy") | {"name": track.strategy},
                             "k": chunk, "train": list(train), "remain": list(remain)}
        yield Step(ctx.layout.key(track, i, "select"), "select", i, track, select_inputs,
                   [os.path.relpath(picked_path, rdir)],
                   _select_step(ctx, cfg, track, i, rdir, picked_path, list(train), list(remain), chunk, select_inputs))
        picked = read_task_list(picked_path, ctx.library)
        train = train + picked
        remain = [n for n in remain if n not in set(picked)]


def _train_step(ctx: Context, cfg: Config, rdir: Path, train: list[str], dev: list[str]) -> Callable[[], None]:
    def run() -> None:
        from activeit.training import train as train_model

        rdir.mkdir(parents=True, exist_ok=True)
        if distributed.is_main():
            write_task_list(rdir / "train_tasks.txt", train)
        ctx.loaded = None
        train_model(cfg, train, rdir, dev_tasks=dev, library=ctx.library, callbacks=_crash_callbacks(), force=True)
    return run


def _evaluate_step(ctx: Context, cfg: Config, rdir: Path, pool0: PoolState) -> Callable[[], None]:
    def run() -> None:
        from activeit.evaluate import build_items, predict
        from activeit.metrics import score_records

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
    return run


def _score_step(ctx: Context, cfg: Config, rdir: Path, remain: list[str], needed: list[str]) -> Callable[[], None]:
    def run() -> None:
        from activeit.scores import score_tasks

        lm = ctx.model_for(rdir, cfg)
        score_tasks(lm, ctx.library, remain, cfg, rdir / "scores", compute=needed, progress=ctx.progress)
    return run


def _select_step(ctx: Context, cfg: Config, track: Track, i: int, rdir: Path, picked_path: Path, train: list[str],
                 remain: list[str], chunk: int, inputs: dict[str, Any]) -> Callable[[], None]:
    def run() -> None:
        if not distributed.is_main():
            return
        if "replay" in inputs:
            picked = [n for n in inputs["replay"] if n not in set(train)]
        else:
            from activeit.scores import read_task_scores
            from activeit.strategies import check_scores_available, select_for_round

            scores_file = rdir / "scores" / "tasks.json"
            table = read_task_scores(scores_file)[0] if scores_file.exists() else {}
            pool = [ctx.library.summary(n) for n in remain]
            check_scores_available(track.strategy, [table.get(n) or _Missing(n) for n in remain])
            picked = select_for_round(cfg.strategy, track.strategy, pool, table, chunk, track.seed, i)
        write_task_list(picked_path, picked)
    return run


@dataclass(frozen=True)
class _Missing:
    name: str


# --------------------------------------------------------------------------- crash points (tests)


def _crash_callbacks() -> list[Any]:
    """A Trainer callback that SIGKILLs the process at a step when `ACTIVEIT_CRASH_AT` asks for it."""
    if not os.environ.get(atomic.CRASH_ENV):
        return []
    from transformers import TrainerCallback

    class CrashAtStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            atomic.crashpoint(f"train-step-{state.global_step}")

    return [CrashAtStep()]


# --------------------------------------------------------------------------- driver


def _format_s(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def _plan(cfg: Config, library: TaskLibrary) -> tuple[dict[int, PoolState], int]:
    pools = {seed: config_pool(library, cfg, seed) for seed in cfg.seeds}
    chunk = cfg.rounds.chunk or len(next(iter(pools.values())).train)
    return pools, chunk


def check_run_config(cfg: Config, task_lists: Path | None = None) -> None:
    """Everything checkable before any work: registry names, scores, task lists."""
    from activeit.strategies import check_strategy_names

    if task_lists is None:
        check_strategy_names(cfg)
    elif not task_lists.is_dir():
        raise RunStateError(f"--task-lists {task_lists}: not a directory")


def plan_replays(cfg: Config, task_lists: Path, library: TaskLibrary, pools: dict[int, PoolState],
                 chunk: int) -> dict[Track, Replay]:
    """Every track's lists, read and checked before any work."""
    return {Track(seed, strategy): plan_replay(task_lists, strategy, cfg.rounds.count, pools[seed], chunk, library)
            for seed in cfg.seeds for strategy in cfg.strategies}


def check_config(cfg: Config, task_lists: Path | None = None) -> list[str]:
    """`activeit validate`: everything checkable without a model, described line by line.

    Raises the first `ActiveitError`.
    """
    library = TaskLibrary(cfg.data.path, metadata=cfg.data.metadata, cache_size=0)
    lines = [f"data: {library.root} ({len(library)} tasks)"]
    split_dir = resolve_split_dir(library, cfg.data.split)
    lines.append(f"split: {split_dir}")
    check_run_config(cfg, task_lists)
    pools, chunk = _plan(cfg, library)
    seed = cfg.seeds[0]
    lines.append(f"round-0 pool (seed {seed}), {chunk} tasks a round:")
    lines += pool_lines(pools[seed], library)
    lines.append(f"kinds: {library.kinds_source}")
    library.flush()
    if task_lists is not None:
        for track, replay in plan_replays(cfg, task_lists, library, pools, chunk).items():
            if track.seed == seed:
                lines.append(f"replay: {track.strategy} from {task_lists / replay.name}_<0..{len(replay.lists) - 1}>")
    else:
        lines.append(f"strategies: {', '.join(cfg.strategies)}")
    return lines


def _walk(ctx: Context, pools: dict[int, PoolState], chunk: int, execute: bool, echo: Callable[[str], None]) -> int:
    """Check every finished step against the config (execute=False) or run what is left."""
    mismatches: dict[str, str] = {}
    total = _count_steps(ctx.cfg, ctx.replays is not None)
    done_keys: set[str] = set()
    started = time.perf_counter()
    ran = 0
    for seed in ctx.cfg.seeds:
        for strategy in ctx.cfg.strategies:
            track = Track(seed, strategy)
            steps = track_steps(ctx, track, pools[seed], chunk)
            for step in steps:
                entry = ctx.manifest.entry(step.key)
                rdir = ctx.layout.round_dir(track, step.round)
                finished = entry is not None and all((rdir / o).exists() for o in entry["outputs"])
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
                    echo(f"[{n_done}/{total}] seed {seed} · {strategy} · round {step.round} · {step.kind} "
                         f"(elapsed {_format_s(elapsed)}{eta})")
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


def _count_steps(cfg: Config, replay: bool) -> int:
    """Steps a full run has (for the progress line); shared round-0 steps counted once per seed."""
    count = cfg.rounds.count
    if count == 1:
        return 2 * len(cfg.seeds)
    shared_score = 1 if needs_for(cfg, cfg.strategies, replay) else 0
    per_seed = 2 + shared_score
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
    report: bool = True,
) -> Path:
    """Run (or resume) every track of the experiment into `out`; returns the run directory."""
    root = Path(out)
    lists = Path(task_lists) if task_lists is not None else None
    check_run_config(cfg, lists)
    echo = echo or (lambda line: log.info(line))
    library = TaskLibrary(cfg.data.path, metadata=cfg.data.metadata)
    pools, chunk = _plan(cfg, library)
    root.mkdir(parents=True, exist_ok=True)
    if distributed.is_main():
        clean_stale(root)
    distributed.barrier()
    manifest = Manifest(root)
    if force_from_round is not None:
        dropped = manifest.drop_from_round(force_from_round)
        echo(f"--force-from-round {force_from_round}: {len(dropped)} finished step(s) will be redone")
    replays = plan_replays(cfg, lists, library, pools, chunk) if lists is not None else None
    if replays is not None:
        for track, replay in replays.items():
            if track.seed == cfg.seeds[0]:
                echo(f"replaying {track.strategy} from {lists / replay.name}_<0..{len(replay.lists) - 1}>")
    ctx = Context(cfg, root, library, RunLayout(root, cfg.strategies, cfg.seeds), manifest, replays, progress)
    _walk(ctx, pools, chunk, execute=False, echo=echo)
    if distributed.is_main():
        atomic.write_text(root / "config.yaml", cfg.to_yaml())
    ran = _walk(ctx, pools, chunk, execute=True, echo=echo)
    if not distributed.is_main():
        return root
    write_summary(root, cfg)
    if report:
        from activeit.report import write_report

        write_report(root)
    echo(f"{'finished' if ran else 'nothing left to do'}: {root}")
    return root


# --------------------------------------------------------------------------- summary and status


def load_run(root: str | os.PathLike) -> tuple[Config, Manifest]:
    from activeit.config import load_config

    root = Path(root)
    if not (root / "config.yaml").is_file():
        raise RunStateError(f"{root}: not a run directory (no config.yaml)")
    return load_config(root / "config.yaml"), Manifest(root)


def summary_rows(root: Path, cfg: Config, manifest: Manifest) -> list[dict[str, Any]]:
    layout = RunLayout(root, cfg.strategies, cfg.seeds)
    rows = []
    for seed in cfg.seeds:
        for strategy in cfg.strategies:
            track = Track(seed, strategy)
            for i in range(cfg.rounds.count):
                rdir = layout.round_dir(track, i)
                entry = manifest.entry(layout.key(track, i, "evaluate"))
                if entry is None or not (rdir / "metrics.json").exists():
                    continue
                metrics = json.loads((rdir / "metrics.json").read_text(encoding="utf-8"))
                train = read_task_list(rdir / "train_tasks.txt")
                picked = layout.picked_path(track, i)
                scores = rdir / "scores" / "tasks.json"
                rows.append({
                    "strategy": strategy, "seed": seed, "round": i, "n_train_tasks": len(train),
                    "dir": os.path.relpath(rdir, root),
                    "scores": os.path.relpath(scores, root) if scores.exists() else None,
                    "picked": read_task_list(picked) if picked.exists() else None,
                    **{split: _brief(m) for split, m in metrics.items()},
                })
    return rows


def _brief(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k != "by_task"}


def write_summary(root: Path, cfg: Config) -> list[dict[str, Any]]:
    rows = summary_rows(root, cfg, Manifest(root))
    atomic.write_json(root / SUMMARY, {"rounds": rows})
    return rows


def status_lines(root: str | os.PathLike) -> list[str]:
    """One line per track and round: which steps are finished, and the test ROUGE-L if evaluated."""
    root = Path(root)
    cfg, manifest = load_run(root)
    layout = RunLayout(root, cfg.strategies, cfg.seeds)
    lines = [f"{root}: {len(cfg.strategies)} strateg{'y' if len(cfg.strategies) == 1 else 'ies'} × "
             f"{len(cfg.seeds)} seed(s) × {cfg.rounds.count} rounds; {len(manifest.steps)} steps finished"]
    all_done = True
    for seed in cfg.seeds:
        for strategy in cfg.strategies:
            track = Track(seed, strategy)
            for i in range(cfg.rounds.count):
                marks = []
                for step in ("train", "evaluate", "score", "select"):
                    if i == cfg.rounds.count - 1 and step in ("score", "select"):
                        continue
                    done = manifest.entry(layout.key(track, i, step)) is not None
                    if step == "score" and not done and manifest.entry(layout.key(track, i, "select")) is not None:
                        continue  # a strategy that needs no scores
                    all_done &= done
                    marks.append(f"{step} {'done' if done else '-'}")
                rdir = layout.round_dir(track, i)
                result = ""
                if (rdir / "metrics.json").exists():
                    m = json.loads((rdir / "metrics.json").read_text(encoding="utf-8"))
                    if "test" in m:
                        result = f"  test rougeL {m['test']['rougeL']:.2f}"
                lines.append(f"  seed {seed} · {strategy:<26} round {i}: {', '.join(marks)}{result}")
    lines.append("complete" if all_done else "incomplete: run `activeit run` with the same config and --out to resume")
    return lines


def clean_stale(root: Path) -> None:
    """Remove temp files and directories a killed process left behind (they are never read)."""
    for path in list(root.rglob(".*")):
        if path.name.endswith(".tmp") and path.is_file():
            path.unlink(missing_ok=True)
        elif path.is_dir() and path.name.startswith((".adapter.", ".model.", ".scores.")):
            shutil.rmtree(path, ignore_errors=True)

