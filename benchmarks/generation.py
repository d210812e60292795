"""Greedy generation the way evaluation runs it (the prompts of many tasks in one call) on ni-mini with
SmolLM2-135M through the engine backends: (a) `hf` one prompt at a time, (b) `hf` on left-padded
batches of 8 in input order, (c) `native`, (d) `vllm` (with `--engines hf,native,vllm`; its start-up
is timed apart); print the time ratios and how many outputs equal (a)'s.

    python benchmarks/generation.py [--tasks 12] [--instances 4] [--max-new-tokens 32] [--dtype float32]
                                    [--reps 2] [--engines hf,native,vllm] [--json PATH]

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
    parser.add_argument("--engines", default="hf,native", help="backends, of hf, native, vllm (hf always runs)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    engines = {e.strip() for e in args.engines.split(",") if e.strip()}
    if engines - {"hf", "native", "vllm"}:
        parser.error(f"--engines: unknown {', '.join(sorted(engines - {'hf', 'native', 'vllm'}))}")

    data = data_dir_or_exit(parser, args.data)
    work = build_workload(data, args.tasks, instances=args.instances, perturbations=0)
    prompts = [p for per_task in work.prompts for p in per_task[0]]
    configure_process()
    lm = load_model("smollm2-135m", dtype=args.dtype, device="cpu")
    hf = get_engine("hf", lm)
    warm_up(hf)
    startup = None

    def run(engine, batch_size: int):
        return lambda: [g.token_ids for g in engine.generate(prompts, max_new_tokens=args.max_new_tokens,
                                                             stop_strings=("\n",), batch_size=batch_size)]

    print(f"{len(prompts)} prompts from {len(work.tasks)} tasks of {data}, ≤ {args.max_new_tokens} new tokens, "
          f"SmolLM2-135M {args.dtype}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"best of {args.reps}")
    methods = {"a": ("hf, one prompt at a time", run(hf, 1)),
               "b": ("hf, left-padded batches of 8", run(hf, 8))}
    if "native" in engines:
        native = get_engine("native", lm)
        warm_up(native)
        methods["c"] = ("native, one call", run(native, 32))
    if "vllm" in engines:
        vllm = get_engine("vllm", lm)
        start = time.perf_counter()
        warm_up(vllm)
        startup = time.perf_counter() - start
        print(f"vllm started and warmed up in {startup:.1f} s (not in its timings)")
        methods["d"] = ("vllm, one call", run(vllm, 32))
    keys = "".join(methods)
    seconds, outputs = {}, {}
    with torch.inference_mode():
        for rep in range(args.reps):  # a rotating order, so that drifting machine load falls on all alike
            for key in (keys * 2)[rep % len(keys):rep % len(keys) + len(keys)]:
                start = time.perf_counter()
                outputs[key] = methods[key][1]()
                seconds[key] = min(seconds.get(key, float("inf")), time.perf_counter() - start)
    figures = {"prompts": len(prompts), "tasks": work.tasks, "dtype": args.dtype, "reps": args.reps,
               "max_new_tokens": args.max_new_tokens, "seconds": seconds, "engines": sorted(engines | {"hf"}),
               "vllm_startup_seconds": startup}
    for key, (name, _) in methods.items():
        same = sum(x == y for x, y in zip(outputs[key], outputs["a"]))
        figures[f"same_as_a_{key}"] = same
        print(f"  {key} {name:42} {seconds[key]:7.1f} s  a/{key} {seconds['a'] / seconds[key]:5.2f}x  "
              f"outputs equal to (a): {same}/{len(prompts)}")
    if "c" in seconds:
        figures["a_over_c"], figures["b_over_c"] = seconds["a"] / seconds["c"], seconds["b"] / seconds["c"]
        print(f"native vs batched hf: {figures['b_over_c']:.2f}x")
    if "d" in seconds:
        figures["b_over_d"] = seconds["b"] / seconds["d"]
        print(f"vllm vs batched hf: {figures['b_over_d']:.2f}x")
    figures.update(run_info("generation"))
    if args.json:
        atomic.write_json(args.json, figures)


if __name__ == "__main__":
    main()
