"""The bundled demo pool: shape, cls/gen mix, splits, and byte-identical regeneration."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "src" / "activeit" / "data" / "demo"
SCRIPT = ROOT / "scripts" / "make_demo_pool.py"
NI_KEYS = ["Contributors", "Source", "URL", "Categories", "Reasoning", "Definition",
           "Input_language", "Output_language", "Instruction_language", "Domains",
           "Positive Examples", "Negative Examples", "Instances"]
POOL_SPLITS = ("train", "dev", "test", "remain", "excluded")


def infer_kind(task: dict) -> str:
    """DESIGN.md section 1: cls iff <= 10 distinct first outputs, each named in the definition."""
    labels = {inst["output"][0] for inst in task["Instances"]}
    definition = task["Definition"][0].lower()
    if len(labels) <= 10 and all(label.lower() in definition for label in labels):
        return "cls"
    return "gen"


def load_tasks() -> dict[str, dict]:
    files = sorted((DEMO / "tasks").glob("*.json"))
    return {f.stem: json.loads(f.read_text(encoding="utf-8")) for f in files}


def generated_files(root: Path) -> list[Path]:
    """Everything the generator writes (a package __init__.py next to it is not its business)."""
    files = [root / "README.md", *(root / "tasks").rglob("*"), *(root / "splits").rglob("*")]
    return [f for f in files if f.is_file()]


def read_split(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tasks() -> dict[str, dict]:
    return load_tasks()


def test_pool_size_categories_and_kinds(tasks):
    assert 35 <= len(tasks) <= 45
    assert len({t["Categories"][0] for t in tasks.values()}) >= 10
    kinds = [infer_kind(t) for t in tasks.values()]
    assert 12 <= kinds.count("cls") <= 24, kinds.count("cls")
    assert 12 <= kinds.count("gen") <= 28, kinds.count("gen")


def test_task_files_follow_ni_format(tasks):
    for name, task in tasks.items():
        assert list(task) == NI_KEYS, name
        assert len(task["Definition"]) == 1 and len(task["Categories"]) == 1, name
        assert len(task["Positive Examples"]) == 3 and len(task["Negative Examples"]) == 1, name
        for example in task["Positive Examples"] + task["Negative Examples"]:
            assert set(example) == {"input", "output", "explanation"}, name
            assert all(isinstance(v, str) and v for v in example.values()), name


def test_instances(tasks):
    all_ids = []
    for name, task in tasks.items():
        instances = task["Instances"]
        assert 30 <= len(instances) <= 60, name
        for inst in instances:
            assert set(inst) == {"id", "input", "output"}, name
            assert inst["id"].startswith(f"{name}-")
            assert 0 < len(inst["input"]) < 200, inst
            assert inst["output"] and all(o.strip() for o in inst["output"]), inst
        inputs = [i["input"] for i in instances]
        examples = [e["input"] for e in task["Positive Examples"] + task["Negative Examples"]]
        assert len(set(inputs)) == len(inputs), f"{name}: repeated instance input"
        assert not set(examples) & set(inputs), f"{name}: an example repeats an instance"
        all_ids += [i["id"] for i in instances]
    assert len(set(all_ids)) == len(all_ids)


def test_cls_examples_use_the_label_set(tasks):
    for name, task in tasks.items():
        if infer_kind(task) == "cls":
            labels = {i["output"][0] for i in task["Instances"]}
            assert {e["output"] for e in task["Positive Examples"]} <= labels, name
            negative = task["Negative Examples"][0]["output"]
            assert negative in labels, name


def test_reference_split_is_disjoint_and_complete(tasks):
    split_dir = DEMO / "splits" / "demo" / "init"
    splits = {s: read_split(split_dir / f"{s}_tasks.txt") for s in POOL_SPLITS}
    members = [name for names in splits.values() for name in names]
    assert len(members) == len(set(members)), "splits overlap"
    assert set(members) == set(tasks)
    assert splits["excluded"] == []
    for split, size in (("train", 4), ("dev", 4), ("test", 8)):
        assert len(splits[split]) == size, split
    for split in ("train", "dev"):
        kinds = sorted(infer_kind(tasks[name]) for name in splits[split])
        assert kinds == ["cls", "cls", "gen", "gen"], split


def test_default_split_is_disjoint_and_names_tasks(tasks):
    train = read_split(DEMO / "splits" / "default" / "train_tasks.txt")
    test = read_split(DEMO / "splits" / "default" / "test_tasks.txt")
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(tasks)
    assert len(train) == len(set(train)) and len(test) == len(set(test))


def test_regeneration_is_byte_identical(tmp_path):
    out = tmp_path / "demo"
    # a stale task file must be removed by the generator
    (out / "tasks").mkdir(parents=True)
    (out / "tasks" / "stale_task.json").write_text("{}", encoding="utf-8")
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], check=True,
                   capture_output=True)
    committed, regenerated = (sorted(p.relative_to(root) for p in generated_files(root))
                              for root in (DEMO, out))
    assert regenerated == committed
    for rel in committed:
        assert (out / rel).read_bytes() == (DEMO / rel).read_bytes(), rel
