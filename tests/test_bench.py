"""The scoring benchmark runs end to end and its figures hold together (tiny model, one real task)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from activeit.bench import scoring_benchmark, spearman
from activeit.errors import ConfigError


def test_spearman_against_hand_computed_ranks():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert abs(spearman([1, 2, 3], [1, 3, 2]) - 0.5) < 1e-12


def test_scoring_benchmark_on_a_tiny_model(tiny_causal_dir, ni_mini, tmp_path):
    out = tmp_path / "bench.json"
    lines: list[str] = []
    figures = scoring_benchmark(ni_mini, n_tasks=1, json_path=out, model=str(tiny_causal_dir), max_new_tokens=4,
                                bf16="always", echo=lines.append)
    assert json.loads(out.read_text())["speedup_fp32"] == figures["speedup_fp32"]
    for key in "abc":
        assert figures[key]["seconds"] > 0 and figures[key]["tokens"] > 0
    assert abs(figures["speedup_bf16"] - figures["a"]["seconds"] / figures["c"]["seconds"]) < 1e-9
    assert figures["checks"]["Spearman PU c vs a"]["pass"] is not None and figures["bf16_skipped"] is None
    assert abs(figures["speedup_fp32"] - figures["a"]["seconds"] / figures["b"]["seconds"]) < 1e-9
    # the baseline runs every prompt token of every pair and the head on every position: more work
    assert figures["flop_ratio_fp32"] > 1.5
    # the engine computes the baseline's numbers: same labels, mean CE within the float32 target
    cmp = figures["compare_fp32"]
    assert cmp["labels_equal"] == cmp["labels"] > 0
    assert cmp["max_abs_dce"] <= 1e-4
    assert figures["memory_probe"]["tokens_run"] < figures["memory_probe"]["tokens_naive"]
    assert any("a/b time ratio" in line for line in lines)
    written = json.loads(out.read_text())
    assert written["benchmark"] == "scoring" and written["machine"]["cores"] and written["versions"]["torch"]


def test_scoring_benchmark_skips_bf16_where_the_cpu_would_emulate_it(tiny_causal_dir, ni_mini, monkeypatch):
    """auto: no (c) on a CPU without bf16 instructions; its two checks say SKIP instead of passing or failing."""
    monkeypatch.setattr("activeit.bench.cpu_supports_bf16", lambda: False)
    lines: list[str] = []
    figures = scoring_benchmark(ni_mini, n_tasks=1, model=str(tiny_causal_dir), max_new_tokens=2, echo=lines.append)
    assert figures["c"] is None and figures["speedup_bf16"] is None and figures["compare_bf16"] is None
    assert "no bf16 instructions" in figures["bf16_skipped"] and not figures["cpu_bf16"]
    assert set(figures["per_task"][0]["seconds"]) == {"a", "b"}
    checks = figures["checks"]
    assert checks["a/c time ratio (bf16)"]["pass"] is None and checks["Spearman PU c vs a"]["pass"] is None
    assert checks["a/b time ratio (fp32)"]["pass"] is not None
    assert sum("SKIP (not run)" in line for line in lines) == 2
    with pytest.raises(ConfigError, match="bf16 must be one of"):
        scoring_benchmark(ni_mini, n_tasks=1, model=str(tiny_causal_dir), bf16="sometimes")


def test_scoring_benchmark_runs_the_engines_named(tiny_causal_dir, ni_mini):
    """--engines hf: the baseline alone, native's checks SKIP; an unknown name fails before any work."""
    lines: list[str] = []
    figures = scoring_benchmark(ni_mini, n_tasks=1, model=str(tiny_causal_dir), max_new_tokens=2, bf16="never",
                                engines=["hf"], echo=lines.append)
    assert set(figures["per_task"][0]["seconds"]) == {"a"} and figures["engines"] == ["hf"]
    assert figures["compare"] == {} and figures["speedup_fp32"] is None
    assert figures["checks"]["max |Δ mean CE| b vs a"]["pass"] is None
    with pytest.raises(ConfigError, match="unknown engine.*vllm2"):
        scoring_benchmark(ni_mini, n_tasks=1, model=str(tiny_causal_dir), engines=["hf", "vllm2"])


@pytest.mark.parametrize("script", ["scoring.py", "generation.py", "workers.py", "training.py"])
def test_benchmark_scripts_reject_a_missing_data_directory(script, tmp_path):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / script
    run = subprocess.run([sys.executable, str(path), "--data", str(tmp_path / "missing")], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2
    assert "give --data DIR" in run.stderr and "Traceback" not in run.stderr


def test_stream_benchmark_small_run(tmp_path):
    """A 120-record pool through `activeit bench stream`: every record scored with K + 1 prompts, the shards
    planned, figures in the benchmarks' --json format, and the same pool file for the same arguments."""
    from activeit.bench import stream_benchmark, synthetic_instruction_pool

    out = tmp_path / "stream.json"
    lines: list[str] = []
    figures = stream_benchmark(120, json_path=out, work_dir=tmp_path / "work", perturbations=3, max_new_tokens=3,
                               progress=False, echo=lines.append)
    assert figures["records"] == 120 and figures["scored_pairs"] == 120 * 4
    assert figures["parts"] == 1  # 120 tasks × 4 pairs fit one block of 512 pairs
    assert figures["seconds_per_1000_records"] == pytest.approx(figures["seconds"] / 120 * 1000)
    assert 0 < figures["peak_rss_gb"] and figures["checks"]["peak RSS (GB)"]["target"] == 2.0
    assert figures["picked"] == 40 and figures["engine"] == "native"
    written = json.loads(out.read_text())
    assert written["benchmark"] == "stream" and written["machine"]["cores"] and written["versions"]["torch"]
    assert any("s per 1,000 records" in line for line in lines)
    pool = tmp_path / "work" / "pool-120.jsonl"
    again = synthetic_instruction_pool(tmp_path / "again.jsonl", 120)
    assert pool.read_bytes() == again.read_bytes()
    rows = [json.loads(line) for line in pool.read_text().splitlines()]
    assert all(r["instruction"].strip() and r["output"].strip() for r in rows)
    assert len({r["instruction"] for r in rows}) > 100
