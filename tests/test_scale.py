"""Self-Instruct scale (52K one-instance tasks): what a run keeps about its pool stays small."""

from __future__ import annotations

import json

from activeit.rundir import Manifest, changed_keys, compact_inputs, input_hash


def _inputs(remain):
    return {"round": 1, "scoring": {"perturbations": 10}, "train": ["a", "b"], "remain": remain}


def test_manifest_keeps_long_lists_as_length_and_digest(tmp_path):
    remain = [f"self_instruct-{i:05d}" for i in range(52_000)]
    inputs = _inputs(remain)
    manifest = Manifest(tmp_path)
    for step in range(30):
        manifest.finish(f"round_{step}/score", input_hash(inputs), inputs, ["scores/tasks.json"], 1.0)
    size = (tmp_path / "manifest.json").stat().st_size
    assert size < 30 * 1_000  # the full lists: ~30 × 1.3 MB
    stored = Manifest(tmp_path).entry("round_0/score")["inputs"]
    assert stored["train"] == ["a", "b"] and stored["scoring"] == {"perturbations": 10}
    assert stored["remain"] == f"<52000 items, sha256 {input_hash(remain)}>"
    # a resumed run compares its full inputs with the stored ones: same list, no change; another, named
    assert changed_keys(stored, inputs) == []
    other = remain[:-1] + ["self_instruct-x"]
    assert changed_keys(stored, _inputs(other)) == ["remain"]
    assert changed_keys(stored, dict(_inputs(remain), round=2)) == ["round"]
    assert changed_keys(_inputs(["a"] * 70), _inputs(["a"] * 70)) == []
    assert compact_inputs({"x": [1] * 64}) == {"x": [1] * 64}
    assert json.loads(json.dumps(compact_inputs(inputs))) == stored
