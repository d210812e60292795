"""Score the prompt-uncertainty pairs of ni-mini tasks with SmolLM2-135M on one engine worker (all
intra-op threads on one forward pass at a time) and on the default workers (`activeit.workers`: two
passes side by side, half the threads each); print the time ratio and the largest score difference.

    python benchmarks/workers.py [--tasks 5] [--reps 2] [--dtypes float32,bfloat16] [--json PATH]

Labels are generated once per task (generation always runs on one worker); each task's K × n
pairs are then scored both ways, in alternating order so that drifting machine load falls on both.
About 9 minutes for 5 tasks, 2 repetitions, both dtypes on 2 cores (on a shared machine a single
repetition can be 15 % off).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    import torch

    from activeit.bench import build_workload, default_data_dir, warm_up
    from activeit.likelihood import generate, score
    from activeit.models import load_model
    from activeit.workers import default_workers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="NI-style directory (default: ../shared/data/ni-mini)")
    parser.add_argument("--tasks", type=int, default=5, help="tasks, spread over the sorted names (default 5)")
    parser.add_argument("--reps", type=int, default=2, help="timings per task and setting, the best counts (default 2)")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    data = args.data or default_data_dir()
    if data is None:
        parser.error("give --data DIR (an NI-style directory such as ../shared/data/ni-mini)")
    work = build_workload(data, args.tasks)
    many = default_workers("cpu")
    print(f"{len(work.tasks)} tasks, {torch.get_num_threads()} intra-op threads; 1 worker vs {many} workers "
          f"({max(1, torch.get_num_threads() // many)} threads each)")
    figures: dict = {"tasks": work.tasks, "threads": torch.get_num_threads(), "workers": many}
    for dtype in args.dtypes.split(","):
        lm = load_model("smollm2-135m", dtype=dtype, device="cpu")
        warm_up(lm)
        totals, max_diff, rows = {1: 0.0, many: 0.0}, 0.0, []
        for t, (name, prompts) in enumerate(zip(work.tasks, work.prompts)):
            labels = [g.token_ids for g in generate(lm, prompts[0], max_new_tokens=64)]
            pairs = [(p, labels[i]) for variant in prompts[1:] for i, p in enumerate(variant)]
            best, scores = {}, {}
            for w in ((1, many) if t % 2 == 0 else (many, 1)) * args.reps:
                start = time.perf_counter()
                scores[w] = score(lm, [p for p, _ in pairs], [y for _, y in pairs], workers=w)
                best[w] = min(best.get(w, float("inf")), time.perf_counter() - start)
            diff = max(abs(a.mean_ce - b.mean_ce) for a, b in zip(scores[1], scores[many]))
            max_diff = max(max_diff, diff)
            for w in best:
                totals[w] += best[w]
            rows.append({"task": name, "seconds": {str(w): s for w, s in best.items()}, "max_abs_dce": diff})
            print(f"  {dtype:9} {name[:40]:40} 1 worker {best[1]:6.1f} s  {many} workers {best[many]:6.1f} s  "
                  f"{best[1] / best[many]:.2f}x  max |Δ mean CE| {diff:.1e}")
        ratio = totals[1] / totals[many]
        print(f"{dtype}: 1 worker {totals[1]:.1f} s, {many} workers {totals[many]:.1f} s: {ratio:.3f}x; "
              f"max |Δ mean CE| {max_diff:.1e}")
        figures[dtype] = {"seconds_1": totals[1], f"seconds_{many}": totals[many], "speedup": ratio,
                          "max_abs_dce": max_diff, "per_task": rows}
        del lm
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
