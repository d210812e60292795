"""Figures and tables of a run: task maps, learning curves, summary.md.

Everything here reads files a run wrote (tasks.json, summary.json), never a model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from activeit import atomic

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


def plot_task_map(scores: Mapping[str, Any], path: str | os.PathLike, title: str = "Task map",
                  picked: set[str] | None = None, annotate: int = 0) -> None:
    """Prompt uncertainty (cube-root axis) vs prediction probability, one colour per region.

    `picked` tasks are drawn with a black edge; `annotate` labels the N highest-PU tasks.
    """
    import numpy as np

    plt = _pyplot()
    points = [(n, s.prompt_uncertainty, s.prediction_probability, s.region or "ambiguous")
              for n, s in scores.items() if s.prompt_uncertainty is not None and s.prediction_probability is not None]
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    if not points:
        ax.text(0.5, 0.5, "no prompt-uncertainty scores", ha="center", va="center", transform=ax.transAxes)
    for region, color in REGION_COLORS.items():
        sel = [p for p in points if p[3] == region]
        if not sel:
            continue
        edge = ["black" if picked and p[0] in picked else "none" for p in sel]
        ax.scatter([p[1] for p in sel], [p[2] for p in sel], c=color, edgecolors=edge, linewidths=1.2,
                   s=36, alpha=0.85, label=f"{region} ({len(sel)})")
    if picked:
        ax.scatter([], [], facecolors="none", edgecolors="black", label="picked")
    for name, pu, pp, _ in sorted(points, key=lambda p: -p[1])[:annotate]:
        ax.annotate(name.split("_")[0], (pu, pp), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("function", functions=(np.cbrt, lambda x: x ** 3))
    ax.set_xlabel("prompt uncertainty (cube-root scale)")
    ax.set_ylabel("prediction probability")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(left=0)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if points:
        ax.legend(loc="best", fontsize=8, frameon=True)
    _save(fig, path)
    plt.close(fig)
