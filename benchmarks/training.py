"""Training throughput of `activeit.training.train` vs a plain `transformers.Trainer`, measured in one run.

    python benchmarks/training.py [--steps 10] [--batch-size 2] [--modes lora,full] [--json PATH]

Same model (SmolLM2-135M, `load_model("smollm2-135m", dtype="float32")`), same tokenized
examples (the ni-mini train tasks, encoded by activeit: definition + 2 examples, causal target
masking), same per-device batch size and the same collator (pad to the longest in the batch).
The plain run uses default `TrainingArguments` (fp32, random sampler) apart from the batch size,
`max_steps`, the seed (the same as activeit's, so matched runs draw the same batches),
`report_to="none"` and `include_num_input_tokens_seen="non_padding"` (counting only).

For each of LoRA and full fine-tuning, rows:
  plain Trainer                  the baseline
  activeit, matched              fp32, no length grouping: the cost of activeit itself (target >= 1.0)
  activeit, + group_by_length    length-grouped batches (less padding)
  activeit, + bf16 (defaults)    length grouping and bf16 autocast (`bf16: auto` on a bf16 CPU; the row is
                                 left out on a CPU without bf16 instructions, where auto means float32)

tokens/s = non-padding tokens per second over steps 2..N (the first step warms up threads and
allocators; checkpoint writing is outside), and `e2e` = tokens / Trainer's `train_runtime`.
`others` = CPU time other processes used during the run, as a share of all cores: rows with a
large share were measured on a busy machine and are not comparable.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SEED = 1


def step_timer():
    """A callback recording (time, non-padding tokens seen) at the end of every optimizer step."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.marks: list[tuple[float, int]] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.marks.append((time.perf_counter(), state.num_input_tokens_seen))

        def steady_tokens_per_s(self) -> float:
            (t0, n0), (t1, n1) = self.marks[0], self.marks[-1]
            return (n1 - n0) / (t1 - t0) if t1 > t0 else float("nan")

    return StepTimer()


class CpuShare:
    """CPU time used by *other* processes while a run was measured, as a share of all cores (Linux /proc/stat).

    A share near 0 means the numbers are clean; the machine is shared, and two PyTorch processes
    on the same cores slow each other down several times over.
    """

    def __enter__(self):
        self.busy0, self.own0, self.t0 = _busy_s(), _own_s(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.t0
        others = (_busy_s() - self.busy0) - (_own_s() - self.own0)
        self.others = max(0.0, others) / max(wall, 1e-9) / (os.cpu_count() or 1)


def _busy_s() -> float:
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_s() -> float:
    t = os.times()
    return t.user + t.system


def base_config(args, mode: str, *, bf16: bool, group: bool):
    from activeit.config import load_config

    return load_config(None, [
        "model.name=smollm2-135m", "model.device=cpu", f"data.path={args.data}", f"seed={SEED}",
        f"prompt.max_source_length={args.max_source_length}", "prompt.max_target_length=64",
        f"training.per_device_batch_size={args.batch_size}", f"training.max_steps={args.steps}",
        "training.learning_rate=1e-4", "training.warmup_steps=0", "training.lr_scheduler=constant",
        "training.best_metric=null", f"training.logging_steps={args.steps}",
        f"training.bf16={str(bf16).lower()}", f"training.group_by_length={str(group).lower()}",
        f"training.lora.enabled={str(mode == 'lora').lower()}", "training.lora.r=16", "training.lora.alpha=32",
    ])


def run_plain(args, mode: str, examples, tokenizer_pad: int) -> dict:
    import torch
    from transformers import PrinterCallback, Trainer, TrainingArguments

    from activeit.models import load_model
    from activeit.training import PadCollator, _lora_model

    lm = load_model("smollm2-135m", dtype="float32", device="cpu")
    model = lm.model
    model.train()
    if mode == "lora":
        torch.manual_seed(SEED)
        model = _lora_model(model, base_config(args, mode, bf16=False, group=False), causal=True)
    timer = step_timer()
    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(output_dir=out, per_device_train_batch_size=args.batch_size, max_steps=args.steps,
                                  seed=SEED, report_to="none", include_num_input_tokens_seen="non_padding",
                                  disable_tqdm=True, use_cpu=True)
        trainer = Trainer(model=model, args=targs, train_dataset=examples, data_collator=PadCollator(tokenizer_pad),
                          callbacks=[timer])
        trainer.remove_callback(PrinterCallback)  # no log dicts on stdout
        output = trainer.train()
        tokens = trainer.state.num_input_tokens_seen
    return {"tokens": tokens, "train_runtime": output.metrics["train_runtime"], "steps": trainer.state.global_step,
            "tokens_per_s": timer.steady_tokens_per_s()}


def run_activeit(args, mode: str, tasks, *, bf16: bool, group: bool) -> dict:
    from activeit.training import train

    cfg = base_config(args, mode, bf16=bf16, group=group)
    timer = step_timer()
    with tempfile.TemporaryDirectory() as out:
        result = train(cfg, tasks, Path(out) / "run", callbacks=[timer])
    return {"tokens": result.tokens, "train_runtime": result.train_s, "steps": result.steps,
            "tokens_per_s": timer.steady_tokens_per_s(), "wall_s": result.wall_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="optimizer steps per run (default 10)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-source-length", type=int, default=1024)
    parser.add_argument("--modes", default="lora,full")
    parser.add_argument("--data", help="NI-style directory (default: ../shared/data/ni-mini)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()

    from activeit import atomic
    from activeit.bench import data_dir_or_exit, run_info

    args.data = data_dir_or_exit(parser, args.data)

    import torch
    from transformers.utils import logging as hf_logging

    from activeit.models import cpu_supports_bf16, load_tokenizer, resolve_model_source
    from activeit.pool import read_task_list
    from activeit.tasks import TaskLibrary
    from activeit.training import build_examples

    hf_logging.set_verbosity_error()
    library = TaskLibrary(args.data)
    split = Path(args.data) / "splits" / "default" / "train_tasks.txt"
    names = read_task_list(split, library) if split.is_file() else library.names()
    tasks = [library.load(n) for n in names]
    tokenizer = load_tokenizer(resolve_model_source("smollm2-135m"))
    examples = build_examples(tasks, tokenizer, base_config(args, "full", bf16=False, group=False), causal=True)
    lengths = sorted(len(e["input_ids"]) for e in examples)
    print(f"data: {len(examples)} examples of {len(tasks)} ni-mini train tasks, {lengths[0]}-{lengths[-1]} tokens "
          f"(median {lengths[len(lengths) // 2]}); batch {args.batch_size}, {args.steps} steps a run; "
          f"torch threads {torch.get_num_threads()}, CPU bf16 {cpu_supports_bf16()}, "
          f"load average {os.getloadavg()[0]:.2f} (other CPU-heavy processes distort every number)", flush=True)

    rows = []
    start = time.perf_counter()
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        runs = [
            ("plain Trainer", lambda: run_plain(args, mode, examples, tokenizer.pad_token_id)),
            ("activeit, matched", lambda: run_activeit(args, mode, tasks, bf16=False, group=False)),
            ("activeit, + group_by_length", lambda: run_activeit(args, mode, tasks, bf16=False, group=True)),
        ]
        if cpu_supports_bf16():
            runs.append(("activeit, + bf16 (defaults)", lambda: run_activeit(args, mode, tasks, bf16=True, group=True)))
        else:
            print(f"  {mode:4}  activeit, + bf16: skipped, this CPU has no bf16 instructions (torch would emulate "
                  "bf16); `bf16: auto` trains in float32 here, so the row above is the default", file=sys.stderr)
        base = None
        for label, fn in runs:
            with CpuShare() as share:
                r = fn()
            r.update(mode=mode, run=label, e2e_tokens_per_s=r["tokens"] / r["train_runtime"], others=share.others)
            base = base or r
            r["ratio"] = r["tokens_per_s"] / base["tokens_per_s"]
            r["e2e_ratio"] = r["e2e_tokens_per_s"] / base["e2e_tokens_per_s"]
            rows.append(r)
            print(f"  {mode:4}  {label:28}  {r['tokens_per_s']:7.1f} tok/s  x{r['ratio']:.2f}  "
                  f"(e2e {r['e2e_tokens_per_s']:.1f} tok/s x{r['e2e_ratio']:.2f}, {r['train_runtime']:.1f} s, "
                  f"other processes {r['others']:.0%} of the CPUs)",
                  file=sys.stderr, flush=True)

    header = (f"{'mode':4}  {'run':28}  {'steps':>5}  {'tokens':>6}  {'tok/s':>7}  {'ratio':>5}  {'e2e tok/s':>9}  "
              f"{'e2e ratio':>9}  {'others':>6}")
    print(header)
    for r in rows:
        print(f"{r['mode']:4}  {r['run']:28}  {r['steps']:5d}  {r['tokens']:6d}  {r['tokens_per_s']:7.1f}  "
              f"{r['ratio']:5.2f}  {r['e2e_tokens_per_s']:9.1f}  {r['e2e_ratio']:9.2f}  {r['others']:6.0%}")
    print(f"total {time.perf_counter() - start:.0f} s; load average at the end {os.getloadavg()[0]:.2f}")
    if args.json:
        meta = {"args": {k: str(v) for k, v in vars(args).items()}, "cpus": os.cpu_count(),
                "load_average_end": os.getloadavg()[0]}
        atomic.write_json(args.json, {"rows": rows, **meta, **run_info("training")})


if __name__ == "__main__":
    main()
