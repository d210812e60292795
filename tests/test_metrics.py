"""Metrics: hand-computed values, the reference's quirks (normalisation, raw-string ROUGE), grouping."""

import json
import string
from collections import Counter

import pytest

from activeit.metrics import (
    FLAT_METRICS,
    METRICS,
    PredictionFileError,
    compute_metrics,
    exact_match,
    format_table,
    instance_scores,
    metrics_from_file,
    normalize_answer,
    read_predictions,
    rouge_l,
    rouge1,
    score_records,
)


def f_measure(lcs: int, n_pred: int, n_ref: int) -> float:
    p, r = lcs / n_pred, lcs / n_ref
    return 2 * p * r / (p + r)


def test_normalisation_keeps_articles_and_drops_punctuation():
    assert normalize_answer("  The Cat,  sat!\n on   a mat. ") == "the cat sat on a mat"
    assert normalize_answer("don't-stop") == "dontstop"
    assert normalize_answer("...") == ""
    assert normalize_answer("Ünïcode “quotes”") == "ünïcode “quotes”"  # only ASCII punctuation goes


def test_hand_computed_rouge_l_and_exact_match():
    # tokens: [the, cat, sat] vs [the, cat, sat, on, the, mat]: LCS = 3, P = 1, R = 1/2, F = 2/3
    assert rouge_l("The cat sat", "the cat sat on the mat") == pytest.approx(f_measure(3, 3, 6)) == pytest.approx(2 / 3)
    assert rouge1("The cat sat", "the cat sat on the mat") == pytest.approx(2 / 3)
    # LCS of [a, b, c, d] and [a, c, b, d] is 3 (a b d / a c d); unigram overlap is 4
    assert rouge_l("a b c d", "a c b d") == pytest.approx(0.75)
    assert rouge1("a b c d", "a c b d") == pytest.approx(1.0)
    assert exact_match("The cat sat", "the cat sat on the mat") == 0.0
    scores = instance_scores("The cat sat", ["the cat sat on the mat"])
    assert scores == {"exact_match": 0.0, "rouge1": pytest.approx(200 / 3), "rougeL": pytest.approx(200 / 3)}


def test_stemming_is_on():
    # Porter stems: running -> run, dogs -> dog
    assert rouge_l("running dogs", "run dog") == pytest.approx(1.0)


def test_rouge_is_computed_on_raw_strings_not_normalised_ones():
    # normalisation deletes the hyphen (catsat), rouge_score's tokenizer turns it into a space (cat sat)
    assert exact_match("The cat-sat", "the catsat") == 1.0
    assert rouge_l("The cat-sat", "the catsat") == pytest.approx(f_measure(1, 3, 2)) == pytest.approx(0.4)


def test_multi_reference_takes_the_max_of_each_metric_separately():
    scores = instance_scores("the cat", ["dog", "the cat sat", "The cat!"])
    assert scores["exact_match"] == 100.0  # "The cat!" normalises to "the cat"
    assert scores["rougeL"] == pytest.approx(100.0)
    scores = instance_scores("a b c", ["a b c d e f", "a x x x x x x x x b"])
    assert scores["exact_match"] == 0.0
    assert scores["rougeL"] == pytest.approx(100 * f_measure(3, 3, 6))


def test_empty_prediction():
    assert instance_scores("", ["yes"]) == {"exact_match": 0.0, "rouge1": 0.0, "rougeL": 0.0}
    # both sides normalise to "": exact match (as the reference), but no ROUGE tokens
    assert instance_scores("", ["..."]) == {"exact_match": 100.0, "rouge1": 0.0, "rougeL": 0.0}
    assert instance_scores("   ", [""])["exact_match"] == 100.0


def test_unicode():
    assert instance_scores("Café", ["café"]) == {"exact_match": 100.0, "rouge1": 100.0, "rougeL": 100.0}
    # no [a-z0-9] characters: no ROUGE tokens at all, as with the reference's default tokenizer
    assert instance_scores("東京", ["東京"]) == {"exact_match": 100.0, "rouge1": 0.0, "rougeL": 0.0}
    assert instance_scores("東京 tower", ["東京 tower"])["rougeL"] == 100.0
    assert instance_scores("naïve", ["naive"]) == {"exact_match": 0.0, "rouge1": 0.0, "rougeL": 0.0}


def test_references_must_be_a_list():
    with pytest.raises(ValueError):
        instance_scores("a", "a")
    with pytest.raises(ValueError):
        instance_scores("a", [])


def _reference_compute_metrics(predictions, references):
    """The reference `compute_metrics` (Active-IT / Tk-Instruct), re-typed: one scorer per metric."""
    from rouge_score import rouge_scorer

    def norm(s):
        return " ".join("".join(ch for ch in s.lower() if ch not in set(string.punctuation)).split())

    def rouge(kind, pred, gold):
        return rouge_scorer.RougeScorer([kind], use_stemmer=True).score(prediction=pred, target=gold)[kind].fmeasure

    em = r1 = rl = 0
    for pred, gold in zip(predictions, references):
        em += max(norm(pred) == norm(g) for g in gold)
        r1 += max(rouge("rouge1", pred, g) for g in gold)
        rl += max(rouge("rougeL", pred, g) for g in gold)
    n = len(references)
    return {k: round(100.0 * v / n, 4) for k, v in {"exact_match": em, "rouge1": r1, "rougeL": rl}.items()}


PAIRS = [
    ("The cat sat", ["the cat sat on the mat"]),
    ("positive", ["Positive"]),
    ("Negative.", ["positive", "negative"]),
    ("", ["yes"]),
    ("He is running to the stores quickly", ["he ran to the store", "running quickly"]),
    ("東京 is big", ["Tokyo is big"]),
    ("1, 2, 3", ["1 2 3"]),
    ("What's the capital of France?", ["What is the capital of France?"]),
]


def test_matches_the_reference_compute_metrics():
    preds, refs = [p for p, _ in PAIRS], [r for _, r in PAIRS]
    assert compute_metrics(preds, refs) == _reference_compute_metrics(preds, refs)
    for p, r in PAIRS:
        assert compute_metrics([p], [r]) == _reference_compute_metrics([p], [r])


def test_registry():
    assert set(METRICS) == {"exact_match", "rouge1", "rougeL"}
    assert all(m.higher_is_better and m.aggregation == "mean" for m in METRICS.values())


def _records():
    # t1 (cls, cat A): 3 instances, all exact; t2 (gen, cat A): 1 wrong; t3 (gen, cat B): 1 half right
    return [
        {"task": "t1", "instance_id": "1", "prediction": "yes", "references": ["Yes"], "category": "A", "kind": "cls", "split": "test"},
        {"task": "t1", "instance_id": "2", "prediction": "no", "references": ["no"], "category": "A", "kind": "cls", "split": "test"},
        {"task": "t1", "instance_id": "3", "prediction": "No!", "references": ["no"], "category": "A", "kind": "cls", "split": "test"},
        {"task": "t2", "instance_id": "1", "prediction": "blue", "references": ["red"], "category": "A", "kind": "gen", "split": "test"},
        {"task": "t3", "instance_id": "1", "prediction": "the cat", "references": ["the cat sat down"], "category": "B",
         "kind": "gen", "split": "test"},
    ]


def test_grouping_pools_instances_like_the_reference():
    m = score_records(_records())
    half = 100 * f_measure(2, 2, 4)  # 66.67
    assert m["split"] == "test" and m["n"] == 5 and m["n_tasks"] == 3 and m["average"] == "instance"
    assert m["exact_match"] == 60.0
    assert m["rougeL"] == pytest.approx(round((300 + 0 + half) / 5, 4))
    assert m["by_task"]["t1"] == {"exact_match": 100.0, "rouge1": 100.0, "rougeL": 100.0, "n": 3, "category": "A", "kind": "cls"}
    assert m["by_task"]["t3"]["rougeL"] == pytest.approx(round(half, 4))
    # category A pools 4 instances (3 right, 1 wrong): 75, not the task mean (100 + 0) / 2 = 50
    assert m["by_category"]["A"]["exact_match"] == 75.0 and m["by_category"]["A"]["n_tasks"] == 2
    assert m["by_kind"]["cls"]["exact_match"] == 100.0 and m["by_kind"]["gen"]["n"] == 2
    assert m["rougeL_cls"] == 100.0 and m["rougeL_gen"] == pytest.approx(round(half / 2, 4))
    assert set(FLAT_METRICS) <= set(m)
    # the reference's grouped metrics: compute_metrics on each group's pooled instances
    recs = _records()
    for cat in ("A", "B"):
        group = [r for r in recs if r["category"] == cat]
        ref = _reference_compute_metrics([r["prediction"] for r in group], [r["references"] for r in group])
        assert {k: m["by_category"][cat][k] for k in ref} == ref


def test_task_average_option():
    m = score_records(_records(), average="task")
    assert m["by_category"]["A"]["exact_match"] == 50.0
    assert m["exact_match"] == pytest.approx(round(100 / 3, 4))
    assert m["by_task"] == score_records(_records())["by_task"]  # per-task scores do not depend on it


def test_records_without_kind_or_category():
    m = score_records([{"task": "t", "prediction": "a", "references": ["a"]}])
    assert m["by_kind"] == {} and list(m["by_category"]) == ["Uncategorized"] and "split" not in m
    assert "rougeL_cls" not in m


def test_roundtrip_through_a_file(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _records()) + "\n")
    assert metrics_from_file(path) == score_records(_records())
    assert "overall" in format_table(metrics_from_file(path)).splitlines()[1]


def test_split_filter(tmp_path):
    path = tmp_path / "predictions.jsonl"
    dev = dict(_records()[0], split="dev", prediction="no")
    path.write_text("".join(json.dumps(r) + "\n" for r in [*_records(), dev]))
    assert "split" not in metrics_from_file(path) and metrics_from_file(path)["n"] == 6
    assert metrics_from_file(path, split="test") == score_records(_records())
    assert metrics_from_file(path, split="dev")["exact_match"] == 0.0
    with pytest.raises(PredictionFileError, match="no predictions of split 'train'"):
        metrics_from_file(path, split="train")


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    ("", "no predictions"),
    ("{not json\n", "invalid JSON"),
    ('{"task": "t", "prediction": "a"}\n', "'references'"),
    ('{"task": "t", "prediction": 3, "references": ["a"]}\n', "'prediction'"),
    ('{"task": "t", "prediction": "a", "references": ["a"], "kind": "other"}\n', "'kind'"),
])
def test_bad_prediction_files(tmp_path, content, message):
    path = tmp_path / "p.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(PredictionFileError, match=message):
        metrics_from_file(path)


def test_read_predictions_keeps_order(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _records()))
    assert [r["instance_id"] for r in read_predictions(path)] == ["1", "2", "3", "1", "1"]
    assert Counter(r["task"] for r in read_predictions(path)) == {"t1": 3, "t2": 1, "t3": 1}
