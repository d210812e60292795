"""CLI contract: commands exist, user errors are one line on stderr with exit code 2."""

import json
import subprocess
import sys

import pytest

from activeit.cli import main


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out = capsys.readouterr()
    return exit_info.value.code or 0, out.out, out.err


def test_tasks_list(capsys, ni_mini):
    code, out, _ = run(capsys, "tasks", "list", str(ni_mini))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "kind", "category", "instances"]
    row = next(line for line in lines if line.startswith("task1212_atomic_classification_hasproperty"))
    assert row.split()[1:2] == ["cls"] and row.split()[-1] == "13"
    assert lines[-1] == "25 tasks: 12 cls, 13 gen"


def test_tasks_validate_ok_and_bad(capsys, ni_mini, tmp_path):
    code, out, _ = run(capsys, "tasks", "validate", str(ni_mini))
    assert code == 0 and "ok" in out
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "task1_a.json").write_text("{")
    (tmp_path / "tasks" / "task2_b.json").write_text(json.dumps({"Definition": ["d"]}))
    code, _, err = run(capsys, "tasks", "validate", str(tmp_path))
    assert code == 2
    assert "task1_a.json: invalid JSON" in err and "task2_b.json: missing required field 'Instances'" in err
    assert "2 problem(s) found" in err


def test_prompt_command(capsys, ni_mini):
    code, out, _ = run(capsys, "prompt", str(ni_mini), "task363_sst2_polarity_classification", "--instance",
                       "task363-9597cc3adc5e44b681309f6ae3be7e62")
    assert code == 0
    assert "Input: A terrible movie that some people will n" in out and out.endswith("Output: \n")
    code, out, _ = run(capsys, "prompt", str(ni_mini), "task363_sst2_polarity_classification", "--causal")
    assert code == 0
    assert out.startswith("Definition: ") and out.endswith("Output:\n")


def test_prompt_unknown_instance_and_task(capsys, ni_mini):
    code, _, err = run(capsys, "prompt", str(ni_mini), "task363_sst2_polarity_classification", "--instance", "nope")
    assert code == 2 and "no instance with id 'nope'" in err
    code, _, err = run(capsys, "prompt", str(ni_mini), "../../etc/passwd")
    assert code == 2 and "invalid task name" in err


def test_validate_config(capsys, tmp_path, ni_mini):
    path = tmp_path / "c.yaml"
    path.write_text(f"data:\n  path: {ni_mini}\n  split: default\n")
    code, out, _ = run(capsys, "validate", str(path))
    assert code == 0 and "25 tasks" in out
    code, _, err = run(capsys, "validate", str(path), "--set", "scoring.perturbation=3")
    assert code == 2 and "unknown config key 'scoring.perturbation'" in err
    code, out, _ = run(capsys, "validate", str(path), "--set", "engine.name=hf")
    assert code == 0 and "engine: hf" in out
    code, _, err = run(capsys, "validate", str(path), "--set", "engine.name=turbo")
    assert code == 2 and "unknown engine 'turbo'" in err


def test_validate_reference_split(capsys, tmp_path, ni_reference):
    """The paper's own split files load: 68 / 68 / 119 / 620, kinds from the reference's metadata."""
    from conftest import REFERENCE_SPLITS

    from activeit.config import bundled_config

    path = bundled_config("ni_paper")
    given = ["--set", f"data.path={ni_reference}", "--set", f"data.split={REFERENCE_SPLITS / 'TLAL_Exp0_all_10'}",
             "--set", f"data.metadata={ni_reference / 'task_metadata.json'}"]
    code, out, err = run(capsys, "validate", str(path), *given, "--task-lists", str(REFERENCE_SPLITS / "TLAL_Exp0_all_10"))
    assert code == 0, err
    lines = out.splitlines()
    assert "train: 68 tasks (24 cls, 44 gen)" in lines
    assert "dev: 68 tasks (34 cls, 34 gen)" in lines
    assert any(line.startswith("test: 119 tasks (") for line in lines)
    assert any(line.startswith("remain: 620 tasks (") for line in lines)
    assert any(line.startswith("excluded: 738 tasks (") for line in lines)
    assert f"kinds: metadata file {ni_reference / 'task_metadata.json'}" in lines
    assert any(line.startswith("replay: high_prompt_uncertainty from ") and
               "FCGRatioPI-NL-I10-TDTE-High-0.2-Mean-abs-bald_<0..4>" in line for line in lines)
    assert any(line.startswith("replay: random from ") and line.endswith("Random_<0..4>") for line in lines)
    code, _, err = run(capsys, "validate", str(path), *given, "--set", "rounds.count=6",
                       "--task-lists", str(REFERENCE_SPLITS / "TLAL_Exp0_all_10"))
    assert code == 2 and "FCGRatioPI-NL-I10-TDTE-High-0.2-Mean-abs-bald_5/train_tasks.txt: round 5 must extend" in err


def test_split_command_writes_the_reference_layout(capsys, tmp_path, ni_reference):
    from conftest import REFERENCE_SPLITS

    out_dir = tmp_path / "TLAL_mine_10"
    code, out, err = run(capsys, "split", str(ni_reference), "--seed", "10", "--out", str(out_dir),
                         "--metadata", str(ni_reference / "task_metadata.json"))
    assert code == 0, err
    assert "train: 68 tasks (24 cls, 44 gen)" in out.splitlines()
    for name in ("train", "dev", "test", "remain", "excluded"):
        ours = (out_dir / "init" / f"{name}_tasks.txt").read_text().split()
        assert ours == (REFERENCE_SPLITS / "TLAL_Exp0_all_10" / "init" / f"{name}_tasks.txt").read_text().split(), name
    code, _, err = run(capsys, "split", str(ni_reference), "--seed", "20", "--out", str(out_dir))
    assert code == 2 and "already holds a split" in err
    code, out, _ = run(capsys, "split", str(ni_reference), "--seed", "20", "--out", str(tmp_path / "other"),
                       "--metadata", str(ni_reference / "task_metadata.json"))
    assert code == 0
    other = (tmp_path / "other" / "init" / "train_tasks.txt").read_text().split()
    assert len(other) == 68 and other != (out_dir / "init" / "train_tasks.txt").read_text().split()


def _jsonl_pool(path, reverse=False):
    rows = [{"instruction": f"Say the word {i}.", "input": "", "output": f"w{i}"} for i in range(20)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in (rows[::-1] if reverse else rows)))
    return path


def test_split_command_auto_draw_replays_as_the_config_draw(capsys, tmp_path):
    from activeit.config import load_config
    from activeit.pool import config_pool, initial_pool
    from activeit.tasks import TaskLibrary

    data = _jsonl_pool(tmp_path / "a" / "pool.jsonl")
    code, out, err = run(capsys, "split", str(data), "--out", str(tmp_path / "s"), "--seed", "7", "--initial", "4",
                         "--held-out", "3", "--dev", "2")
    assert code == 0, err
    assert "train: 4 tasks (" in out and "test: 3 tasks (" in out and "remain: 11 tasks (" in out
    lib = TaskLibrary(data)
    drawn = initial_pool(lib, "auto", seed=7, chunk=4, held_out=3, dev=2)
    assert initial_pool(lib, tmp_path / "s", seed=0) == drawn
    # the same records in another order: same names, same draw, same files
    shuffled = _jsonl_pool(tmp_path / "b" / "pool.jsonl", reverse=True)
    code, _, err = run(capsys, "split", str(shuffled), "--out", str(tmp_path / "s2"), "--seed", "7", "--initial", "4",
                       "--held-out", "3", "--dev", "2")
    assert code == 0, err
    for name in ("train", "dev", "test", "remain"):
        assert (tmp_path / "s" / "init" / f"{name}_tasks.txt").read_text() == \
            (tmp_path / "s2" / "init" / f"{name}_tasks.txt").read_text()
    # sizes and seed from a run config
    config = tmp_path / "c.yaml"
    config.write_text(f"seed: 3\ndata:\n  path: {data}\n  split: auto\n  held_out: 2\nrounds:\n  sizes: [5, 8]\n")
    code, _, err = run(capsys, "split", "--config", str(config), "--out", str(tmp_path / "s3"))
    assert code == 0, err
    cfg = load_config(config)
    assert initial_pool(lib, tmp_path / "s3", seed=0) == config_pool(lib, cfg)
    code, out, err = run(capsys, "validate", str(config), "--set", f"data.split={tmp_path / 's3'}", "--set", "data.held_out=0")
    assert code == 0 and "train tasks per round: 5 → 8" in out, err
    code, _, err = run(capsys, "split", str(data), "--out", str(tmp_path / "s4"))
    assert code == 2 and "needs --initial N" in err
    code, _, err = run(capsys, "validate", str(config), "--set", "data.split=default", "--set", "data.held_out=0")
    assert code == 2 and "use data.split: auto" in err


def test_validate_auto_split(capsys, tmp_path):
    data = _jsonl_pool(tmp_path / "pool.jsonl")
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  path: {data}\n  split: auto\n  held_out: 4\nrounds:\n  sizes: [2, 4, 8]\n")
    code, out, err = run(capsys, "validate", str(config))
    assert code == 0, err
    lines = out.splitlines()
    assert "split: auto (drawn from all tasks with the seed)" in lines
    assert "round-0 pool (seed 42), train tasks per round: 2 → 4 → 8:" in lines
    assert any(line.startswith("test: 4 tasks") for line in lines) and any(line.startswith("remain: 14 tasks") for line in lines)
    code, _, err = run(capsys, "validate", str(config), "--set", "rounds.sizes=[2, 4, 18]")
    assert code == 2 and "3 rounds pick 16 tasks after round 0 (rounds.sizes), but the remain pool of seed 42 has 14" in err


def test_errors_have_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "activeit", "tasks", "list", str(tmp_path / "missing")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help_lists_contract_commands():
    proc = subprocess.run([sys.executable, "-m", "activeit", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    listed = set(proc.stdout.replace("│", " ").split())
    for command in ("tasks", "prompt", "validate", "score", "select", "train", "evaluate", "metrics", "run", "status",
                    "report", "demo", "bench", "judge", "split"):
        assert command in listed, command


def test_score_select_taskmap(capsys, tmp_path, tiny_causal_dir, tiny_yaml):
    config = tiny_yaml(tmp_path, tiny_causal_dir)
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("demo001_review_sentiment\ndemo020_addition\ndemo026_antonym\n")
    code, out, _ = run(capsys, "score", str(config), "--out", str(tmp_path / "s"), "--tasks", str(tasks))
    assert code == 0 and "top 3 tasks by prompt uncertainty" in out
    table = json.loads((tmp_path / "s" / "tasks.json").read_text())["tasks"]
    assert set(table) == {"demo001_review_sentiment", "demo020_addition", "demo026_antonym"}
    code, out, _ = run(capsys, "select", str(config), "--scores", str(tmp_path / "s" / "tasks.json"),
                       "--out", str(tmp_path / "picked.txt"))
    ranked = sorted(table, key=lambda n: (-table[n]["prompt_uncertainty"], n))
    assert code == 0 and out.split() == ranked[:2] == (tmp_path / "picked.txt").read_text().split()
    code, _, err = run(capsys, "select", str(config), "--scores", str(tmp_path / "s" / "tasks.json"),
                       "--set", "strategy.name=high_perplexty")
    assert code == 2 and "did you mean 'high_perplexity'" in err
    code, out, _ = run(capsys, "taskmap", str(tmp_path / "s" / "tasks.json"), "-o", str(tmp_path / "map.png"))
    assert code == 0 and (tmp_path / "map.png").stat().st_size > 10_000
    code, _, err = run(capsys, "taskmap", str(tmp_path / "nope.json"))
    assert code == 2 and "scores file not found" in err


def test_score_a_jsonl_pool_warns_about_identical_prompts(capsys, tmp_path, tiny_causal_dir, tiny_yaml):
    data = _jsonl_pool(tmp_path / "pool.jsonl")
    config = tiny_yaml(tmp_path, tiny_causal_dir, data={"path": str(data), "split": "auto", "held_out": 2},
                       rounds={"sizes": [2, 4]})
    code, out, err = run(capsys, "score", str(config), "--out", str(tmp_path / "s"), "--set", "scoring.drop_rate=0")
    assert code == 0, err
    table = json.loads((tmp_path / "s" / "tasks.json").read_text())["tasks"]
    assert len(table) == 20 - 2 - 2 and all(t["identical_perturbations"] == 2 for t in table.values())
    assert "warning: 32 of 32 perturbed prompts (100%, in 16 of 16 tasks) are identical to the original prompt" in err
    code, _, err = run(capsys, "score", str(config), "--out", str(tmp_path / "s2"), "--set", "scoring.drop_rate=0.9")
    assert code == 0 and "identical" not in err


def test_run_status_report(capsys, tmp_path, tiny_causal_dir, tiny_yaml):
    config = tiny_yaml(tmp_path, tiny_causal_dir, experiment={"strategies": ["random"], "seeds": [3]})
    code, out, _ = run(capsys, "run", str(config), "--out", str(tmp_path / "r"))
    assert code == 0 and "| random | 1 | 6 | test |" in out
    code, out, _ = run(capsys, "status", str(tmp_path / "r"))
    assert code == 0 and out.strip().endswith("complete")
    code, out, _ = run(capsys, "report", str(tmp_path / "r"))
    assert code == 0 and (tmp_path / "r" / "report" / "learning_curves.png").exists()
    code, _, err = run(capsys, "status", str(tmp_path))
    assert code == 2 and "not a run directory" in err
    code, _, err = run(capsys, "run", str(config), "--out", str(tmp_path / "r"), "--set", "seed=4",
                       "--set", "experiment.seeds=null")
    assert code == 2 and "round_0/train: seed" in err and "--force-from-round" in err


def test_select_by_hand_equals_the_pipelines_round_zero_pick(capsys, tmp_path, tiny_causal_dir, tiny_yaml):
    config = tiny_yaml(tmp_path, tiny_causal_dir, experiment={"strategies": ["random"], "seeds": [3]},
                       scoring={"instances": 2, "perturbations": 2, "max_new_tokens": 3, "compute": ["perplexity"]})
    code, _, _ = run(capsys, "run", str(config), "--out", str(tmp_path / "r"), "--set", "rounds.count=2")
    assert code == 0
    code, out, _ = run(capsys, "select", str(config), "--scores", str(tmp_path / "r" / "round_0" / "scores" / "tasks.json"),
                       "--set", "strategy.name=random")
    assert code == 0 and out.split() == (tmp_path / "r" / "round_0" / "picked.txt").read_text().split()


def test_judge(capsys, tmp_path, tiny_causal_dir, other_causal_dir):
    import yaml

    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"id": f"q{i}", "instruction": text}) + "\n" for i, text in enumerate(
        ["Write a greeting.", "Add the numbers 1 2 3.", "Reverse the word fox."])))
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"model": {"dtype": "float32"}, "prompt": {"stop_strings": []}}))
    code, out, _ = run(capsys, "judge", "--a", str(tiny_causal_dir), "--b", str(other_causal_dir), "--questions",
                       str(questions), "--judge", str(tiny_causal_dir), "--config", str(config), "--max-new-tokens", "4",
                       "--out", str(tmp_path / "o"))
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert code == 0
    assert f"A {summary['wins']} wins, {summary['ties']} ties, {summary['losses']} losses of 3" in out
    assert len((tmp_path / "o" / "answers_b.jsonl").read_text().splitlines()) == 3
    code, _, err = run(capsys, "judge", "--a", "x", "--b", "y", "--questions", str(tmp_path / "absent.jsonl"),
                       "--out", str(tmp_path / "p"))
    assert code == 2 and err.startswith("error: ") and "absent.jsonl" in err and "Traceback" not in err
