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


def test_errors_have_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "activeit", "tasks", "list", str(tmp_path / "missing")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help_lists_contract_commands():
    proc = subprocess.run([sys.executable, "-m", "activeit", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for command in ("tasks", "prompt", "validate"):
        assert command in proc.stdout
