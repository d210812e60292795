"""Judging wired into runs (`evaluation.judge`): answer and judge steps, summary, kill and resume."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from test_pipeline import cfg_of, quiet, tiny_config

from activeit import judge as J
from activeit.config import load_config
from activeit.errors import ConfigError, TaskFormatError
from activeit.pipeline import _count_steps, check_config, run_experiment
from activeit.report import write_report
from activeit.rundir import JUDGE_KEYS, Manifest, status_lines

QUESTIONS = [
    {"id": "greet", "instruction": "Write a greeting."},
    {"id": "sent", "instruction": "Classify the sentiment.", "input": "The movie was great."},
    {"id": "rev", "instruction": "Reverse the word.", "input": "fox"},
]


def judged_config(model_dir, ni_mini, questions, **extra):
    data = tiny_config(model_dir, ni_mini, **{"rounds__count": 2, "experiment__strategies": ["random_cls", "random"],
                                              **extra})
    data["evaluation"]["judge"] = {"questions": str(questions), "judge": str(model_dir), "against": "random",
                                   "max_new_tokens": 4}
    return data


@pytest.fixture
def questions(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return path


def _read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_judged_run_two_seeds(tmp_path, tiny_causal_dir, ni_mini, questions, monkeypatch):
    cfg = cfg_of(judged_config(tiny_causal_dir, ni_mini, questions, experiment__seeds=[1, 2]))
    loads = []
    real = J.make_judge
    monkeypatch.setattr(J, "make_judge", lambda *a, **k: loads.append(a) or real(*a, **k))
    root = run_experiment(cfg, tmp_path / "run", progress=False, echo=quiet)
    assert len(Manifest(root).steps) == _count_steps(cfg, False)
    summaries = {}
    for seed in (1, 2):
        mine, base = root / f"seed_{seed}" / "random_cls" / "round_1", root / f"seed_{seed}" / "random" / "round_1"
        assert not (root / f"seed_{seed}" / "round_0" / "answers.jsonl").exists()  # round 0 is shared: not judged
        assert not (base / "judge").exists()
        verdicts = _read_jsonl(mine / "judge" / "verdicts.jsonl")
        assert [v["answer_a"] for v in verdicts] == [r["answer"] for r in _read_jsonl(mine / "answers.jsonl")]
        assert [v["answer_b"] for v in verdicts] == [r["answer"] for r in _read_jsonl(base / "answers.jsonl")]
        summaries[seed] = json.loads((mine / "judge" / "summary.json").read_text())
        assert summaries[seed] == {**J.summarize(verdicts), "strategy": "random_cls", "against": "random", "seed": seed,
                                   "round": 1, "judge": str(tiny_causal_dir), "rule": "both_orders",
                                   "questions": str(questions)}
        assert summaries[seed]["n"] == 3
    assert len(loads) == 1  # some answers differ, so the judge was asked; loaded once for both seeds
    rows = json.loads((root / "summary.json").read_text())["rounds"]
    judged = {(r["strategy"], r["seed"], r["round"]): r["judge"] for r in rows if "judge" in r}
    assert judged == {("random_cls", s, 1): {k: summaries[s][k] for k in JUDGE_KEYS} for s in (1, 2)}
    report = write_report(root)
    assert (report / "judged.png").is_file()
    text = (report / "summary.md").read_text()
    assert "## Judged against random" in text and "| random_cls | 1 | 4 | " in text.split("## Judged")[1]
    lines = status_lines(root)
    assert lines[-1] == "complete"
    assert any("random_cls" in line and "round 1" in line and "judge done" in line and "vs random" in line
               for line in lines)
    # a rerun does nothing and never loads the judge
    monkeypatch.setattr(J, "make_judge", lambda *a, **k: pytest.fail("judge loaded on a finished run"))
    before = Manifest(root).steps
    run_experiment(cfg, root, progress=False, echo=quiet)
    assert Manifest(root).steps == before


def test_judge_config_errors(tmp_path, tiny_causal_dir, ni_mini, questions):
    data = judged_config(tiny_causal_dir, ni_mini, questions)
    data["evaluation"]["judge"]["against"] = "high_perplexity"
    with pytest.raises(ConfigError, match="evaluation.judge.against: 'high_perplexity' is not one of the experiment's "
                                          r"strategies \(random_cls, random\)"):
        cfg_of(data)
    alone = judged_config(tiny_causal_dir, ni_mini, questions, experiment__strategies=["random"])
    with pytest.raises(ConfigError, match="at least one other strategy"):
        cfg_of(alone)
    missing = judged_config(tiny_causal_dir, ni_mini, tmp_path / "absent.jsonl")
    with pytest.raises(TaskFormatError, match="absent.jsonl"):
        run_experiment(cfg_of(missing), tmp_path / "run", progress=False, echo=quiet)
    assert not (tmp_path / "run").exists()  # refused before any work
    no_questions = judged_config(tiny_causal_dir, ni_mini, questions)
    del no_questions["evaluation"]["judge"]["questions"]
    with pytest.raises(ConfigError, match="evaluation.judge.questions"):
        cfg_of(no_questions)
    cfg = cfg_of(judged_config(tiny_causal_dir, ni_mini, questions))
    assert any(line.startswith("judge: ") and "3 questions" in line for line in check_config(cfg))
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tiny_causal_dir, ni_mini, experiment__strategies=["random_cls", "random"])))
    over = load_config(path, [f"evaluation.judge.questions={questions}", "evaluation.judge.max_new_tokens=3"])
    assert over.evaluation.judge.questions == str(questions) and over.evaluation.judge.against == "random"
    with pytest.raises(ConfigError, match="did you mean 'evaluation.judge.questions'"):
        load_config(path, ["evaluation.judge.qestions=x"])


def _judged(root):
    rows = json.loads((root / "summary.json").read_text())["rounds"]
    return [(r["strategy"], r["round"], r.get("judge"), r["test"]["rougeL"]) for r in rows]


def test_kill_at_judge_steps_and_resume(tmp_path, tiny_causal_dir, ni_mini, questions):
    """Judging switched on for a finished run adds only its steps; killed anywhere in them, it resumes."""
    with_judge, without = tmp_path / "judged.yaml", tmp_path / "plain.yaml"
    data = judged_config(tiny_causal_dir, ni_mini, questions, training__per_device_batch_size=2)
    with_judge.write_text(yaml.safe_dump(data))
    data["evaluation"]["judge"] = None
    without.write_text(yaml.safe_dump(data))
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    cmd = [sys.executable, "-m", "activeit", "run"]
    env = dict(os.environ)
    subprocess.run(cmd + [str(with_judge), "--out", str(straight)], check=True, env=env, capture_output=True)
    subprocess.run(cmd + [str(without), "--out", str(killed)], check=True, env=env, capture_output=True)
    before = Manifest(killed).steps
    for point in ["seed_1/random/round_1/answer:write-answers.jsonl",  # temp file complete, not yet renamed
                  "seed_1/random_cls/round_1/judge:judged-*",  # verdicts checkpointed, not yet written
                  "seed_1/random_cls/round_1/judge:before-manifest"]:
        proc = subprocess.run(cmd + [str(with_judge), "--out", str(killed)], env=dict(env, ACTIVEIT_CRASH_AT=point),
                              capture_output=True, text=True)
        assert proc.returncode == -9, (point, proc.returncode, proc.stderr[-2000:])
    proc = subprocess.run(cmd + [str(with_judge), "--out", str(killed)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = Manifest(killed).steps
    assert all(after[k] == v for k, v in before.items())
    assert sorted(set(after) - set(before)) == ["seed_1/random/round_1/answer", "seed_1/random_cls/round_1/answer",
                                                "seed_1/random_cls/round_1/judge"]
    assert _judged(killed) == _judged(straight)
    verdicts = "seed_1/random_cls/round_1/judge/verdicts.jsonl"
    assert (killed / verdicts).read_text() == (straight / verdicts).read_text()
    assert not list(killed.rglob(".*.tmp")) and not list(killed.rglob(".verdicts-*"))


def test_another_judge_redoes_only_answers_and_verdicts(tmp_path, tiny_causal_dir, other_causal_dir, ni_mini, questions):
    data = judged_config(tiny_causal_dir, ni_mini, questions)
    root = run_experiment(cfg_of(data), tmp_path / "run", progress=False, echo=quiet)
    before = Manifest(root).steps
    data["evaluation"]["judge"] |= {"judge": str(other_causal_dir), "max_new_tokens": 3}
    lines = []
    run_experiment(cfg_of(data), root, progress=False, echo=lines.append)
    after = Manifest(root).steps
    redone = sorted(k for k in after if after[k] != before.get(k))
    assert redone == ["seed_1/random/round_1/answer", "seed_1/random_cls/round_1/answer",
                      "seed_1/random_cls/round_1/judge"]
    assert [line.split("· ")[-1].split(" (")[0] for line in lines if line.startswith("[")] == ["answer"] * 2 + ["judge"]
    summary = json.loads((root / "seed_1" / "random_cls" / "round_1" / "judge" / "summary.json").read_text())
    assert summary["judge"] == str(other_causal_dir)
    answers = _read_jsonl(root / "seed_1" / "random" / "round_1" / "answers.jsonl")
    verdicts = _read_jsonl(root / "seed_1" / "random_cls" / "round_1" / "judge" / "verdicts.jsonl")
    assert [v["answer_b"] for v in verdicts] == [a["answer"] for a in answers]
