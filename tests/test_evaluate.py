"""Evaluation: instance choice, prediction files, recomputed metrics, stop strings, CLI."""

import json

import pytest

from activeit import evaluate as ev
from activeit.cli import main
from activeit.config import load_config
from activeit.metrics import metrics_from_file
from activeit.models import load_model
from activeit.tasks import TaskLibrary
from test_training import SPLIT, TASKS, write_pool


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    return write_pool(tmp_path_factory.mktemp("pool"))


def make_config(model_dir, data, *overrides):
    return load_config(None, [
        f"model.name={model_dir}", "model.dtype=float32", "model.device=cpu", f"data.path={data}", "data.split=tiny",
        "prompt.max_source_length=256", "evaluation.max_new_tokens=6", "evaluation.dev_instances=2",
        "evaluation.test_instances=3", "evaluation.batch_size=2", *overrides])


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out = capsys.readouterr()
    return exit_info.value.code or 0, out.out, out.err


def test_eval_instances_are_the_first_in_file_order(pool, tiny_causal_dir):
    lib = TaskLibrary(pool)
    task = lib.load("task001_sentiment")
    assert [i.id for i in ev.eval_instances(task, 3)] == [f"task001_sentiment-{i}" for i in range(3)]
    assert len(ev.eval_instances(task, 100)) == len(TASKS["task001_sentiment"][2])
    cfg = make_config(tiny_causal_dir, pool)
    tok = load_model(str(tiny_causal_dir), dtype="float32", device="cpu").tokenizer
    tasks = [lib.load(n) for n in TASKS]
    # reported dev metrics: the first test_instances (3), as the test tasks
    assert len(ev.build_items(tasks, tok, cfg, causal=True, split="dev")) == 4 * 3
    # checkpoint selection: dev_instances (2) per task
    assert len(ev.build_items(tasks, tok, cfg, causal=True, split="dev", selection=True)) == 4 * 2
    test_items = ev.build_items(tasks, tok, cfg, causal=True, split="test")
    assert len(test_items) == 4 * 3 and all(it.split == "test" for it in test_items)
    assert all(it.prompt.endswith("Output:") for it in test_items)  # causal: no trailing space
    assert test_items[0].references == ("positive",) and test_items[0].kind == "cls"
    seq_items = ev.build_items(tasks[:1], tok, cfg, causal=False, split="test")
    assert seq_items[0].prompt.endswith("Output: ")


def test_dev_report_first_100_and_selection_seeded_random_50():
    """Reference: dev tasks are in test_tasks.txt (first 100 each, reported); the validation set that picks
    the checkpoint is a seeded shuffle of each dev task's instances, 50 of them (ni_dataset, run_s2s)."""
    from activeit.tasks import Instance, Task

    task = Task(name="task9_dev", definition="d", positive_examples=[], negative_examples=[], categories=["C"],
                instances=[Instance(f"i{n}", f"x{n}", ("y",)) for n in range(300)], kind="cls")
    cfg = load_config(None)
    assert (cfg.evaluation.test_instances, cfg.evaluation.dev_instances, cfg.evaluation.dev_selection) == (100, 50, "random")
    assert [i.id for i in ev.report_instances(task, cfg, "dev")] == [f"i{n}" for n in range(100)]
    assert [i.id for i in ev.report_instances(task, cfg, "test")] == [f"i{n}" for n in range(100)]
    picked = ev.selection_instances(task, 50, cfg.seed)
    assert len({i.id for i in picked}) == 50 and picked != task.instances[:50]
    assert picked == ev.selection_instances(task, 50, cfg.seed)  # seeded
    assert picked != ev.selection_instances(task, 50, cfg.seed + 1)
    assert ev.selection_instances(task, 50, cfg.seed, "first") == task.instances[:50]
    # activeit's earlier rule: the first 50 for both
    old = load_config(None, ["evaluation.dev_report_instances=50", "evaluation.dev_selection=first"])
    assert ev.report_instances(task, old, "dev") == task.instances[:50]
    assert ev.selection_instances(task, 50, old.seed, old.evaluation.dev_selection) == task.instances[:50]


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_evaluate_writes_predictions_and_metrics(kind, pool, tiny_causal_dir, tiny_seq2seq_dir, tmp_path):
    model_dir = tiny_causal_dir if kind == "causal" else tiny_seq2seq_dir
    cfg = make_config(model_dir, pool)
    lm = load_model(str(model_dir), dtype="float32", device="cpu")
    lib = TaskLibrary(pool)
    tasks = [lib.load(n) for n in SPLIT["train"] + SPLIT["test"]]
    metrics = ev.evaluate(lm, tasks, cfg, split="test", out_dir=tmp_path, progress=False)
    records = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 3 * 3 and metrics["n"] == 9 and metrics["n_tasks"] == 3
    assert [r["instance_id"] for r in records[:3]] == [f"task002_capital-{i}" for i in range(3)]
    assert set(records[0]) == {"task", "instance_id", "prompt", "prediction", "references", "category", "kind", "split"}
    assert all(r["prediction"] == r["prediction"].strip() for r in records)
    if kind == "causal":
        assert all("\n" not in r["prediction"] for r in records)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == metrics == metrics_from_file(tmp_path / "predictions.jsonl")
    assert set(saved["by_task"]) == {"task002_capital", "task003_yesno", "task004_count"}
    assert saved["split"] == "test" and {"exact_match", "rougeL", "rouge1", "by_category", "by_kind"} <= set(saved)
    # greedy decoding is deterministic
    assert ev.evaluate(lm, tasks, cfg, split="test", progress=False) == metrics


def test_predictions_are_the_engines_greedy_texts(pool, tiny_causal_dir):
    from activeit.engine import get_engine

    cfg = make_config(tiny_causal_dir, pool)
    lm = load_model(str(tiny_causal_dir), dtype="float32", device="cpu")
    items = ev.build_items([TaskLibrary(pool).load(n) for n in TASKS], lm.tokenizer, cfg, causal=True, split="test")
    rows = ev.predict(lm, items, cfg, progress=False)
    expected = get_engine("hf", lm).generate([it.prompt for it in items], max_new_tokens=6, stop_strings=("\n",),
                                             batch_size=1)
    assert [r["prediction"] for r in rows] == [g.text for g in expected]


# --------------------------------------------------------------------------- CLI


def write_config(tmp_path, pool):
    config = tmp_path / "config.yaml"
    config.write_text(f"data:\n  path: {pool}\n  split: tiny\nevaluation:\n  test_instances: 2\n  dev_instances: 1\n"
                      "  max_new_tokens: 4\nprompt:\n  max_source_length: 128\n")
    return config


def test_cli_evaluate_and_metrics(pool, tiny_causal_dir, tmp_path, capsys):
    config = write_config(tmp_path, pool)
    code, out, err = run(capsys, "evaluate", str(config), "--model", str(tiny_causal_dir), "--split", "test",
                         "--set", "model.dtype=float32", "--out", str(tmp_path / "eval"))
    assert code == 0, err
    assert "test: 2 instances of 1 tasks" in out
    predictions = tmp_path / "eval" / "predictions.jsonl"
    assert len(predictions.read_text().splitlines()) == 2

    code, out, _ = run(capsys, "metrics", str(predictions), "--json")
    assert code == 0 and len(out.strip().splitlines()) == 1
    metrics = json.loads(out)
    assert metrics == json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert {"exact_match", "rougeL", "rouge1", "by_task", "by_category", "by_kind"} <= set(metrics)
    assert list(metrics["by_task"]) == SPLIT["test"] and list(metrics["by_kind"]) == ["cls"]

    code, out, _ = run(capsys, "metrics", str(predictions))
    assert code == 0 and out.splitlines()[0].split() == ["group", "n", "exact_match", "rouge1", "rougeL"]

    tasks = tmp_path / "tasks.txt"
    tasks.write_text("task001_sentiment\ntask004_count\n")
    code, out, err = run(capsys, "evaluate", str(config), "--model", str(tiny_causal_dir), "--split", "dev",
                         "--tasks", str(tasks), "--set", "model.dtype=float32", "--out", str(tmp_path / "dev"))
    assert code == 0, err
    # reported dev metrics: the first test_instances of each dev task
    assert json.loads((tmp_path / "dev" / "metrics.json").read_text())["n"] == 2 * 2


def test_cli_evaluate_a_trained_adapter(pool, tiny_causal_dir, tmp_path, capsys):
    from activeit.training import train

    cfg = load_config(None, [f"model.name={tiny_causal_dir}", "model.dtype=float32", f"data.path={pool}",
                             "data.split=tiny", "training.epochs=1", "training.lora.enabled=true",
                             "training.best_metric=null", "training.bf16=false", "prompt.max_source_length=128"])
    train(cfg, SPLIT["train"], tmp_path / "run")
    config = write_config(tmp_path, pool)
    code, out, err = run(capsys, "evaluate", str(config), "--model", str(tmp_path / "run"), "--split", "dev",
                         "--set", f"model.name={tiny_causal_dir}", "--set", "model.dtype=float32",
                         "--out", str(tmp_path / "eval"))
    assert code == 0, err and "dev: 1 instances of 1 tasks" in out


def test_cli_user_errors_exit_2(pool, tiny_causal_dir, tmp_path, capsys):
    config = write_config(tmp_path, pool)
    code, _, err = run(capsys, "evaluate", str(config), "--model", str(tiny_causal_dir), "--split", "train",
                       "--out", str(tmp_path / "x"))
    assert code == 2 and "split must be one of dev, test" in err
    code, _, err = run(capsys, "evaluate", str(config), "--model", str(tmp_path), "--split", "test",
                       "--out", str(tmp_path / "x"))
    assert code == 2 and "no trained model here" in err
    code, _, err = run(capsys, "metrics", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "predictions file not found" in err and "Traceback" not in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task": "t", "prediction": "x"}\n')
    code, _, err = run(capsys, "metrics", str(bad), "--json")
    assert code == 2 and "'references'" in err


@pytest.mark.slow
def test_smollm2_predictions_on_ni_mini(smollm2, ni_mini, tmp_path):
    cfg = load_config(None, [f"data.path={ni_mini}", "evaluation.max_new_tokens=16", "evaluation.test_instances=2"])
    lib = TaskLibrary(ni_mini)
    tasks = [lib.load("task1344_glue_entailment_classification"), lib.load("task363_sst2_polarity_classification")]
    metrics = ev.evaluate(smollm2, tasks, cfg, split="test", out_dir=tmp_path, progress=False)
    records = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all("\n" not in r["prediction"] for r in records)
    assert sum(bool(r["prediction"]) for r in records) >= 2  # short answers, not garbage after "Output:"
    assert metrics == metrics_from_file(tmp_path / "predictions.jsonl")
