"""Score a synthetic Self-Instruct-style pool (default 52,000 one-instance tasks) × (K + 1) = 11 prompts with
a tiny random-weight model, streamed to disk in blocks; report peak RSS and seconds per 1,000 records.

    python benchmarks/stream_pool.py [--records 52000] [--dir DIR] [--threads 1] [--json PATH]
                                                               (same as `activeit bench stream`)

Target (issue 36): peak RSS < 2 GB (`ru_maxrss` of the process: pool, model, scoring, final files, selection).
`--json` output goes to benchmarks/results/ and `make results` renders it.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    from activeit.bench import stream_benchmark
    from activeit.engine import configure_process

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=52_000, help="records in the synthetic pool (default 52000)")
    parser.add_argument("--dir", help="keep the pool, model and scores here (default: a temporary directory)")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the tiny model's "
                        "products are too small to split)")
    args = parser.parse_args()
    configure_process()
    stream_benchmark(args.records, json_path=args.json, work_dir=args.dir, threads=args.threads)


if __name__ == "__main__":
    main()
