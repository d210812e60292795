import json
import math

import numpy as np
import pytest

from activeit.atomic import read_jsonl
from activeit.config import load_config
from activeit.scores import (
    Scorer,
    label_max_new_tokens,
    perplexity,
    prediction_probability,
    prompt_uncertainty,
    read_task_scores,
    round_from_dir,
    sample_instances,
    score_tasks,
    task_scores_from_records,
)
from activeit.engine import target_ids
from activeit.tasks import TaskLibrary

P = np.array([[0.5, 0.4, 0.7], [0.8, 0.8, 0.6]])


def test_prompt_uncertainty_hand_computed():
    # |.4-.5| |.7-.5| |.8-.8| |.6-.8| -> .1 .2 0 .2 -> mean .125
    assert prompt_uncertainty(P) == pytest.approx(0.125)
    # signed: -.1 .2 0 -.2 -> -.025
    assert prompt_uncertainty(P, absolute=False) == pytest.approx(-0.025)
    # reference (no bald): std over the original and the perturbed prompts, .5 .4 .7 .8 .8 .6
    # (mean .6333): sum of squares 2.54 - 6 * .6333^2 = .1333 -> sqrt(.1333 / 6) = sqrt(1 / 45)
    assert prompt_uncertainty(P, aggregate="std") == pytest.approx(math.sqrt(1 / 45))
    # std_over perturbed: .4 .7 .8 .6 (mean .625): sqrt((.050625 + .005625 + .030625 + .000625) / 4)
    assert prompt_uncertainty(P, aggregate="std", std_over="perturbed") == pytest.approx(math.sqrt(0.0875 / 4))
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
    # the pool's tasks share engine batches: float32 rounding moves p by ~1e-8, nothing else changes
    assert alone[DEMO[1]].prompt_uncertainty == pytest.approx(together[DEMO[1]].prompt_uncertainty, abs=1e-6)
    assert alone[DEMO[1]].prediction_probability == pytest.approx(together[DEMO[1]].prediction_probability, abs=1e-6)


def test_resume_skips_finished_blocks_and_restarts_on_changed_settings(tmp_path, tiny_causal_dir, tiny_lm,
                                                                      monkeypatch):
    cfg = _cfg(tmp_path, tiny_causal_dir)
    lib = TaskLibrary("bundled:demo")
    calls = []
    original = Scorer.score_block

    def boom_on_third(self, tasks):
        calls.extend(t.name for t in tasks)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, tasks)

    monkeypatch.setattr(Scorer, "score_block", boom_on_third)
    with pytest.raises(KeyboardInterrupt):
        score_tasks(tiny_lm, lib, DEMO, cfg, tmp_path / "s", progress=False, block_pairs=1)
    assert sorted(p.name for p in (tmp_path / "s" / "parts").glob("*.jsonl")) == ["000000.jsonl", "000001.jsonl"]
    assert not (tmp_path / "s" / "tasks.json").exists()
    monkeypatch.setattr(Scorer, "score_block", lambda self, tasks: calls.extend(t.name for t in tasks)
                        or original(self, tasks))
    resumed = score_tasks(tiny_lm, lib, DEMO, cfg, tmp_path / "s", progress=False, block_pairs=1)
    assert calls[3:] == [DEMO[2]]
    straight = score_tasks(tiny_lm, lib, DEMO, cfg, tmp_path / "straight", progress=False, block_pairs=1)
    assert {n: s.prompt_uncertainty for n, s in resumed.items()} == {n: s.prompt_uncertainty for n, s in straight.items()}
    # settings changed: the finished parts of an interrupted call are not reused
    (tmp_path / "s2" / "parts").mkdir(parents=True)
    (tmp_path / "s2" / "parts" / "settings.json").write_text(json.dumps({"other": 1}))
    (tmp_path / "s2" / "parts" / "000000.jsonl").write_text("garbage\n")
    calls.clear()
    score_tasks(tiny_lm, lib, DEMO, cfg, tmp_path / "s2", progress=False, block_pairs=1)
    assert calls == DEMO
    # other blocks (another block size, or other tasks): the parts are not reused either
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        monkeypatch.setattr(Scorer, "score_block", boom_on_third)
        score_tasks(tiny_lm, lib, DEMO, cfg, tmp_path / "s3", progress=False, block_pairs=1)
    calls.clear()
    monkeypatch.setattr(Scorer, "score_block", lambda self, tasks: calls.extend(t.name for t in tasks)
                        or original(self, tasks))
    score_tasks(tiny_lm, lib, DEMO, cfg, tmp_path / "s3", progress=False)
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


# --------------------------------------------------------------------------- reference semantics


def test_label_length_defaults_to_the_reference_generation_limit():
    # run_s2s generation_max_length 128 = max_target_length; HF max_length counts the decoder start token
    cfg = load_config(None)
    assert cfg.scoring.max_new_tokens is None
    assert label_max_new_tokens(cfg, causal=False) == 127
    assert label_max_new_tokens(cfg, causal=True) == 128
    cfg = load_config(None, ["prompt.max_target_length=16", "scoring.max_new_tokens=5"])
    assert label_max_new_tokens(cfg, causal=False) == 5
    assert label_max_new_tokens(load_config(None, ["prompt.max_target_length=16"]), causal=False) == 15


def test_round_from_dir(tmp_path):
    assert round_from_dir(tmp_path / "runs" / "x" / "round_3" / "scores") == 3
    assert round_from_dir(tmp_path / "scores") == 0


def test_sample_instances_redrawn_per_round():
    task = TaskLibrary("bundled:demo").load("demo001_review_sentiment")
    r1 = sample_instances(task, 5, 3, seed=1, round_index=1)
    assert r1 == sample_instances(task, 5, 3, seed=1, round_index=1)
    assert r1[0] != sample_instances(task, 5, 3, seed=1, round_index=2)[0]
    assert sample_instances(task, 5, 3, seed=1) != r1


class _Gen:
    def __init__(self, ids, text="", score=None):
        self.token_ids, self.text, self.score = ids, text, score


@pytest.fixture(scope="module")
def tiny_s2s(tiny_seq2seq_dir):
    from activeit.models import load_model

    return load_model(str(tiny_seq2seq_dir), dtype="float32", device="cpu")


def test_seq2seq_label_round_trip(tiny_seq2seq_dir, tiny_s2s):
    """run_s2s: batch_decode(skip_special_tokens, clean_up_tokenization_spaces=True), strip -> output;
    ni_collator: tokenizer(label, max_length=max_target_length, truncation=True) with EOS."""
    tok, eos = tiny_s2s.tokenizer, tiny_s2s.tokenizer.eos_token_id
    scorer = Scorer(tiny_s2s, load_config(None, [f"model.name={tiny_seq2seq_dir}"]))
    # canonical ids come back unchanged, and their likelihood from generation is kept
    ids = tok("yes")["input_ids"]
    assert ids[-1] == eos
    assert scorer.predicted_label(_Gen(ids, "yes", score="known")) == ("yes", ids, "known")
    # one token per character: the same text, re-tokenised to other ids; the score must be recomputed
    chars = [tok.convert_tokens_to_ids(c) for c in "yes"] + [eos]
    assert chars != ids
    assert scorer.predicted_label(_Gen(chars, "yes", score="known")) == ("yes", ids, None)
    # special tokens dropped, " ," cleaned to ",", surrounding spaces stripped
    spaced = [tok.pad_token_id] + tok(" a , b ", add_special_tokens=False)["input_ids"] + [eos]
    text, new, _ = scorer.predicted_label(_Gen(spaced))
    assert text == "a, b" and new == tok("a, b")["input_ids"]
    # truncated to max_target_length tokens, EOS kept (T5 truncation)
    short = Scorer(tiny_s2s, load_config(None, [f"model.name={tiny_seq2seq_dir}", "prompt.max_target_length=3"]))
    long_ids = tok("the quick brown fox jumps")["input_ids"]
    assert len(long_ids) > 3
    _, cut, _ = short.predicted_label(_Gen(long_ids))
    assert cut == long_ids[:2] + [eos]
    # the option keeps the generated ids
    raw = Scorer(tiny_s2s, load_config(None, [f"model.name={tiny_seq2seq_dir}", "scoring.retokenize_labels=false"]))
    assert raw.predicted_label(_Gen(chars, "yes", score="known")) == ("yes", chars, "known")


def test_seq2seq_scoring_records_use_retokenized_labels(tmp_path, tiny_seq2seq_dir, tiny_s2s):
    cfg = _cfg(tmp_path, tiny_seq2seq_dir)
    score_tasks(tiny_s2s, TaskLibrary("bundled:demo"), DEMO[:2], cfg, tmp_path / "s", progress=False)
    records = read_jsonl(tmp_path / "s" / "records.jsonl")
    tok = tiny_s2s.tokenizer
    pu = [r for r in records if r["purpose"] == "prompt_uncertainty"]
    assert all(r["target_ids"] == tok(r["label"], max_length=128, truncation=True)["input_ids"] for r in pu)
    # perplexity scores the generated ids: its own records whenever a label's ids changed
    ppl = [r for r in records if r["purpose"] == "perplexity"]
    for name in DEMO[:2]:
        mine = [r for r in ppl if r["task"] == name]
        if mine:
            assert len(mine) == 3 and all(r["perturbation"] == 0 for r in mine)


def test_causal_labels_are_the_generated_ids(tmp_path, tiny_causal_dir, tiny_lm):
    cfg = _cfg(tmp_path, tiny_causal_dir)
    records = Scorer(tiny_lm, cfg).score_task(TaskLibrary("bundled:demo").load(DEMO[0]))
    assert not [r for r in records if r.purpose == "perplexity"]  # k = 0 records are the perplexity records


def test_scores_redrawn_each_round_and_reproducible(tmp_path, tiny_causal_dir, tiny_lm):
    lib = TaskLibrary("bundled:demo")

    def ids_and_prompts(cfg, rnd):
        rows = Scorer(tiny_lm, cfg, round_index=rnd).score_task(lib.load(DEMO[0]))
        return [(r.instance_id, r.prompt) for r in rows]

    cfg = _cfg(tmp_path, tiny_causal_dir)
    assert ids_and_prompts(cfg, 1) == ids_and_prompts(cfg, 1)
    assert ids_and_prompts(cfg, 1) != ids_and_prompts(cfg, 2)
    fixed = _cfg(tmp_path, tiny_causal_dir, "scoring.redraw_each_round=false")
    assert ids_and_prompts(fixed, 1) == ids_and_prompts(fixed, 2)
    # score_tasks reads the round from a run's layout
    a = score_tasks(tiny_lm, lib, DEMO[:1], cfg, tmp_path / "round_1" / "scores", progress=False)
    b = score_tasks(tiny_lm, lib, DEMO[:1], cfg, tmp_path / "x" / "s", round_index=1, progress=False)
    assert a[DEMO[0]].prompt_uncertainty == b[DEMO[0]].prompt_uncertainty


def test_std_aggregate_scores_the_original_and_k_minus_1_perturbed(tmp_path, tiny_causal_dir, tiny_lm):
    # TLAL_utils.get_additional_args: perturb_num K (K + 1 only with "bald"); pid 0 is the original prompt
    cfg = _cfg(tmp_path, tiny_causal_dir, "scoring.aggregate=std")
    rows = Scorer(tiny_lm, cfg).score_task(TaskLibrary("bundled:demo").load(DEMO[0]))
    assert sorted({r.perturbation for r in rows}) == [0, 1, 2]
    scores = task_scores_from_records([r.__dict__ for r in rows], cfg.scoring)[DEMO[0]]
    assert scores.prompt_uncertainty == pytest.approx(float(np.std([r.p for r in rows])), abs=1e-12)
    other = _cfg(tmp_path, tiny_causal_dir, "scoring.aggregate=std", "scoring.std_over=perturbed")
    rows = Scorer(tiny_lm, other).score_task(TaskLibrary("bundled:demo").load(DEMO[0]))
    assert sorted({r.perturbation for r in rows}) == [0, 1, 2, 3]


def test_task_with_one_positive_example_gets_demonstrations_in_scoring_prompts(tmp_path, tiny_causal_dir, tiny_lm):
    task = TaskLibrary("bundled:demo").load(DEMO[0])
    task.positive_examples = task.positive_examples[:1]
    cfg = _cfg(tmp_path, tiny_causal_dir, "prompt.max_source_length=2048")
    rows = Scorer(tiny_lm, cfg).score_task(task)
    by_k = {r.perturbation: r for r in rows if r.instance_id == rows[0].instance_id and r.purpose != "perplexity"}
    assert all("Positive Example 2" in r.prompt for r in by_k.values())
    # the labels come from the task's own prompt (the reference's unperturbed prediction run)
    assert all("Positive Example 2" not in r.prompt for r in rows if r.purpose == "perplexity")
    assert [r for r in rows if r.purpose == "perplexity"]
    plain = Scorer(tiny_lm, _cfg(tmp_path, tiny_causal_dir, "prompt.max_source_length=2048",
                                 "scoring.pad_examples=false")).score_task(task)
    assert all("Positive Example 2" not in r.prompt for r in plain)



def test_clean_up_tokenization_hand_computed():
    from activeit.scores import clean_up_tokenization

    assert clean_up_tokenization("a , b . c ? I 'm sure it is n't , ok !") == "a, b. c? I'm sure it isn't, ok!"


def test_a_registered_scorer_runs_and_a_strategy_selects_on_it(tmp_path, tiny_causal_dir, tiny_lm):
    """A new score is one registration: its pairs, its aggregation; runs, tasks.json and strategies see it."""
    from activeit.scores import SCORERS, Request, register_scorer
    from activeit.strategies import STRATEGIES, rank, register_strategy, select

    @register_scorer("gold_likelihood", produces=("gold_probability",))
    class GoldLikelihood:
        @staticmethod
        def requests(draw):
            return [Request("gold_likelihood", inst, 0, original, inst.outputs[0], target_ids(draw.scorer.lm, inst.outputs[0]))
                    for inst, original in zip(draw.instances, draw.originals)]

        @staticmethod
        def aggregate(parts, scoring):
            rows = parts.get("gold_likelihood")
            return {"gold_probability": sum(r["p"] for r in rows) / len(rows)} if rows else {}

    @register_strategy("high_gold", needs=["gold_probability"])
    def high_gold(pool, scores, k, rng):
        return rank(pool, scores, "gold_probability", high_first=True)[:k]

    try:
        cfg = _cfg(tmp_path, tiny_causal_dir)
        lib = TaskLibrary("bundled:demo")
        scores = score_tasks(tiny_lm, lib, DEMO, cfg, tmp_path / "s", compute=("gold_likelihood",), progress=False)
        records = read_jsonl(tmp_path / "s" / "records.jsonl")
        assert {r["purpose"] for r in records} == {"gold_likelihood"} and len(records) == 3 * len(DEMO)
        table, _ = read_task_scores(tmp_path / "s" / "tasks.json")
        for name in DEMO:
            mine = [r["p"] for r in records if r["task"] == name]
            assert table[name].gold_probability == pytest.approx(sum(mine) / len(mine), abs=1e-12)
            assert table[name].prompt_uncertainty is None and scores[name].gold_probability == table[name].gold_probability
        picked = select("high_gold", [lib.summary(n) for n in DEMO], table, 1, np.random.default_rng(0))
        assert picked == [max(DEMO, key=lambda n: table[n].gold_probability)]
    finally:
        SCORERS.pop("gold_likelihood", None)
        STRATEGIES.pop("high_gold", None)


def test_identical_perturbations_counted_from_records_and_warned():
    from activeit.scores import identical_warning

    cfg = load_config(None)
    records = _records("t1", P) + _records("t2", [[0.9, 0.9, 0.9]])
    for r in records:
        r["identical"] = r["task"] == "t2" and r["perturbation"] > 0 or (r["instance_id"], r["perturbation"]) == ("i0", 2)
    scores = task_scores_from_records(records, cfg.scoring)
    assert (scores["t1"].identical_perturbations, scores["t2"].identical_perturbations) == (1, 2)
    # 3 of 6 perturbed prompts
    assert identical_warning(scores) == (
        "warning: 3 of 6 perturbed prompts (50%, in 2 of 2 tasks) are identical to the original prompt; consider "
        "scoring.redraw_identical, scoring.perturb_input or a higher scoring.drop_rate")
    for r in records:
        r["identical"] = False
    assert identical_warning(task_scores_from_records(records, cfg.scoring)) is None
    for r in records:
        del r["identical"]
    assert task_scores_from_records(records, cfg.scoring)["t1"].identical_perturbations is None


def _short_pool(tmp_path):
    rows = [{"instruction": f"Say {w} now", "input": f"the {w} word here", "output": w} for w in ("red", "blue", "green")]
    path = tmp_path / "short.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return TaskLibrary(path)


def test_one_instance_tasks_flag_identical_prompts(tmp_path, tiny_causal_dir, tiny_lm):
    lib = _short_pool(tmp_path)
    names = lib.names()
    cfg = _cfg(tmp_path, tiny_causal_dir, "scoring.perturbations=8", "scoring.target=definition")
    scores = score_tasks(tiny_lm, lib, names, cfg, tmp_path / "s", progress=False)
    records = [r for r in read_jsonl(tmp_path / "s" / "records.jsonl") if r["purpose"] == "prompt_uncertainty"]
    first = {r["task"]: r["prompt"] for r in records if r["perturbation"] == 0}
    for r in records:
        assert r["identical"] == (r["perturbation"] > 0 and r["prompt"] == first[r["task"]])
    for name in names:
        assert scores[name].n == 1
        assert scores[name].identical_perturbations == sum(r["identical"] for r in records if r["task"] == name)
    assert sum(s.identical_perturbations for s in scores.values()) > 0  # 3 words at 0.2: about half
    table, _ = read_task_scores(tmp_path / "s" / "tasks.json")
    assert {n: t.identical_perturbations for n, t in table.items()} == {n: s.identical_perturbations
                                                                          for n, s in scores.items()}
    redrawn = score_tasks(tiny_lm, lib, names, load_config(None, [*_overrides(cfg), "scoring.redraw_identical=6"]),
                          tmp_path / "r", progress=False)
    assert sum(s.identical_perturbations for s in redrawn.values()) < sum(s.identical_perturbations
                                                                          for s in scores.values())
    with_input = score_tasks(tiny_lm, lib, names, load_config(None, [*_overrides(cfg), "scoring.perturb_input=true",
                                                                     "scoring.drop_rate=0.5"]),
                             tmp_path / "i", progress=False)
    inputs = [r["prompt"] for r in read_jsonl(tmp_path / "i" / "records.jsonl") if r["perturbation"] > 0]
    assert any("the red word here" not in p and "Say red now" in p for p in inputs if "red" in p)
    assert all(s.identical_perturbations is not None for s in with_input.values())


def _overrides(cfg):
    s = cfg.scoring
    return [f"model.name={cfg.model.name}", "model.dtype=float32", f"scoring.instances={s.instances}",
            f"scoring.perturbations={s.perturbations}", f"scoring.max_new_tokens={s.max_new_tokens}",
            f"scoring.target={s.target}", "prompt.max_source_length=256", f"seed={cfg.seed}"]


# --------------------------------------------------------------------------- blocks and streaming


def test_plan_blocks_hand_computed():
    from activeit.scores import plan_blocks

    pairs = {"a": 4, "b": 4, "c": 4, "d": 9, "e": 1, "f": 1}
    # a+b = 8 <= 8; c alone (c+d = 13); d over the budget alone; e+f
    assert plan_blocks(list(pairs), pairs.get, 8) == [range(0, 2), range(2, 3), range(3, 4), range(4, 6)]
    assert plan_blocks(list(pairs), pairs.get, 1) == [range(i, i + 1) for i in range(6)]
    assert plan_blocks(list(pairs), pairs.get, 100) == [range(0, 6)]
    assert plan_blocks([], pairs.get, 8) == []


def test_stream_task_scores_equals_grouped_aggregation():
    from activeit.scores import stream_task_scores

    cfg = load_config(None)
    records = _records("t2", [[0.9, 0.9, 0.9]]) + _records("t1", P) + _records("t3", [[0.2, 0.5, 0.1]])
    info = {"t1": ("cls", "A"), "t2": ("gen", "B")}
    assert stream_task_scores(iter(records), cfg.scoring, info) == task_scores_from_records(records, cfg.scoring, info)
    with pytest.raises(ValueError, match="not contiguous"):
        stream_task_scores(records + _records("t2", [[0.5, 0.5, 0.5]]), cfg.scoring)


def _one_instance_pool(path, n):
    from activeit.bench import synthetic_instruction_pool

    return synthetic_instruction_pool(path, n, seed=3)


def test_tasks_scored_together_equal_tasks_scored_one_by_one(tmp_path, tiny_causal_dir, tiny_lm):
    """A mixed pool (NI tasks with several instances, one-instance instruction tasks): same prompts, labels,
    draws and records whether each task is its own block or all share one; p within float32 rounding."""
    import shutil

    from activeit.tasks import load_instruction_dataset

    pool = tmp_path / "pool"
    pool.mkdir()
    demo = TaskLibrary("bundled:demo")
    for name in DEMO:
        shutil.copy(demo.path(name), pool / f"{name}.json")
    for task in load_instruction_dataset(_one_instance_pool(tmp_path / "si.jsonl", 6)):
        inst = task.instances[0]
        (pool / f"{task.name}.json").write_text(json.dumps({
            "Definition": [task.definition], "Instances": [{"id": inst.id, "input": inst.input,
                                                             "output": list(inst.outputs)}]}))
    lib = TaskLibrary(pool)
    names = [n for pair in zip(lib.names()[:3], lib.names()[3:6]) for n in pair] + lib.names()[6:]
    cfg = _cfg(tmp_path, tiny_causal_dir)
    one = score_tasks(tiny_lm, lib, names, cfg, tmp_path / "one", progress=False, block_pairs=1)
    together = score_tasks(tiny_lm, lib, names, cfg, tmp_path / "together", progress=False, block_pairs=10_000)
    a, b = read_jsonl(tmp_path / "one" / "records.jsonl"), read_jsonl(tmp_path / "together" / "records.jsonl")
    assert len(a) == len(b) == 3 * 3 * 4 + 6 * 4
    assert [r["task"] for r in a] == [n for n in names for _ in range(12 if n in DEMO else 4)]
    numeric = ("mean_ce", "p")
    for x, y in zip(a, b):
        assert {k: v for k, v in x.items() if k not in numeric} == {k: v for k, v in y.items() if k not in numeric}
        assert x["mean_ce"] == pytest.approx(y["mean_ce"], abs=1e-5)
    assert list(one) == list(together) == sorted(names)
    for name in names:
        s, t = one[name], together[name]
        assert (s.n, s.K, s.kind, s.category, s.region) == (t.n, t.K, t.kind, t.category, t.region)
        assert s.prompt_uncertainty == pytest.approx(t.prompt_uncertainty, abs=1e-6)
        assert s.perplexity == pytest.approx(t.perplexity, rel=1e-5)
    # the draws are each task's own: one task's block equals its records in the pool
    alone = Scorer(tiny_lm, cfg).score_task(lib.load(names[1]))
    assert [r.prompt for r in alone] == [r["prompt"] for r in b if r["task"] == names[1]]


KILLED_SCORING = """
import sys
from activeit.config import load_config
from activeit.models import load_model
from activeit.scores import score_tasks
from activeit.tasks import TaskLibrary
model, pool, out = sys.argv[1:4]
cfg = load_config(None, [f"model.name={model}", "model.dtype=float32", "scoring.perturbations=3",
                         "scoring.max_new_tokens=4", "prompt.max_source_length=256", "seed=5"])
lib = TaskLibrary(pool)
score_tasks(load_model(model, dtype="float32", device="cpu"), lib, lib.names(), cfg, out, progress=False,
            block_pairs=16)
"""


def test_a_killed_scoring_resumes_without_rescoring_finished_records(tmp_path, tiny_causal_dir, tiny_lm, monkeypatch):
    import os
    import subprocess
    import sys

    pool = _one_instance_pool(tmp_path / "pool.jsonl", 40)  # 4 pairs a task: blocks of 4 tasks, 10 blocks
    out = tmp_path / "killed"
    args = [sys.executable, "-c", KILLED_SCORING, str(tiny_causal_dir), str(pool), str(out)]
    proc = subprocess.run(args, env=dict(os.environ, ACTIVEIT_CRASH_AT=":scored-000003"), capture_output=True,
                          text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    shards = sorted(p.name for p in (out / "parts").glob("*.jsonl"))
    assert shards == [f"{b:06d}.jsonl" for b in range(4)]
    assert not (out / "records.jsonl").exists() and not (out / "tasks.json").exists()
    finished = [r for b in range(4) for r in read_jsonl(out / "parts" / f"{b:06d}.jsonl")]
    assert len(finished) == 16 * 4

    calls = []
    original = Scorer.score_block
    monkeypatch.setattr(Scorer, "score_block", lambda self, tasks: calls.extend(t.name for t in tasks)
                        or original(self, tasks))
    cfg = load_config(None, [f"model.name={tiny_causal_dir}", "model.dtype=float32", "scoring.perturbations=3",
                             "scoring.max_new_tokens=4", "prompt.max_source_length=256", "seed=5"])
    lib = TaskLibrary(pool)
    names = lib.names()
    resumed = score_tasks(tiny_lm, lib, names, cfg, out, progress=False, block_pairs=16)
    assert calls == names[16:]  # the 16 tasks of the finished blocks were not scored again
    straight = score_tasks(tiny_lm, lib, names, cfg, tmp_path / "straight", progress=False, block_pairs=16)
    assert (out / "records.jsonl").read_bytes() == (tmp_path / "straight" / "records.jsonl").read_bytes()
    assert read_jsonl(out / "records.jsonl")[: len(finished)] == finished
    assert resumed == straight and read_task_scores(out / "tasks.json")[0] == straight
    assert not (out / "parts").exists() and not list(out.glob(".*.tmp"))
