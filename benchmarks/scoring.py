"""Time the prompt-uncertainty workload three ways on ni-mini with SmolLM2-135M: (a) a reference-style
baseline, (b) the likelihood engine in float32, (c) the engine in bf16; print ratios and checks.

    python benchmarks/scoring.py [--json PATH] [--data DIR] [--tasks N] [--bf16 auto|always|never]
                                                                         (same as `activeit bench scoring`)

Default: 5 of the 25 ni-mini tasks, spread over the sorted names (the baseline alone needs ~1 min a task
on 2 cores, so all 25 would not fit the 10-minute budget). On this project's 2-core EPYC (no AMX) the whole
run takes 10.3-12.2 minutes, 7.5-8.4 of them the baseline; on a 2-core Xeon with AMX it took about 5. On a
CPU without bf16 instructions (an AVX2-only EPYC: 11.0-11.2 minutes) (c) is left out unless --bf16 always.

Targets (likelihood-engine issue): a/b >= 5x, a/c >= 10x on 2 CPU cores, max |Δ mean CE| (b vs a) <= 1e-4,
Spearman of per-task prompt uncertainty (c vs a) >= 0.99, peak RSS < 3 GB; whole run < 10 minutes.
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
    args = parser.parse_args()
    scoring_benchmark(data_dir_or_exit(parser, args.data), n_tasks=args.tasks, json_path=args.json, bf16=args.bf16)


if __name__ == "__main__":
    main()
