"""Multi-process launches: sharding helpers, and a 2-process `activeit run` equal to one process's numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from activeit import distributed


def test_single_process_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert distributed.is_main() and distributed.world_size() == 1
    assert distributed.shard([1, 2, 3]) == [1, 2, 3] == distributed.gather([1, 2, 3])
    distributed.barrier()


@pytest.mark.parametrize("n", [0, 1, 5, 7, 9])
def test_shard_then_interleave_restores_the_order(monkeypatch, n):
    items = list(range(n))
    parts = []
    for r in range(3):
        monkeypatch.setenv("RANK", str(r))
        monkeypatch.setenv("WORLD_SIZE", "3")
        parts.append(distributed.shard(items))
    assert parts[1] == items[1::3]
    assert sorted(x for p in parts for x in p) == items
    assert distributed.interleave(parts) == items


def _launch_two(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "activeit", *argv], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_two_process_run_matches_one_process(tmp_path, tiny_causal_dir, tiny_yaml):
    """torchrun sets the same variables as `accelerate launch --num_processes 2` on GPUs."""
    from activeit.config import load_config
    from activeit.evaluate import build_items, predict
    from activeit.scores import score_tasks
    from activeit.tasks import TaskLibrary
    from activeit.models import load_trained

    config = tiny_yaml(tmp_path, tiny_causal_dir)
    run = tmp_path / "run"
    proc = _launch_two("run", str(config), "--out", str(run))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("round 0 · score") == 1  # progress from the main process only
    assert proc.stdout.count("# activeit run summary") == 1
    steps = json.loads((run / "manifest.json").read_text())["steps"]
    assert list(steps) == ["round_0/train", "round_0/evaluate", "round_0/score", "round_0/select",
                           "round_1/train", "round_1/evaluate"]

    # the sharded scoring and evaluation give what one process computes with the same round-0 model
    cfg = load_config(run / "config.yaml")
    library = TaskLibrary(cfg.data.path)
    lm = load_trained(run / "round_0", cfg)
    records = [json.loads(line) for line in (run / "round_0" / "scores" / "records.jsonl").read_text().splitlines()]
    names = list(dict.fromkeys(r["task"] for r in records))
    score_tasks(lm, library, names, cfg, tmp_path / "single", progress=False)
    single = [json.loads(line) for line in (tmp_path / "single" / "records.jsonl").read_text().splitlines()]
    key = ("task", "instance_id", "perturbation", "label")
    assert [[r[k] for k in key] for r in records] == [[r[k] for k in key] for r in single]
    assert max(abs(a["mean_ce"] - b["mean_ce"]) for a, b in zip(records, single)) < 1e-4
    predictions = [json.loads(line) for line in (run / "round_0" / "predictions.jsonl").read_text().splitlines()]
    again = []
    for split in ("dev", "test"):
        tasks = list(dict.fromkeys(p["task"] for p in predictions if p["split"] == split))
        again += predict(lm, build_items([library.load(n) for n in tasks], lm.tokenizer, cfg, causal=lm.causal,
                                         split=split), cfg, progress=False)
    assert [(p["task"], p["instance_id"], p["prediction"]) for p in predictions] == \
        [(p["task"], p["instance_id"], p["prediction"]) for p in again]

    # `activeit score` alone (no Trainer has set up the process group): the same scores as one process
    proc = _launch_two("score", str(config), "--out", str(tmp_path / "scored"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("top ") == 1
    base = load_trained(str(tiny_causal_dir), cfg)
    two = json.loads((tmp_path / "scored" / "tasks.json").read_text())["tasks"]
    one = score_tasks(base, library, list(two), cfg, tmp_path / "one", progress=False)
    assert max(abs(two[n]["prompt_uncertainty"] - one[n].prompt_uncertainty) for n in two) < 1e-4
