"""benchmarks/results.py renders one table per benchmark and one row per run from --json files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from activeit.bench import machine_info, run_info

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "results.py"


def _results_module():
    spec = importlib.util.spec_from_file_location("benchmark_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


MACHINE = {"cpu": "Example CPU 9000", "cores": 2, "isa": ["avx2", "avx512f", "amx_bf16"], "system": "Linux"}
SCORING = {
    "benchmark": "scoring", "date": "2025-03-02T10:00:00+00:00", "machine": MACHINE,
    "versions": {"python": "3.11.7", "torch": "2.4.0", "transformers": "4.50.0"},
    "speedup_fp32": 5.25, "speedup_bf16": None, "a": {"seconds": 420.0}, "b": {"seconds": 80.0}, "c": None,
    "compare_fp32": {"max_abs_dce": 1.8e-5}, "compare_bf16": None, "memory_probe": {"peak_rss_gb": 2.04},
    "matmul_peak_gflops": {"float32": 150.4, "bfloat16": 1.2},
}
# written before the files carried `benchmark`, machine, date or versions
OLD_GENERATION = {"prompts": 48, "dtype": "float32", "seconds": {"a": 53.6, "b": 50.6, "c": 12.8},
                  "same_as_a_c": 48, "a_over_c": 4.1875, "b_over_c": 3.953}


def test_tables_rows_and_columns(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "scoring-1.json").write_text(json.dumps(SCORING))
    later = dict(SCORING, date="2025-04-01T09:00:00+00:00", speedup_fp32=4.5, source="README history")
    (results / "scoring-0.json").write_text(json.dumps(later))
    (results / "generation.json").write_text(json.dumps(OLD_GENERATION))
    (results / "broken.json").write_text("{not json")
    out = tmp_path / "RESULTS.md"

    assert _results_module().main(["--dir", str(results), "--out", str(out)]) == 0
    text = out.read_text()
    lines = text.splitlines()
    assert text.index("## Scoring") < text.index("## Generation")
    scoring = [line for line in lines if line.startswith("| 2025-")]
    # sorted by date, not by file name; the bf16 run left out shows as a dash
    assert scoring[0].startswith("| 2025-03-02 | Example CPU 9000, 2 cores (avx2 avx512f amx_bf16) | "
                                 "torch 2.4.0, transformers 4.50.0 | 5.25× | – | 420.0 | 80.0 | – | 1.8e-05 | – | 2.04 | 150 |")
    assert scoring[0].endswith("| scoring-1.json |")
    assert scoring[1].startswith("| 2025-04-01 |") and "| 4.50× |" in scoring[1]
    assert scoring[1].endswith("| scoring-0.json (README history) |")
    generation = next(line for line in lines if line.endswith("| generation.json |"))
    assert generation == ("| – | – | – | float32 | 48 | 53.6 | 50.6 | 12.8 | 4.19× | 3.95× | 48/48 | – | – | – "
                          "| generation.json |")
    assert "## Scoring per engine" not in text  # these runs recorded no per-method comparisons
    assert "## Unreadable files" in text and "broken.json" in text


def test_scoring_per_engine_rows(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    run = dict(SCORING, a={"seconds": 300.0, "generation_seconds": 40.0}, b={"seconds": 30.0},
               d={"seconds": 60.0, "generation_seconds": 10.0}, vllm_startup_seconds={"d": 23.0},
               compare={"b": {"labels_equal": 50, "labels": 50, "max_abs_dce": 2e-5, "spearman_pu": 1.0},
                        "d": {"labels_equal": 49, "labels": 50, "max_abs_dce": 3e-4, "spearman_pu": 0.9952}})
    (results / "scoring.json").write_text(json.dumps(run))
    out = tmp_path / "RESULTS.md"
    assert _results_module().main(["--dir", str(results), "--out", str(out)]) == 0
    text = out.read_text()
    rows = [line for line in text[text.index("## Scoring per engine"):].splitlines() if line.startswith("| 2025-")]
    assert [row.split(" | ")[3] for row in rows] == ["hf float32", "native float32", "vllm float32"]
    assert rows[2].endswith("| vllm float32 | 60.0 | 10.0 | 23.0 | 5.00× | 49/50 | 3.0e-04 | 0.9952 | scoring.json |")


def test_no_runs_yet(tmp_path):
    out = tmp_path / "RESULTS.md"
    _results_module().main(["--dir", str(tmp_path / "missing"), "--out", str(out)])
    assert "No runs recorded yet" in out.read_text() and "## Scoring" not in out.read_text()


def test_machine_info_reads_model_cores_and_isa_flags():
    cpuinfo = ("processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu sse avx2 fma avx512f avx512_bf16\n\n"
               "processor\t: 1\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu\n")
    info = machine_info(cpuinfo)
    assert info["cpu"] == "AMD EPYC 9R14" and info["isa"] == ["avx2", "fma", "avx512f", "avx512_bf16"]
    assert info["cores"] >= 1
    meta = run_info("scoring")
    assert meta["benchmark"] == "scoring" and meta["versions"]["torch"] and meta["date"][:2] == "20"


STREAM = {"benchmark": "stream", "date": "2025-05-01T08:00:00+00:00", "machine": MACHINE,
          "versions": {"python": "3.11.7", "torch": "2.4.0", "transformers": "4.50.0"},
          "records": 52000, "scored_pairs": 572000, "parts": 1131, "seconds": 3120.0, "seconds_per_1000_records": 60.0,
          "pairs_per_second": 183.3, "peak_rss_gb": 1.234, "engine": "native", "cpu_stall_seconds": 12.0}


def test_stream_table(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "stream.json").write_text(json.dumps(STREAM))
    out = tmp_path / "RESULTS.md"
    _results_module().main(["--dir", str(results), "--out", str(out)])
    text = out.read_text()
    assert "## Scoring a Self-Instruct-scale pool" in text
    row = next(line for line in text.splitlines() if line.endswith("| stream.json |"))
    assert row.endswith("| 52,000 | 572,000 | 1,131 | 3120.0 | 60.0 | 183 | 1.23 | native | 12 | stream.json |")
