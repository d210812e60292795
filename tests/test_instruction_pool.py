"""The bundled instruction pool: Self-Instruct-style records, held-out questions, byte-identical regeneration."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from activeit.judge import read_questions
from activeit.tasks import TaskLibrary, read_records

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "src" / "activeit" / "data" / "instructions"
SCRIPT = ROOT / "scripts" / "make_instruction_pool.py"


def test_records_are_one_task_each_and_distinct():
    records = read_records(POOL / "pool.jsonl")
    assert 200 <= len(records) <= 500
    assert all(set(r) == {"instruction", "input", "output", "category"} for r in records)
    assert len({(r["instruction"], r["input"]) for r in records}) == len(records)
    library = TaskLibrary("bundled:instructions/pool.jsonl")
    assert len(library) == len(records)
    assert all(len(library.load(n).instances) == 1 for n in library.names())


def test_pool_has_terse_and_inline_instructions():
    """Terse instructions are what makes identical perturbations common (issue: PU for one-instance tasks)."""
    records = read_records(POOL / "pool.jsonl")
    terse = [r for r in records if len(r["instruction"].split()) <= 4]
    inline = [r for r in records if not r["input"]]
    assert len(terse) >= len(records) // 5
    assert len(inline) >= len(records) // 5


def test_questions_are_held_out():
    questions = read_questions(POOL / "questions.jsonl")
    assert len(questions) >= 10
    asked = {(r["instruction"].strip(), r["input"].strip()) for r in read_records(POOL / "pool.jsonl")}
    assert not [q for q in questions if (q.instruction, q.input) in asked]
    references = [json.loads(line)["reference"] for line in (POOL / "questions.jsonl").read_text().splitlines()]
    assert all(references)


def test_regeneration_is_byte_identical(tmp_path):
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], check=True, capture_output=True)
    for name in ("pool.jsonl", "questions.jsonl", "README.md"):
        assert (tmp_path / name).read_bytes() == (POOL / name).read_bytes(), name
