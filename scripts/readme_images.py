"""Redraw the README's pictures (docs/img/) from a finished demo run, small enough to commit.

    python scripts/readme_images.py [RUN_DIR]      (default: runs/demo, what `make demo` writes)

The task map is round 0's scored pool, with the tasks prompt uncertainty picked marked; the
learning curves are every strategy's test and dev ROUGE-L. Both come from `activeit.report`, then
are shrunk to a palette PNG.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from PIL import Image

from activeit.report import plot_learning_curves, plot_task_map
from activeit.scores import read_task_scores

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"


def shrink(src: Path, dest: Path, width: int) -> None:
    """Scale to `width` pixels and keep 64 colours: the plots are flat colours and text."""
    image = Image.open(src).convert("RGB")
    height = round(image.height * width / image.width)
    small = image.resize((width, height), Image.LANCZOS).quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    small.save(dest, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", nargs="?", type=Path, default=ROOT / "runs" / "demo")
    args = parser.parse_args()
    rows = json.loads((args.run / "summary.json").read_text(encoding="utf-8"))["rounds"]
    first = next(r for r in rows if r["round"] == 0 and r.get("scores") and r.get("picked")
                 and r["strategy"] == "high_prompt_uncertainty")
    table, _ = read_task_scores(args.run / first["scores"])
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        plot_task_map(table, Path(tmp) / "map.png", picked=set(first["picked"]),
                      title=f"Task map · demo round 0 · {len(first['picked'])} picked by prompt uncertainty")
        plot_learning_curves(rows, Path(tmp) / "curves.png", title="Learning curves · demo (SmolLM2-135M + LoRA)")
        shrink(Path(tmp) / "map.png", OUT / "task_map.png", 640)
        shrink(Path(tmp) / "curves.png", OUT / "learning_curve.png", 960)
    for name in ("task_map.png", "learning_curve.png"):
        print(f"{OUT / name}: {(OUT / name).stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
