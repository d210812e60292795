"""Index a synthetic NI checkout (default: 1,600 tasks x 6,500 instances, ~3 GB) and report the
peak RSS and wall time of `activeit tasks list`-style indexing, measured in a child process.

    python benchmarks/lazy_loading.py [--tasks 1600] [--instances 6500] [--dir /tmp/ni-synth] [--json PATH]

Targets (foundation issue): peak RSS < 1.5 GB and < 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("the movie was great and the food was cold while a quiet river ran past old stone houses "
         "under bright summer skies people walked slowly talking about books music and weather").split()


def synthesize(root: Path, n_tasks: int, n_instances: int, seed: int = 0) -> int:
    """Write the pool once (reused if present); returns its size in bytes."""
    tasks = root / "tasks"
    marker = root / f".complete-{n_tasks}-{n_instances}"
    if marker.exists():
        return sum(p.stat().st_size for p in tasks.glob("*.json"))
    tasks.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    total = 0
    for t in range(n_tasks):
        labels = ["positive", "negative"] if t % 2 == 0 else None
        instances = []
        for i in range(n_instances):
            text = " ".join(rng.choice(WORDS) for _ in range(40))
            out = rng.choice(labels) if labels else " ".join(rng.choice(WORDS) for _ in range(6))
            instances.append({"id": f"task{t}-{i}", "input": text, "output": [out]})
        data = {
            "Contributors": ["synthetic"], "Source": ["synthetic"], "Categories": [f"Category {t % 40}"],
            "Definition": ["Say whether the review is positive or negative." if labels else "Continue the text."],
            "Positive Examples": [{"input": "good", "output": labels[0] if labels else "more", "explanation": ""}],
            "Negative Examples": [], "Instances": instances,
        }
        path = tasks / f"task{t:04d}_synthetic.json"
        path.write_text(json.dumps(data, indent=1))
        total += path.stat().st_size
    marker.touch()
    return total


CHILD = """
import sys, time, resource
from activeit.tasks import TaskLibrary
t = time.perf_counter()
lib = TaskLibrary(sys.argv[1], cache_size=0)
kinds = [s.kind for s in lib.summaries()]
print(len(kinds), kinds.count("cls"), time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1600)
    parser.add_argument("--instances", type=int, default=6500)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/activeit-ni-synth"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    t0 = time.perf_counter()
    size = synthesize(args.dir, args.tasks, args.instances)
    print(f"pool: {args.tasks} tasks x {args.instances} instances, {size / 1e9:.2f} GB on disk "
          f"(written in {time.perf_counter() - t0:.0f} s)")
    figures = {"tasks": args.tasks, "bytes": size}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, ACTIVEIT_CACHE_DIR=cache)
        for label in ("cold", "warm"):
            out = subprocess.run([sys.executable, "-c", CHILD, str(args.dir)], capture_output=True, text=True,
                                 check=True, env=env)
            n, n_cls, seconds, maxrss_kb = out.stdout.split()
            seconds, rss_gb = float(seconds), int(maxrss_kb) / 1e6
            figures[label] = {"seconds": seconds, "peak_rss_gb": rss_gb}
            print(f"{label} index ({'empty' if label == 'cold' else 'filled'} summary cache): {n} tasks ({n_cls} cls) "
                  f"in {seconds:.1f} s, peak RSS {rss_gb:.3f} GB (targets: < 60 s {'PASS' if seconds < 60 else 'MISS'}, "
                  f"< 1.5 GB {'PASS' if rss_gb < 1.5 else 'MISS'})")
    if args.json:
        from activeit import atomic
        from activeit.bench import run_info

        atomic.write_json(args.json, {**figures, **run_info("lazy_loading")})

if __name__ == "__main__":
    main()
