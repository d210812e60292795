"""Greedy generation the way evaluation runs it (the prompts of many tasks in one call) on ni-mini with
SmolLM2-135M through the engine backends, three ways: (a) `hf` one prompt at a time, (b) `hf` on
left-padded batches of 8 in input order, (c) `native`; print the time ratios and how many outputs
equal (a)'s.

    python benchmarks/generation.py [--tasks 12] [--instances 4] [--max-new-tokens 32] [--dtype float32]
                                    [--reps 2] [--json PATH]

All three stop at EOS or at the first token whose text contains a newline. About 4 minutes on 2 cores
with the defaults.
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
    from activeit.models import load_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    workload_arguments(parser, tasks=12)
    parser.add_argument("--instances", type=int, default=4, help="prompts per task (default 4)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--reps", type=int, default=2, help="timings per method, the best counts (default 2)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    data = data_dir_or_exit(parser, args.data)
    work = build_workload(data, args.tasks, instances=args.instances, perturbations=0)
    prompts = [p for per_task in work.prompts for p in per_task[0]]
    configure_process()
    lm = load_model("smollm2-135m", dtype=args.dtype, device="cpu")
    hf, native = get_engine("hf", lm), get_engine("native", lm)
    warm_up(hf)
    warm_up(native)

    def run(engine, batch_size: int):
        return lambda: [g.token_ids for g in engine.generate(prompts, max_new_tokens=args.max_new_tokens,
                                                             stop_strings=("\n",), batch_size=batch_size)]

    print(f"{len(prompts)} prompts from {len(work.tasks)} tasks of {data}, ≤ {args.max_new_tokens} new tokens, "
          f"SmolLM2-135M {args.dtype}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"best of {args.reps}")
    methods = {"a": ("hf, one prompt at a time", run(hf, 1)),
               "b": ("hf, left-padded batches of 8", run(hf, 8)),
               "c": ("native, one call", run(native, 32))}
    seconds, outputs = {}, {}
    with torch.inference_mode():
        for rep in range(args.reps):  # a rotating order, so that drifting machine load falls on all three
            for key in ("abc" * 2)[rep % 3:rep % 3 + 3]:
                start = time.perf_counter()
                outputs[key] = methods[key][1]()
                seconds[key] = min(seconds.get(key, float("inf")), time.perf_counter() - start)
    figures = {"prompts": len(prompts), "tasks": work.tasks, "dtype": args.dtype, "reps": args.reps,
               "max_new_tokens": args.max_new_tokens, "seconds": seconds}
    for key, (name, _) in methods.items():
        same = sum(x == y for x, y in zip(outputs[key], outputs["a"]))
        figures[f"same_as_a_{key}"] = same
        print(f"  {key} {name:42} {seconds[key]:7.1f} s  a/{key} {seconds['a'] / seconds[key]:5.2f}x  "
              f"outputs equal to (a): {same}/{len(prompts)}")
    figures["a_over_c"], figures["b_over_c"] = seconds["a"] / seconds["c"], seconds["b"] / seconds["c"]
    print(f"native vs batched hf: {figures['b_over_c']:.2f}x")
    figures.update(run_info("generation"))
    if args.json:
        atomic.write_json(args.json, figures)


if __name__ == "__main__":
    main()
