"""The round loop on a tiny random model: layout, resume, config changes, kill -9 at any point."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from activeit.config import load_config
from activeit.errors import RunStateError
from activeit.pipeline import run_experiment
from activeit.report import write_report
from activeit.rundir import Manifest, status_lines


def tiny_config(model_dir, ni_mini, **extra):
    data = {
        "seed": 1,
        "data": {"path": str(ni_mini), "split": "default"},
        "model": {"name": str(model_dir), "dtype": "float32"},
        "prompt": {"max_source_length": 256, "max_target_length": 16},
        "scoring": {"instances": 2, "perturbations": 2, "max_new_tokens": 4},
        "rounds": {"count": 3, "chunk": 2},
        "training": {"instances_per_task": 4, "epochs": 1, "per_device_batch_size": 4, "best_metric": None,
                     "warmup_steps": 0, "learning_rate": 1e-3},
        "evaluation": {"test_instances": 2, "dev_instances": 2, "max_new_tokens": 4},
        "experiment": {"strategies": ["high_prompt_uncertainty"], "seeds": [1]},
    }
    for key, value in extra.items():
        section, name = key.split("__")
        data.setdefault(section, {})[name] = value
    return data


def cfg_of(data):
    from activeit.config import config_from_dict

    return config_from_dict(json.loads(json.dumps(data)))


def quiet(line):
    pass


def test_two_strategies_share_round_zero(tmp_path, tiny_causal_dir, ni_mini):
    cfg = cfg_of(tiny_config(tiny_causal_dir, ni_mini, experiment__strategies=["high_prompt_uncertainty", "random"]))
    root = run_experiment(cfg, tmp_path / "run", progress=False, echo=quiet)
    write_report(root)
    rows = json.loads((root / "summary.json").read_text())["rounds"]
    assert len(rows) == 2 * 3
    by = {(r["strategy"], r["round"]): r for r in rows}
    assert by[("random", 0)]["test"] == by[("high_prompt_uncertainty", 0)]["test"]
    assert [by[("random", i)]["n_train_tasks"] for i in range(3)] == [2, 4, 6]
    shared = root / "seed_1" / "round_0"
    assert (shared / "scores" / "tasks.json").exists() and (shared / "metrics.json").exists()
    pu_pick = (root / "seed_1" / "high_prompt_uncertainty" / "round_0" / "picked.txt").read_text().split()
    scores = json.loads((shared / "scores" / "tasks.json").read_text())["tasks"]
    ranked = sorted(scores, key=lambda n: (-scores[n]["prompt_uncertainty"], n))
    assert pu_pick == ranked[:2]
    train1 = (root / "seed_1" / "high_prompt_uncertainty" / "round_1" / "train_tasks.txt").read_text().split()
    assert train1 == (shared / "train_tasks.txt").read_text().split() + pu_pick
    # random needs no scores after round 0
    assert not (root / "seed_1" / "random" / "round_1" / "scores").exists()
    report = root / "report"
    for name in ("learning_curves.png", "summary.md", "task_map_round_0_random_seed1.png",
                 "task_map_round_1_high_prompt_uncertainty_seed1.png"):
        assert (report / name).is_file(), name
    assert "| random | 2 | 6 | test |" in (report / "summary.md").read_text()
    assert status_lines(root)[-1] == "complete"
    assert run_experiment(cfg, root, progress=False, echo=quiet) == root
    assert json.loads((root / "summary.json").read_text())["rounds"] == rows


def test_changed_config_is_refused_then_forced(tmp_path, tiny_causal_dir, ni_mini):
    data = tiny_config(tiny_causal_dir, ni_mini, rounds__count=2)
    root = run_experiment(cfg_of(data), tmp_path / "run", progress=False, echo=quiet)
    changed = tiny_config(tiny_causal_dir, ni_mini, rounds__count=2, training__learning_rate=5e-3)
    with pytest.raises(RunStateError, match=r"round_0/train: training.learning_rate"):
        run_experiment(cfg_of(changed), root, progress=False, echo=quiet)
    # a change that only matters from round 1 on: strategy options of the round-0 pick
    later = tiny_config(tiny_causal_dir, ni_mini, rounds__count=2, strategy__cls_ratio=0.5)
    with pytest.raises(RunStateError, match=r"round_0/select: strategy.cls_ratio"):
        run_experiment(cfg_of(later), root, progress=False, echo=quiet)
    run_experiment(cfg_of(later), root, force_from_round=0, progress=False, echo=quiet)
    steps = Manifest(root).steps
    assert steps["round_0/select"]["inputs"]["strategy"]["cls_ratio"] == 0.5
    # more rounds extend a finished run without redoing anything
    longer = tiny_config(tiny_causal_dir, ni_mini, rounds__count=3, strategy__cls_ratio=0.5)
    before = dict(Manifest(root).steps)
    run_experiment(cfg_of(longer), root, progress=False, echo=quiet)
    after = Manifest(root).steps
    assert all(after[k]["finished"] == v["finished"] for k, v in before.items())
    assert "round_2/evaluate" in after and "round_1/select" in after


def test_replay_given_task_lists(tmp_path, tiny_causal_dir, ni_mini):
    from activeit.pool import initial_pool
    from activeit.tasks import TaskLibrary

    data = tiny_config(tiny_causal_dir, ni_mini, rounds__count=2, experiment__strategies=["Random"])
    pool = initial_pool(TaskLibrary(ni_mini), "default", 1, 2)
    lists = tmp_path / "lists"
    wanted = list(pool.train) + list(pool.remain[-2:])
    (lists / "Random_1").mkdir(parents=True)
    (lists / "Random_1" / "train_tasks.txt").write_text("\n".join(wanted) + "\n")
    root = run_experiment(cfg_of(data), tmp_path / "run", task_lists=lists, progress=False, echo=quiet)
    assert (root / "round_1" / "train_tasks.txt").read_text().split() == wanted
    assert not (root / "round_0" / "scores").exists()


def test_replay_reference_split_two_rounds(tmp_path, tiny_causal_dir, ni_reference):
    """The paper's TLAL_Exp0_all_10 replayed as the reference names it: round 1 trains on Random_1."""
    from conftest import REFERENCE_SPLITS

    split = REFERENCE_SPLITS / "TLAL_Exp0_all_10"
    data = tiny_config(tiny_causal_dir, ni_reference, rounds__count=2, rounds__chunk=None, experiment__strategies=["random"],
                       training__instances_per_task=1, evaluation__test_instances=1, evaluation__dev_instances=1,
                       evaluation__max_new_tokens=2)
    data["data"] = {"path": str(ni_reference), "split": str(split), "metadata": str(ni_reference / "task_metadata.json")}
    lines = []
    root = run_experiment(cfg_of(data), tmp_path / "run", task_lists=split, progress=False, echo=lines.append)
    assert f"replaying random from {split / 'Random'}_<0..1>" in lines
    expected = (split / "Random_1" / "train_tasks.txt").read_text().split()
    assert (root / "round_1" / "train_tasks.txt").read_text().split() == expected
    assert (root / "round_0" / "train_tasks.txt").read_text().split() == (split / "init" / "train_tasks.txt").read_text().split()
    metrics = json.loads((root / "round_1" / "metrics.json").read_text())
    assert metrics["test"]["n_tasks"] == 119 and metrics["dev"]["n_tasks"] == 68


def _summary(root):
    rows = json.loads((root / "summary.json").read_text())["rounds"]
    return [(r["round"], r["n_train_tasks"], r["picked"], r["test"]["rougeL"], r["dev"]["rougeL"]) for r in rows]


def test_kill_anywhere_and_resume_equals_straight_run(tmp_path, tiny_causal_dir, ni_mini):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tiny_causal_dir, ni_mini, training__per_device_batch_size=2,
                                                 training__eval_steps=None)))
    straight = tmp_path / "straight"
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "activeit", "run", str(config), "--out"]
    env = dict(os.environ)
    subprocess.run(cmd + [str(straight)], check=True, env=env, capture_output=True)
    crash_points = [
        "round_0/score:scored-*",               # while scoring: first task's records on disk, others not
        "round_1/train:train-step-2",           # in the middle of training
        "round_1/evaluate:write-metrics.json",  # while writing: temp file complete, not yet renamed
        "round_1/select:before-manifest",       # output in place, manifest not yet updated
        "round_2/train:write-train_result.json",
    ]
    for point in crash_points:
        proc = subprocess.run(cmd + [str(killed)], env=dict(env, ACTIVEIT_CRASH_AT=point), capture_output=True, text=True)
        assert proc.returncode == -9, (point, proc.returncode, proc.stderr[-2000:])
    proc = subprocess.run(cmd + [str(killed)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _summary(killed) == _summary(straight)
    assert not list(killed.rglob(".*.tmp"))
    assert load_config(killed / "config.yaml") == load_config(straight / "config.yaml")


def instruction_pool(path, n=30):
    words = ["red", "blue", "green", "cold", "warm", "fast", "slow", "big", "small", "new"]
    rows = [{"instruction": f"Say the word {words[i % 10]} {i // 10} times.", "input": "" if i % 3 else f"now {i}",
             "output": f"{words[i % 10]} {i}"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_pool_auto_split_growing_rounds(tmp_path, tiny_causal_dir):
    """The paper's Self-Instruct setting in small: one-instance tasks, an auto split, growing train sizes."""
    pool = instruction_pool(tmp_path / "pool.jsonl")
    data = tiny_config(tiny_causal_dir, pool, rounds__chunk=None, rounds__count=None, rounds__sizes=[4, 8, 12],
                       data__split="auto", data__held_out=3, experiment__strategies=["random", "high_prompt_uncertainty"],
                       scoring__redraw_identical=2, scoring__perturb_input=True, training__instances_per_task=1,
                       evaluation__max_new_tokens=2, scoring__max_new_tokens=2)
    root = run_experiment(cfg_of(data), tmp_path / "run", progress=False, echo=quiet)
    write_report(root)
    rows = json.loads((root / "summary.json").read_text())["rounds"]
    assert sorted((r["strategy"], r["round"], r["n_train_tasks"]) for r in rows) == sorted(
        (s, i, n) for s in ("random", "high_prompt_uncertainty") for i, n in enumerate([4, 8, 12]))
    for strategy in ("random", "high_prompt_uncertainty"):
        assert len((root / "seed_1" / strategy / "round_0" / "picked.txt").read_text().split()) == 4
        assert len((root / "seed_1" / strategy / "round_2" / "train_tasks.txt").read_text().split()) == 12
    metrics = json.loads((root / "seed_1" / "round_0" / "metrics.json").read_text())
    assert set(metrics) == {"test"} and metrics["test"]["n_tasks"] == 3
    scores = json.loads((root / "seed_1" / "round_0" / "scores" / "tasks.json").read_text())["tasks"]
    assert len(scores) == 30 - 4 - 3 and all(s["identical_perturbations"] is not None for s in scores.values())


def test_no_held_out_set_still_runs(tmp_path, tiny_causal_dir):
    pool = instruction_pool(tmp_path / "pool.jsonl", n=8)
    data = tiny_config(tiny_causal_dir, pool, rounds__chunk=None, rounds__count=None, rounds__sizes=[2, 3],
                       data__split="auto", experiment__strategies=["random"], training__instances_per_task=1,
                       evaluation__max_new_tokens=2)
    root = run_experiment(cfg_of(data), tmp_path / "run", progress=False, echo=quiet)
    write_report(root)
    assert json.loads((root / "round_1" / "metrics.json").read_text()) == {}
    assert len((root / "round_1" / "train_tasks.txt").read_text().split()) == 3
    assert (root / "report" / "summary.md").is_file()


def test_pool_too_small_for_the_rounds_is_refused_before_any_work(tmp_path, tiny_causal_dir, ni_mini):
    from activeit.errors import ConfigError

    pool = instruction_pool(tmp_path / "pool.jsonl", n=10)
    data = tiny_config(tiny_causal_dir, pool, rounds__chunk=None, rounds__count=None, rounds__sizes=[4, 8, 12],
                       data__split="auto", data__held_out=1)
    with pytest.raises(ConfigError, match=r"3 rounds pick 8 tasks after round 0 \(rounds.sizes\), but the remain pool "
                                          r"of seed 1 has 5"):
        run_experiment(cfg_of(data), tmp_path / "run", progress=False, echo=quiet)
    assert not (tmp_path / "run").exists()
    chunky = tiny_config(tiny_causal_dir, ni_mini, rounds__count=9)
    with pytest.raises(ConfigError, match=r"9 rounds pick 16 tasks .*rounds.count × rounds.chunk.* has 14"):
        run_experiment(cfg_of(chunky), tmp_path / "run", progress=False, echo=quiet)
    given = tiny_config(tiny_causal_dir, ni_mini, rounds__chunk=None, rounds__count=None, rounds__sizes=[3, 5])
    # a plain NI split draws sizes[0] initial train (and as many dev) tasks
    from activeit.pipeline import check_config

    assert "round-0 pool (seed 1), train tasks per round: 3 → 5:" in check_config(cfg_of(given))
    split = tmp_path / "split"
    split.mkdir()
    names = sorted(p.stem for p in (ni_mini / "tasks").glob("*.json"))
    for part, listed in (("train", names[:2]), ("dev", names[2:4]), ("test", names[4:6]), ("remain", names[6:])):
        (split / f"{part}_tasks.txt").write_text("".join(n + "\n" for n in listed))
    given["data"]["split"] = str(split)
    with pytest.raises(ConfigError, match=r"rounds.sizes\[0\] is 3 but the initial train list of split .* has 2 tasks"):
        check_config(cfg_of(given))
    given["rounds"]["initial"] = 3
    with pytest.raises(ConfigError, match=r"rounds.initial is 3 but the initial train list"):
        check_config(cfg_of(given))


def test_replay_lists_must_grow_by_each_rounds_pick(tmp_path):
    from activeit.pool import initial_pool
    from activeit.replay import plan_replay
    from activeit.tasks import TaskLibrary

    library = TaskLibrary(instruction_pool(tmp_path / "pool.jsonl", n=12))
    pool = initial_pool(library, "auto", seed=0, chunk=2)
    lists = tmp_path / "lists"
    grown = [list(pool.train), list(pool.train) + list(pool.remain[:2]), list(pool.train) + list(pool.remain[:5])]
    for i, names in enumerate(grown):
        (lists / f"random_{i}").mkdir(parents=True)
        (lists / f"random_{i}" / "train_tasks.txt").write_text("".join(n + "\n" for n in names))
    replay = plan_replay(lists, "random", 3, pool, [2, 3], library)
    assert replay.picked(1) == tuple(pool.remain[2:5])
    with pytest.raises(RunStateError, match=r"random_2/train_tasks.txt: round 2 must extend round 1's 4 tasks by 4 "
                                            r"\(rounds.chunk or rounds.sizes\), but it has 7 and adds 3 tasks"):
        plan_replay(lists, "random", 3, pool, [2, 4], library)


@pytest.mark.slow
def test_self_instruct_config_plans_the_papers_sizes_on_a_52k_pool(tmp_path):
    """configs/self_instruct.yaml on a Self-Instruct-sized pool: 1,000 → 16,000 tasks, judged against Random."""
    from activeit.bench import synthetic_instruction_pool
    from activeit.config import bundled_config
    from activeit.pipeline import check_config

    pool = synthetic_instruction_pool(tmp_path / "si.jsonl", 52_000)
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"instruction": "Write a haiku about rain."}\n')
    cfg = load_config(bundled_config("self_instruct"), [f"data.path={pool}",
                                                         f"evaluation.judge.questions={questions}"])
    lines = check_config(cfg)
    assert "train tasks per round: 1000 → 2000 → 4000 → 8000 → 16000" in "\n".join(lines)
    assert "train: 1000 tasks" in "\n".join(lines) and "remain: 51000 tasks" in "\n".join(lines)
    assert any(line.startswith("judge:") and "against random" in line for line in lines)


@pytest.mark.slow
def test_instructions_demo_runs_and_reports_wins_minus_losses(tmp_path, smollm2, capsys):
    """configs/instructions_demo.yaml through `activeit run`, scaled down: SmolLM2 as model and judge,
    an auto split of the bundled pool, growing sizes, every later round judged against Random."""
    from activeit.cli import main
    from activeit.config import bundled_config

    sets = ["rounds.sizes=[4,8]", "data.held_out=4", "scoring.perturbations=2", "training.epochs=1",
            "evaluation.judge.max_new_tokens=8"]
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as done:
        main(["run", str(bundled_config("instructions_demo")), "--out", str(out),
              *[a for s in sets for a in ("--set", s)]])
    assert (done.value.code or 0) == 0, capsys.readouterr().err
    judged = json.loads((out / "seed_1" / "high_prompt_uncertainty" / "round_1" / "judge" / "summary.json").read_text())
    assert judged["wins"] + judged["ties"] + judged["losses"] + judged.get("invalid", 0) == 12
    assert judged["wins_minus_losses"] == judged["wins"] - judged["losses"]
    summary = (out / "report" / "summary.md").read_text()
    assert "Judged against random" in summary
    assert (out / "report" / "judged.png").stat().st_size > 0
    records = [json.loads(line) for line in
               (out / "seed_1" / "round_0" / "scores" / "records.jsonl").read_text().splitlines()]
    assert {r["identical"] for r in records if r["perturbation"] > 0} <= {True, False}
