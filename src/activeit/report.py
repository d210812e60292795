"""Figures and tables of a run: task maps, learning curves, summary.md.

Everything here reads files a run wrote (tasks.json, summary.json), never a model.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from activeit import atomic
from activeit.errors import RunStateError
from activeit.scores import read_task_scores

REGION_COLORS = {"ambiguous": "#d62728", "easy": "#2ca02c", "difficult": "#1f77b4"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike) -> None:
    path = Path(path)
    with atomic.atomic_open(path, "wb", encoding=None) as f:
        fig.savefig(f, format=path.suffix.lstrip(".") or "png", dpi=150, bbox_inches="tight")


def _cube_ticks(top: float) -> list[float]:
    """Ticks evenly spaced on a cube-root axis, rounded to one significant digit."""
    ticks = [0.0]
    for i in range(1, 6):
        value = top * (i / 5) ** 3
        if value > 0:
            digits = -int(math.floor(math.log10(value)))
            rounded = round(value, digits)
            if rounded > ticks[-1]:
                ticks.append(rounded)
    return ticks


def plot_task_map(scores: Mapping[str, Any], path: str | os.PathLike, title: str = "Task map",
                  picked: set[str] | None = None, annotate: int = 0) -> None:
    """Prompt uncertainty (cube-root axis) vs prediction probability, one colour per region.

    `picked` tasks are drawn with a black edge; `annotate` labels the N highest-PU tasks.
    """
    plt = _pyplot()
    points = [(n, s.prompt_uncertainty, s.prediction_probability, s.region or "ambiguous")
              for n, s in scores.items() if s.prompt_uncertainty is not None and s.prediction_probability is not None]
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    if not points:
        ax.text(0.5, 0.5, "no prompt-uncertainty scores", ha="center", va="center", transform=ax.transAxes)
    for region, color in REGION_COLORS.items():
        sel = [p for p in points if p[3] == region]
        if sel:
            ax.scatter([p[1] for p in sel], [p[2] for p in sel], color=color, s=36, alpha=0.85, linewidths=0,
                       label=f"{region} ({len(sel)})")
    chosen = [p for p in points if picked and p[0] in picked]
    if chosen:
        ax.scatter([p[1] for p in chosen], [p[2] for p in chosen], s=90, facecolors="none", edgecolors="black",
                   linewidths=1.3, label=f"picked ({len(chosen)})")
    for name, pu, pp, _ in sorted(points, key=lambda p: -p[1])[:annotate]:
        ax.annotate(name.split("_")[0], (pu, pp), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("function", functions=(np.cbrt, lambda x: x ** 3))
    top = max((p[1] for p in points), default=1.0)
    ticks = _cube_ticks(top)
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlim(0, max(top * 1.08, ticks[-1]))
    ax.set_xlabel("prompt uncertainty (cube-root scale)")
    ax.set_ylabel("prediction probability")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if points:
        ax.legend(loc="best", fontsize=8, frameon=True)
    _save(fig, path)
    plt.close(fig)


# --------------------------------------------------------------------------- learning curves and tables

PANELS = (("overall", "rougeL"), ("cls", "rougeL_cls"), ("gen", "rougeL_gen"))


def _metric(metrics: Mapping[str, Any] | None, key: str) -> float | None:
    value = None if metrics is None else metrics.get(key)
    return None if value is None else float(value)


def _mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))


def curve_points(rows: list[Mapping[str, Any]], split: str, key: str) -> dict[str, list[tuple[float, float, float, int]]]:
    """strategy → [(mean #train tasks, mean metric, std over seeds, #seeds)] by round."""
    by: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["strategy"], r["round"]), []).append(r)
    out: dict[str, list[tuple[float, float, float, int]]] = {}
    for (strategy, _round), group in sorted(by.items()):
        values = [v for v in (_metric(g.get(split), key) for g in group) if v is not None]
        if not values:
            continue
        mean, std = _mean_std(values)
        x = sum(g["n_train_tasks"] for g in group) / len(group)
        out.setdefault(strategy, []).append((x, mean, std, len(values)))
    return out


def plot_learning_curves(rows: list[Mapping[str, Any]], path: str | os.PathLike, title: str = "") -> None:
    """ROUGE-L against #train tasks; panels test/dev × overall/cls/gen; mean over seeds ± std."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.2), sharex=True)
    strategies = sorted({r["strategy"] for r in rows})
    colors = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(strategies)}
    for i, split in enumerate(("test", "dev")):
        for j, (label, key) in enumerate(PANELS):
            ax = axes[i][j]
            for strategy, pts in curve_points(rows, split, key).items():
                xs, ys, sd = [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts]
                ax.plot(xs, ys, marker="o", ms=4, color=colors[strategy], label=strategy)
                ax.fill_between(xs, [y - s for y, s in zip(ys, sd)], [y + s for y, s in zip(ys, sd)],
                                color=colors[strategy], alpha=0.15, linewidth=0)
            ax.set_title(f"{split} · {label}", fontsize=10)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            if j == 0:
                ax.set_ylabel("ROUGE-L")
            if i == 1:
                ax.set_xlabel("# training tasks")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), frameon=False,
                   bbox_to_anchor=(0.5, -0.01))
    n_seeds = len({r["seed"] for r in rows})
    fig.suptitle(title or f"Learning curves (mean over {n_seeds} seed{'s' if n_seeds != 1 else ''}, band = ±1 std)")
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    _save(fig, path)
    plt.close(fig)


JUDGE_PANELS = (("wins_minus_losses", "wins − losses", 1.0), ("win_rate", "win rate (%)", 100.0))


def plot_judged(rows: list[Mapping[str, Any]], path: str | os.PathLike, title: str = "") -> None:
    """Wins − losses and win rate against the `against` strategy vs #train tasks, mean over seeds ± std
    (the paper's Self-Instruct figure)."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharex=True)
    strategies = sorted({r["strategy"] for r in rows})
    colors = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(strategies)}
    against = next((r["judge"]["against"] for r in rows if r.get("judge")), "?")
    for ax, (key, label, scale) in zip(axes, JUDGE_PANELS):
        for strategy, pts in curve_points(rows, "judge", key).items():
            xs, ys, sd = [p[0] for p in pts], [scale * p[1] for p in pts], [scale * p[2] for p in pts]
            ax.errorbar(xs, ys, yerr=sd, marker="o", ms=4, capsize=3, color=colors[strategy], label=strategy)
        if key == "wins_minus_losses":
            ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_ylabel(label)
        ax.set_xlabel("# training tasks")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        axes[0].legend(fontsize=8)
    n_seeds = len({r["seed"] for r in rows if r.get("judge")})
    fig.suptitle(title or f"Judged against {against} (mean over {n_seeds} seed{'s' if n_seeds != 1 else ''}, bars = ±1 std)")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _fmt(values: list[float]) -> str:
    if not values:
        return "–"
    mean, std = _mean_std(values)
    return f"{mean:.2f} ± {std:.2f}" if len(values) > 1 else f"{mean:.2f}"


def summary_markdown(rows: list[Mapping[str, Any]]) -> str:
    """Every strategy × round × split (mean ± std over seeds) and the last round's per-category table."""
    lines = ["# activeit run summary", ""]
    seeds = sorted({r["seed"] for r in rows})
    lines.append(f"Seeds: {', '.join(map(str, seeds))}. Values are ROUGE-L / exact match ×100, mean ± std over seeds.")
    lines.append("")
    lines.append("| strategy | round | #train tasks | split | ROUGE-L | ROUGE-L cls | ROUGE-L gen | exact match |")
    lines.append("|---|---:|---:|---|---:|---:|---:|---:|")
    by: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["strategy"], r["round"]), []).append(r)
    for (strategy, rnd), group in sorted(by.items()):
        n_train = sum(g["n_train_tasks"] for g in group) / len(group)
        for split in ("test", "dev"):
            cells = [_fmt([v for v in (_metric(g.get(split), k) for g in group) if v is not None])
                     for k in ("rougeL", "rougeL_cls", "rougeL_gen", "exact_match")]
            lines.append(f"| {strategy} | {rnd} | {n_train:g} | {split} | " + " | ".join(cells) + " |")
    lines += _judge_markdown(rows)
    last = max((r["round"] for r in rows), default=None)
    final = [r for r in rows if r["round"] == last and r.get("test")]
    categories = sorted({c for r in final for c in r["test"].get("by_category", {})})
    if categories:
        strategies = sorted({r["strategy"] for r in final})
        lines += ["", f"## Test ROUGE-L by category, round {last}", "",
                  "| category | " + " | ".join(strategies) + " |", "|---|" + "---:|" * len(strategies)]
        for cat in categories:
            cells = []
            for s in strategies:
                vals = [r["test"]["by_category"][cat]["rougeL"] for r in final
                        if r["strategy"] == s and cat in r["test"].get("by_category", {})]
                cells.append(_fmt(vals))
            lines.append(f"| {cat} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _judge_markdown(rows: list[Mapping[str, Any]]) -> list[str]:
    """The judged rounds: wins − losses and win rate against `evaluation.judge.against`, mean ± std over seeds."""
    judged = [r for r in rows if r.get("judge")]
    if not judged:
        return []
    first = judged[0]["judge"]
    lines = ["", f"## Judged against {first['against']}", "",
             f"Each strategy's model against {first['against']}'s model of the same round and seed on "
             f"{first['n']} questions, judged by {first.get('judge') or '?'} in both orders"
             f"{' (calibrated: the side its log-odds favour over both orders)' if first.get('rule') == 'calibrated' else ''}"
             ". Win rate = wins / "
             "(wins + ties + losses) ×100. Round 0 is one model shared by all strategies and is not judged.", "",
             "| strategy | round | #train tasks | wins − losses | win rate | wins | ties | losses |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    by: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for r in judged:
        by.setdefault((r["strategy"], r["round"]), []).append(r)
    for (strategy, rnd), group in sorted(by.items()):
        n_train = sum(g["n_train_tasks"] for g in group) / len(group)
        cells = [_fmt([scale * v for v in (_metric(g["judge"], key) for g in group) if v is not None])
                 for key, scale in (("wins_minus_losses", 1.0), ("win_rate", 100.0), ("wins", 1.0), ("ties", 1.0),
                                    ("losses", 1.0))]
        lines.append(f"| {strategy} | {rnd} | {n_train:g} | " + " | ".join(cells) + " |")
    return lines


def write_report(root: str | os.PathLike) -> Path:
    """`RUN/report/`: learning_curves.png, task_map_round_<i>[_<strategy>_seed<s>].png, summary.md, and
    judged.png when the run was judged (`evaluation.judge`)."""
    root = Path(root)
    summary = root / "summary.json"
    if not summary.is_file():
        raise RunStateError(f"{root}: no summary.json yet (run `activeit run` first)")
    rows = json.loads(summary.read_text(encoding="utf-8"))["rounds"]
    out = root / "report"
    out.mkdir(exist_ok=True)
    if rows:
        plot_learning_curves(rows, out / "learning_curves.png", title=f"Learning curves · {root.name}")
    if any(r.get("judge") for r in rows):
        plot_judged(rows, out / "judged.png")
    flat = len({(r["strategy"], r["seed"]) for r in rows}) <= 1
    for r in rows:
        if not r.get("scores") or not (root / r["scores"]).is_file():
            continue
        table, _ = read_task_scores(root / r["scores"])
        suffix = "" if flat else f"_{r['strategy']}_seed{r['seed']}"
        picked = set(r.get("picked") or [])
        plot_task_map(table, out / f"task_map_round_{r['round']}{suffix}.png", picked=picked,
                      title=f"Task map · round {r['round']} · {r['strategy']} (seed {r['seed']}), "
                            f"{len(picked)} picked")
    atomic.write_text(out / "summary.md", summary_markdown(rows))
    return out
