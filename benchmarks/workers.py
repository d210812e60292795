"""Generate the labels and score the prompt-uncertainty pairs of ni-mini tasks with SmolLM2-135M on one
engine worker (all intra-op threads on one forward pass at a time) and on the default workers
(the native engine's `engine.workers`: two passes side by side, half the threads each); print the time ratios, how many
labels came out the same and the largest score difference.

    python benchmarks/workers.py [--tasks 5] [--reps 2] [--dtypes float32,bfloat16] [--json PATH]

Per task, the n labels are generated both ways (workers prefill the prompts; decoding runs on one),
then the K × n pairs are scored both ways with the one-worker labels, in alternating order so that
drifting machine load falls on both. About 11 minutes for 5 tasks, 2 repetitions, both dtypes on 2
cores (on a shared machine a single repetition can be 15 % off).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    import torch

    from activeit import atomic
    from activeit.bench import build_workload, data_dir_or_exit, run_info, warm_up, workload_arguments
    from activeit.engine import configure_process, get_engine
    from activeit.models import cpu_supports_bf16, load_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    workload_arguments(parser, tasks=5)
    parser.add_argument("--reps", type=int, default=2, help="timings per task and setting, the best counts (default 2)")
    parser.add_argument("--dtypes", help="comma-separated (default float32,bfloat16; float32 alone on a CPU "
                                         "without bf16 instructions)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    args.dtypes = args.dtypes or ("float32,bfloat16" if cpu_supports_bf16() else "float32")

    data = data_dir_or_exit(parser, args.data)
    work = build_workload(data, args.tasks)
    configure_process()
    many = 2 if torch.get_num_threads() >= 2 else 1
    print(f"{len(work.tasks)} tasks, {torch.get_num_threads()} intra-op threads; 1 worker vs {many} workers "
          f"({max(1, torch.get_num_threads() // many)} threads each)")
    figures: dict = {"tasks": work.tasks, "threads": torch.get_num_threads(), "workers": many}
    for dtype in args.dtypes.split(","):
        lm = load_model("smollm2-135m", dtype=dtype, device="cpu")
        engines = {w: get_engine("native", lm, workers=w) for w in (1, many)}
        warm_up(engines[many])
        totals, gen_totals, max_diff, same, n_labels, rows = {1: 0.0, many: 0.0}, {1: 0.0, many: 0.0}, 0.0, 0, 0, []
        for t, (name, prompts) in enumerate(zip(work.tasks, work.prompts)):
            order = ((1, many) if t % 2 == 0 else (many, 1)) * args.reps
            gen_best, gens = {}, {}
            for w in order:
                start = time.perf_counter()
                gens[w] = engines[w].generate(prompts[0], max_new_tokens=64)
                gen_best[w] = min(gen_best.get(w, float("inf")), time.perf_counter() - start)
            labels = [g.token_ids for g in gens[1]]
            same += sum(a.token_ids == b.token_ids for a, b in zip(gens[1], gens[many]))
            n_labels += len(labels)
            pairs = [(p, labels[i]) for variant in prompts[1:] for i, p in enumerate(variant)]
            best, scores = {}, {}
            for w in order:
                start = time.perf_counter()
                scores[w] = engines[w].score([p for p, _ in pairs], [y for _, y in pairs])
                best[w] = min(best.get(w, float("inf")), time.perf_counter() - start)
            diff = max(abs(a.mean_ce - b.mean_ce) for a, b in zip(scores[1], scores[many]))
            max_diff = max(max_diff, diff)
            for w in best:
                totals[w] += best[w]
                gen_totals[w] += gen_best[w]
            rows.append({"task": name, "seconds": {str(w): s for w, s in best.items()},
                         "generation_seconds": {str(w): s for w, s in gen_best.items()}, "max_abs_dce": diff})
            print(f"  {dtype:9} {name[:40]:40} labels {gen_best[1] / gen_best[many]:.2f}x  scoring 1 worker "
                  f"{best[1]:6.1f} s  {many} workers {best[many]:6.1f} s  {best[1] / best[many]:.2f}x  "
                  f"max |Δ mean CE| {diff:.1e}")
        ratio, gen_ratio = totals[1] / totals[many], gen_totals[1] / gen_totals[many]
        print(f"{dtype}: scoring 1 worker {totals[1]:.1f} s, {many} workers {totals[many]:.1f} s: {ratio:.3f}x; "
              f"max |Δ mean CE| {max_diff:.1e}")
        print(f"{dtype}: labels 1 worker {gen_totals[1]:.1f} s, {many} workers {gen_totals[many]:.1f} s: "
              f"{gen_ratio:.3f}x; the same labels {same}/{n_labels}")
        figures[dtype] = {"seconds_1": totals[1], f"seconds_{many}": totals[many], "speedup": ratio,
                          "max_abs_dce": max_diff, "generation_seconds_1": gen_totals[1],
                          f"generation_seconds_{many}": gen_totals[many], "generation_speedup": gen_ratio,
                          "labels_equal": same, "labels": n_labels, "per_task": rows}
        del lm
    figures.update(run_info("workers"))
    if args.json:
        atomic.write_json(args.json, figures)


if __name__ == "__main__":
    main()
