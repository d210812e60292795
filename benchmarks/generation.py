"""Greedy generation the way evaluation runs it (the prompts of many tasks in one call) on ni-mini with
SmolLM2-135M, three ways: (a) `model.generate` one prompt at a time, (b) `model.generate` on left-padded
batches of 8 in input order, (c) `activeit.likelihood.generate`; print the time ratios and how many
outputs equal (a)'s.

    python benchmarks/generation.py [--tasks 12] [--instances 4] [--max-new-tokens 32] [--dtype float32]
                                    [--reps 2] [--json PATH]

All three stop at EOS or at the first token whose text contains a newline. About 4 minutes on 2 cores
with the defaults.
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
    from transformers import StoppingCriteriaList

    from activeit.bench import _NewlineStop, build_workload, data_dir_or_exit, run_info, warm_up, workload_arguments
    from activeit.likelihood import generate
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
    lm = load_model("smollm2-135m", dtype=args.dtype, device="cpu")
    warm_up(lm)
    tok, model = lm.tokenizer, lm.model
    stop = StoppingCriteriaList([_NewlineStop(tok, ["\n"])])
    eos = tok.eos_token_id

    def cut(new: list[int]) -> list[int]:
        """Up to and including the first EOS or newline token (what the engine returns)."""
        for j, t in enumerate(new):
            if t == eos or "\n" in tok.decode([t]):
                return new[:j + 1]
        return new

    def one_at_a_time() -> list[list[int]]:
        out = []
        for prompt in prompts:
            ids = torch.tensor([tok(prompt)["input_ids"]])
            gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=args.max_new_tokens, stopping_criteria=stop, pad_token_id=eos)
            out.append(cut(gen[0, ids.shape[1]:].tolist()))
        return out

    def left_padded(batch_size: int = 8) -> list[list[int]]:
        out = []
        for b in range(0, len(prompts), batch_size):
            seqs = [tok(p)["input_ids"] for p in prompts[b:b + batch_size]]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(seqs), width), eos)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for r, s in enumerate(seqs):
                ids[r, width - len(s):] = torch.tensor(s)
                mask[r, width - len(s):] = 1
            gen = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                 max_new_tokens=args.max_new_tokens, stopping_criteria=stop, pad_token_id=eos)
            out += [cut(row[width:].tolist()) for row in gen]
        return out

    def engine() -> list[list[int]]:
        return [g.token_ids for g in generate(lm, prompts, max_new_tokens=args.max_new_tokens, stop_strings=("\n",))]

    print(f"{len(prompts)} prompts from {len(work.tasks)} tasks of {data}, ≤ {args.max_new_tokens} new tokens, "
          f"SmolLM2-135M {args.dtype}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"best of {args.reps}")
    methods = {"a": ("model.generate one prompt at a time", one_at_a_time),
               "b": ("model.generate left-padded batches of 8", left_padded),
               "c": ("activeit generate, one call", engine)}
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
    print(f"activeit vs batched model.generate: {figures['b_over_c']:.2f}x")
    figures.update(run_info("generation"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
