import json
import math

import numpy as np
import pytest

from activeit.atomic import read_jsonl
from activeit.config import load_config
from activeit.scores import (
    Scorer,
    perplexity,
    prediction_probability,
    prompt_uncertainty,
    read_task_scores,
    sample_instances,
    score_tasks,
    task_scores_from_records,
)
from activeit.tasks import TaskLibrary

P = np.array([[0.5, 0.4, 0.7], [0.8, 0.8, 0.6]])


def test_prompt_uncertainty_hand_computed():
    # |.4-.5| |.7-.5| |.8-.8| |.6-.8| -> .1 .2 0 .2 -> mean .125
    assert prompt_uncertainty(P) == pytest.approx(0.125)
    # signed: -.1 .2 0 -.2 -> -.025
    assert prompt_uncertainty(P, absolute=False) == pytest.approx(-0.025)
    # std of .4 .7 .8 .6 (mean .625): sqrt((.050625 + .005625 + .030625 + .000625) / 4)
    assert prompt_uncertainty(P, aggregate="std") == pytest.approx(math.sqrt(0.0875 / 4))
    assert prediction_probability(P) == pytest.approx(0.65)


def test_perplexity_is_mean_of_per_instance_perplexities():
    assert perplexity([0.0, math.log(2.0)]) == pytest.approx(1.5)


def _records(task, grid, purpose="prompt_uncertainty"):
    return [
        {"task": task, "instance_id": f"i{i}", "perturbation": k, "p": p, "mean_ce": -math.log(p), "purpose": purpose}
        for i, row in enumerate(grid) for k, p in enumerate(row)
    ]


def test_task_scores_from_records():
    cfg = load_config(None)
    records = _records("t1", P) + _records("t2", [[0.9, 0.9, 0.9]])
    scores = task_scores_from_records(records, cfg.scoring, {"t1": ("cls", "A"), "t2": ("gen", "B")})
    t1 = scores["t1"]
    assert (t1.n, t1.K, t1.kind, t1.category) == (2, 2, "cls", "A")
    assert t1.prompt_uncertainty == pytest.approx(0.125)
    assert t1.prediction_probability == pytest.approx(0.65)
    assert t1.perplexity == pytest.approx((1 / 0.5 + 1 / 0.8) / 2)
    assert scores["t2"].prompt_uncertainty == pytest.approx(0.0)
    assert {t1.region, scores["t2"].region} == {"ambiguous", "easy"}


def test_incomplete_grid_is_rejected():
    cfg = load_config(None)
    records = _records("t1", P)[:-1]
    with pytest.raises(ValueError, match="complete instance"):
        task_scores_from_records(records, cfg.scoring)


def test_sample_instances_is_seeded_per_task():
    lib = TaskLibrary("bundled:demo")
    task = lib.load("demo001_review_sentiment")
    a, extra = sample_instances(task, 5, 3, seed=1)
    assert a == sample_instances(task, 5, 3, seed=1)[0]
    assert a != sample_instances(task, 5, 3, seed=2)[0]
    assert len(extra) == 3 and not {e.input for e in extra} & {i.input for i in a}


DEMO = ["demo001_review_sentiment", "demo020_addition", "demo026_antonym"]


def _cfg(tmp_path, model_dir, *extra):
    return load_config(None, [
        f"model.name={model_dir}", "model.dtype=float32", "scoring.instances=3", "scoring.perturbations=3",
        "scoring.max_new_tokens=6", "prompt.max_source_length=256", "seed=5", *extra,
    ])


@pytest.fixture(scope="module")
def tiny_lm(tiny_causal_dir):
    from activeit.models import load_model

    return load_model(str(tiny_causal_dir), dtype="float32", device="cpu")


def test_score_tasks_writes_records_that_recompute_the_scores(tmp_path, tiny_causal_dir, tiny_lm):
    cfg = _cfg(tmp_path, tiny_causal_dir)
    lib = TaskLibrary("bundled:demo")
    scores = score_tasks(tiny_lm, lib, DEMO, cfg, tmp_path / "s", progress=False)
    records = read_jsonl(tmp_path / "s" / "records.jsonl")
    assert len(records) == 3 * 3 * 4
    for r in records:
        assert set(r) >= {"task", "instance_id", "perturbation", "prompt", "label", "n_tokens", "mean_ce", "p"}
        assert r["p"] == pytest.approx(math.exp(-r["mean_ce"]))
        assert r["n_tokens"] == len(r["target_ids"]) > 0
        assert not r["prompt"].endswith(" ")
    table, meta = read_task_scores(tmp_path / "s" / "tasks.json")
    assert meta["seed"] == 5 and set(table) == set(DEMO)
    again = task_scores_from_records(records, cfg.scoring)
    for name in DEMO:
        assert table[name].prompt_uncertainty == pytest.approx(again[name].prompt_uncertainty, abs=1e-12)
        assert table[name].prediction_probability == pytest.approx(again[name].prediction_probability, abs=1e-12)
        assert table[name].perplexity == pytest.approx(again[name].perplexity, abs=1e-12)
        assert scores[name].prompt_uncertainty == table[name].prompt_uncertainty
        # the formula by hand, from the records alone
        mine = [r for r in records if r["task"] == name]
        p0 = {r["instance_id"]: r["p"] for r in mine if r["perturbation"] == 0}
        diffs = [abs(r["p"] - p0[r["instance_id"]]) for r in mine if r["perturbation"] > 0]
        assert table[name].prompt_uncertainty == pytest.approx(sum(diffs) / len(diffs), abs=1e-12)
        assert table[name].kind == lib.kind(name)
    assert not (tmp_path / "s" / "parts").exists()


def test_a_record_rescored_with_plain_transformers(tmp_path, tiny_causal_dir, tiny_lm):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = _cfg(tmp_path, tiny_causal_dir)
    score_tasks(tiny_lm, TaskLibrary("bundled:demo"), DEMO[:1], cfg, tmp_path / "s", progress=False)
    records = read_jsonl(tmp_path / "s" / "records.jsonl")
    tok = AutoTokenizer.from_pretrained(tiny_causal_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_causal_dir, dtype=torch.float32).eval()
    for record in (records[0], records[5]):  # k = 0 (likelihood from generation) and k = 1 (scored)
        prompt_ids = tok(record["prompt"])["input_ids"]
        ids = torch.tensor([prompt_ids + record["target_ids"]])
        with torch.no_grad():
            logits = model(ids).logits[0, len(prompt_ids) - 1:-1]
        ce = torch.nn.functional.cross_entropy(logits, torch.tensor(record["target_ids"]))
        assert ce.item() == pytest.approx(record["mean_ce"], abs=1e-4)
    assert records[0]["perturbation"] == 0 and records[5]["perturbation"] == 1


def test_one_task_alone_equals_with_the_pool(tmp_path, tiny_causal_dir, tiny_lm):
    cfg = _cfg(tmp_path, tiny_causal_dir)
    lib = TaskLibrary("bundled:demo")
    together = score_tasks(tiny_lm, lib, DEMO, cfg, tmp_path / "all", progress=False)
    alone = score_tasks(tiny_lm, lib, [DEMO[1]], cfg, tmp_path / "one", progress=False)
    assert alone[DEMO[1]].prompt_uncertainty == together[DEMO[1]].prompt_uncertainty
    assert alone[DEMO[1]].prediction_probability == together[DEMO[1]].prediction_probability


def test_resume_skips_finished_tasks_and_restarts_on_changed_settings(tmp_path, tiny_causal_dir, tiny_lm, monkeypatch):
    cfg = _cfg(tmp_path, tiny_causal_dir)
    lib = TaskLibrary("bundled:demo")
    calls = []
    original = Scorer.score_task

    def boom_on_third(self, task):
        calls.append(task.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, task)

    monkeypatch.setattr(Scorer, "score_task", boom_on_third)
    with pytest.raises(KeyboardInterrupt):
        score_tasks(tiny_lm, lib, DEMO, cfg, tmp_path / "s", progress=False)
    assert sorted(p.name for p in (tmp_path / "s" / "parts").glob("*.jsonl")) == [f"{n}.jsonl" for n in DEMO[:2]]
    assert not (tmp_path / "s" / "tasks.json").exists()
    monkeypatch.setattr(Scorer, "score_task", lambda self, task: calls.append(task.name) or original(self, task))
    resumed = score_tasks(tiny_lm, lib, DEMO, cfg, tmp_path / "s", progress=False)
    assert calls[3:] == [DEMO[2]]
    straight = score_tasks(tiny_lm, lib, DEMO, cfg, tmp_path / "straight", progress=False)
    assert {n: s.prompt_uncertainty for n, s in resumed.items()} == {n: s.prompt_uncertainty for n, s in straight.items()}
    # settings changed: the finished parts of an interrupted call are not reused
    (tmp_path / "s2" / "parts").mkdir(parents=True)
    (tmp_path / "s2" / "parts" / "settings.json").write_text(json.dumps({"other": 1}))
    (tmp_path / "s2" / "parts" / f"{DEMO[0]}.jsonl").write_text("garbage\n")
    calls.clear()
    score_tasks(tiny_lm, lib, DEMO, cfg, tmp_path / "s2", progress=False)
    assert calls == DEMO


@pytest.mark.parametrize("option", ["scoring.label=gold", "scoring.target=examples", "scoring.target=definition",
                                    "scoring.mask=true", "scoring.aggregate=std", "scoring.absolute=false"])
def test_scoring_options_run_and_recompute(tmp_path, tiny_causal_dir, tiny_lm, option):
    cfg = _cfg(tmp_path, tiny_causal_dir, option)
    scores = score_tasks(tiny_lm, TaskLibrary("bundled:demo"), DEMO[:2], cfg, tmp_path / "s", progress=False)
    records = read_jsonl(tmp_path / "s" / "records.jsonl")
    again = task_scores_from_records(records, cfg.scoring)
    for name, entry in scores.items():
        assert entry.prompt_uncertainty == pytest.approx(again[name].prompt_uncertainty, abs=1e-12)
        assert entry.perplexity is not None
    if option == "scoring.label=gold":
        lib = TaskLibrary("bundled:demo")
        gold = {i.id: i.outputs[0] for i in lib.load(DEMO[0]).instances}
        pu = [r for r in records if r["purpose"] == "prompt_uncertainty" and r["task"] == DEMO[0]]
        assert all(r["label"] == gold[r["instance_id"]] for r in pu)
        assert any(r["purpose"] == "perplexity" for r in records)
    if option == "scoring.mask=true":
        assert any("<unk>" in r["prompt"] or "<extra_id_0>" in r["prompt"] for r in records if r["perturbation"] > 0)


def test_perplexity_only(tmp_path, tiny_causal_dir, tiny_lm):
    cfg = _cfg(tmp_path, tiny_causal_dir)
    scores = score_tasks(tiny_lm, TaskLibrary("bundled:demo"), DEMO[:2], cfg, tmp_path / "s",
                         compute=("perplexity",), progress=False)
    records = read_jsonl(tmp_path / "s" / "records.jsonl")
    assert len(records) == 2 * 3 and all(r["perturbation"] == 0 for r in records)
    assert all(s.prompt_uncertainty is None and s.perplexity > 1 for s in scores.values())


def test_seq2seq_scoring(tmp_path, tiny_seq2seq_dir):
    from activeit.models import load_model

    lm = load_model(str(tiny_seq2seq_dir), dtype="float32", device="cpu")
    cfg = _cfg(tmp_path, tiny_seq2seq_dir)
    scores = score_tasks(lm, TaskLibrary("bundled:demo"), DEMO[:2], cfg, tmp_path / "s", progress=False)
    records = read_jsonl(tmp_path / "s" / "records.jsonl")
    assert all(r["target_ids"][-1] == lm.tokenizer.eos_token_id or r["n_tokens"] == 6 for r in records)
    assert all(0 <= s.prompt_uncertainty <= 1 for s in scores.values())
