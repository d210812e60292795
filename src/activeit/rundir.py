"""The run directory's schema: where each round of each track lives, which steps are finished
(`manifest.json`, with a hash of each step's inputs), the summary, and a run's status.

The pipeline writes runs through this module; `status`, `report` and `judge` read them
through it without importing the loop.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from activeit import atomic, distributed
from activeit.config import Config, load_config
from activeit.errors import RunStateError
from activeit.pool import read_task_list

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
JUDGE_SUMMARY = "judge/summary.json"
"""A judged round's counts against `evaluation.judge.against`, beside its model."""
JUDGE_KEYS = ("wins", "ties", "losses", "invalid", "n", "wins_minus_losses", "win_rate", "against", "judge", "rule")


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Track:
    seed: int
    strategy: str


class RunLayout:
    """Where each round of each track lives.

    One strategy and one seed: `RUN/round_<i>/` (docs/semantics.md). Several: round 0 of a seed is
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


INLINE_ITEMS = 64
"""Longer lists (a 52K pool's task names) are kept in the manifest as their length and digest."""


def compact_inputs(value: Any) -> Any:
    """Inputs as the manifest keeps them: a list of more than `INLINE_ITEMS` items becomes one string
    naming its length and digest, so a Self-Instruct run's manifest stays kilobytes, not hundreds of
    megabytes rewritten after every step. Step hashes are taken over the full inputs."""
    if isinstance(value, dict):
        return {k: compact_inputs(v) for k, v in value.items()}
    if isinstance(value, list) and len(value) > INLINE_ITEMS:
        return f"<{len(value)} items, sha256 {input_hash(value)}>"
    return value


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def changed_keys(old: Any, new: Any) -> list[str]:
    a, b = _flatten(compact_inputs(old)), _flatten(compact_inputs(new))
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
        self.steps[key] = {"hash": digest, "inputs": compact_inputs(inputs), "outputs": list(outputs),
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


# --------------------------------------------------------------------------- summary and status


def load_run(root: str | os.PathLike) -> tuple[Config, Manifest]:
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
                judged = rdir / JUDGE_SUMMARY
                if manifest.entry(layout.key(track, i, "judge")) is not None and judged.is_file():
                    verdicts = json.loads(judged.read_text(encoding="utf-8"))
                    judge = {"judge": {k: verdicts.get(k) for k in JUDGE_KEYS}}
                else:
                    judge = {}
                rows.append({
                    "strategy": strategy, "seed": seed, "round": i, "n_train_tasks": len(train),
                    "dir": os.path.relpath(rdir, root),
                    "scores": os.path.relpath(scores, root) if scores.exists() else None,
                    "picked": read_task_list(picked) if picked.exists() else None,
                    **{split: _brief(m) for split, m in metrics.items()},
                    **judge,
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
                judging = cfg.evaluation.judge is not None and i > 0
                for step in ("train", "evaluate", "answer", "score", "select", "judge"):
                    if i == cfg.rounds.count - 1 and step in ("score", "select"):
                        continue
                    if step in ("answer", "judge") and not judging:
                        continue
                    if step == "judge" and strategy == cfg.evaluation.judge.against:
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
                if (rdir / JUDGE_SUMMARY).exists():
                    j = json.loads((rdir / JUDGE_SUMMARY).read_text(encoding="utf-8"))
                    result += f"  vs {j['against']} {j['wins_minus_losses']:+d} ({j['wins']}/{j['ties']}/{j['losses']})"
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
