"""Time the prompt-uncertainty workload on ni-mini with SmolLM2-135M through the engine backends in one
run: (a) `hf`, the reference-style baseline, (b) `native` in float32, (c) `native` in bf16; print ratios
and checks.

    python benchmarks/scoring.py [--json PATH] [--data DIR] [--tasks N] [--bf16 auto|always|never]
                                 [--engines hf,native,vllm]
                                                                         (same as `activeit bench scoring`)

Default: 5 of the 25 ni-mini tasks, spread over the sorted names (the baseline is the slow part).
On a CPU without bf16 instructions (AVX512-BF16 or AMX) (c) is left out unless --bf16 always: torch
emulates bf16 there. `--json` output goes to benchmarks/results/ and `make results` renders it.

Targets: a/b >= 5x, a/c >= 10x on 2 CPU cores, max |Δ mean CE| (b vs a) <= 1e-4, Spearman of per-task
prompt uncertainty (c vs a) >= 0.99, peak RSS < 3 GB.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    from activeit.bench import BF16_CHOICES, BF16_HELP, data_dir_or_exit, scoring_benchmark, workload_arguments

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the figures to this file")
    workload_arguments(parser, tasks=5)
    parser.add_argument("--bf16", choices=BF16_CHOICES, default="auto", help=BF16_HELP)
    parser.add_argument("--engines", default="hf,native", help="backends to time, of hf, native, vllm (default hf,native)")
    args = parser.parse_args()
    scoring_benchmark(data_dir_or_exit(parser, args.data), n_tasks=args.tasks, json_path=args.json, bf16=args.bf16,
                      engines=[e.strip() for e in args.engines.split(",") if e.strip()])


if __name__ == "__main__":
    main()
