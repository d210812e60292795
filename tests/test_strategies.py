from dataclasses import dataclass

import numpy as np
import pytest

from activeit.config import load_config
from activeit.errors import ConfigError
from activeit.strategies import (
    STRATEGIES,
    check_scores_available,
    check_strategy_names,
    get_strategy,
    register_strategy,
    select,
)
from activeit.scores import regions


@dataclass
class T:
    name: str
    kind: str
    category: str
    prompt_uncertainty: float | None = None
    prediction_probability: float | None = None
    perplexity: float | None = None


# name, kind, category, PU, PP, perplexity
POOL = [
    T("a", "cls", "Sentiment", 0.30, 0.90, 1.2),
    T("b", "cls", "Sentiment", 0.05, 0.95, 1.1),
    T("c", "gen", "QA", 0.20, 0.40, 3.0),
    T("d", "gen", "QA", 0.01, 0.20, 5.0),
    T("e", "gen", "Summ", 0.10, 0.60, 2.0),
    T("f", "cls", "Entail", 0.02, 0.50, 1.5),
    T("g", "gen", "Summ", 0.25, 0.10, 8.0),
    T("h", "cls", "Entail", 0.15, 0.70, 1.3),
]
SCORES = {t.name: t for t in POOL}


def pick(name, k, seed=0, **kw):
    return select(name, POOL, SCORES, k, np.random.default_rng(seed), **kw)


@pytest.mark.parametrize(
    "name, k, expected",
    [
        ("high_prompt_uncertainty", 3, ["a", "g", "c"]),
        ("low_prompt_uncertainty", 3, ["d", "f", "b"]),
        ("ambiguous", 2, ["a", "g"]),
        ("high_perplexity", 2, ["g", "d"]),
        ("low_perplexity", 2, ["b", "a"]),
        # PU median = 0.125 -> low PU: b, d, e, f; by PP: b .95, e .60, f .50, d .20
        ("easy", 2, ["b", "e"]),
        ("difficult", 2, ["d", "f"]),
    ],
)
def test_score_strategies_hand_computed(name, k, expected):
    assert pick(name, k) == expected


def test_easy_fills_from_the_rest_when_low_pu_runs_out():
    assert pick("easy", 6) == ["b", "e", "f", "d", "a", "h"]


def test_merge_rank():
    # floor(4 * 0.5) = 2 from PU high (a, g), then PP high skipping duplicates: b .95, a(dup), h .70
    assert pick("merge_rank", 4, options={"rate": 0.5}) == ["a", "g", "b", "h"]
    # k 4, rate 0.3 -> floor(1.2) = 1 from PU low (d), then PP low: g .10, d(dup), c .40, f .50
    assert pick("merge_rank", 4, options={"rate": 0.3, "pu_order": "low", "pp_order": "low"}) == ["d", "g", "c", "f"]
    # k 3, rate 0.3 -> floor(0.9) = 0 from PU: all from PP low
    assert pick("merge_rank", 3, options={"rate": 0.3, "pu_order": "low", "pp_order": "low"}) == ["g", "d", "c"]


def test_sum_rank():
    # ascending PU ranks: d0 f1 b2 e3 h4 c5 g6 a7 ; ascending PP ranks: g0 d1 c2 f3 e4 h5 a6 b7
    # sums: a13 b9 c7 d1 e7 f4 g6 h9 -> high: a, then the b/h tie (9) goes to the higher PU: h .15 > b .05
    assert pick("sum_rank", 3) == ["a", "h", "b"]
    # low: d1 f4 g6, then the c/e tie (7) goes to the lower PU: e .10 < c .20
    assert pick("sum_rank", 5, options={"order": "low"}) == ["d", "f", "g", "e", "c"]
    # reverse_pp: PP descending ranks b0 a1 h2 e3 f4 c5 d6 g7 -> sums a8 b2 c10 d6 e6 f5 g13 h6
    assert pick("sum_rank", 2, options={"reverse_pp": True}) == ["g", "c"]
    # the three-way tie at 6 (d .01, e .10, h .15): higher PU first for high, lower first for low
    assert pick("sum_rank", 6, options={"reverse_pp": True}) == ["g", "c", "a", "h", "e", "d"]
    assert pick("sum_rank", 5, options={"reverse_pp": True, "order": "low"}) == ["b", "f", "d", "e", "h"]


def test_sum_rank_ties_by_name_option():
    assert pick("sum_rank", 3, options={"sum_rank_ties": "name"}) == ["a", "b", "h"]
    assert pick("sum_rank", 5, options={"order": "low", "sum_rank_ties": "name"}) == ["d", "f", "g", "c", "e"]


def _reference_sum_rank(pu, pp, chunk, select_high, reverse_std):
    """TLAL_utils.PI_Std_Select's SumRank branch, restated (stable sorts, then reverse())."""
    mean_sorted = [t for t, _ in sorted(pu.items(), key=lambda x: x[1])]
    std_sorted = [t for t, _ in sorted(pp.items(), key=lambda x: x[1])]
    if reverse_std:
        std_sorted.reverse()
    ranks = {t: i for i, t in enumerate(mean_sorted)}
    for i, t in enumerate(std_sorted):
        ranks[t] += i
    ordered = [t for t, _ in sorted(ranks.items(), key=lambda x: x[1])]
    if select_high:
        ordered.reverse()
    return ordered[:chunk]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("order, reverse_pp", [("high", False), ("low", False), ("high", True), ("low", True)])
def test_sum_rank_matches_the_reference_sort(seed, order, reverse_pp):
    rng = np.random.default_rng(seed)
    # distinct PU and PP values (the reference breaks equal scores by file order), many equal rank sums
    names = [f"task{i:02d}" for i in range(12)]
    pu = dict(zip(names, rng.permutation(12) / 100))
    pp = dict(zip(names, rng.permutation(12) / 100))
    pool = [T(n, "gen", "X", pu[n], pp[n]) for n in names]
    scores = {t.name: t for t in pool}
    got = select("sum_rank", pool, scores, 7, np.random.default_rng(0), options={"order": order, "reverse_pp": reverse_pp})
    assert got == _reference_sum_rank(pu, pp, 7, order == "high", reverse_pp)


def test_random_category_takes_one_per_category_first():
    picked = pick("random_category", 4, seed=3)
    assert len({SCORES[n].category for n in picked}) == 4
    picked = pick("random_category", 6, seed=3)
    assert len(picked) == 6 and len({SCORES[n].category for n in picked}) == 4


def test_random_kind_first():
    assert {SCORES[n].kind for n in pick("random_cls", 4)} == {"cls"}
    cls_then_gen = pick("random_cls", 6)
    assert [SCORES[n].kind for n in cls_then_gen] == ["cls"] * 4 + ["gen"] * 2
    assert {SCORES[n].kind for n in pick("random_gen", 4)} == {"gen"}


def test_random_is_seeded():
    assert pick("random", 4, seed=1) == pick("random", 4, seed=1)
    assert len({tuple(pick("random", 4, seed=s)) for s in range(5)}) > 1


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("k", [1, 3, 8])
def test_every_strategy_returns_k_distinct_pool_members_deterministically(name, k):
    a = pick(name, k, seed=7)
    assert len(a) == k == len(set(a))
    assert set(a) <= set(SCORES)
    assert a == pick(name, k, seed=7)


def test_cls_ratio_wrapper_counts():
    picked = pick("high_prompt_uncertainty", 4, cls_ratio=0.356)
    # int(4 * 0.356) = 1 cls (the highest-PU cls: a), 3 gen (g, c, e)
    assert picked == ["a", "g", "c", "e"]
    picked = pick("random", 5, cls_ratio=0.5)
    assert [SCORES[n].kind for n in picked].count("cls") == 2
    # gen runs out (4 gen) -> cls tops up
    picked = pick("low_perplexity", 7, cls_ratio=0.0)
    assert sorted(SCORES[n].kind for n in picked).count("gen") == 4 and len(picked) == 7


def test_pool_smaller_than_k_takes_all_with_warning(caplog):
    small = POOL[:3]
    with caplog.at_level("WARNING"):
        picked = select("high_prompt_uncertainty", small, SCORES, 5, np.random.default_rng(0))
    assert sorted(picked) == ["a", "b", "c"]
    assert "fewer than the 5 asked for" in caplog.text


def test_unknown_strategy_suggests():
    with pytest.raises(ConfigError, match="did you mean 'high_perplexity'"):
        get_strategy("high_perplexty")


def test_missing_scores_is_a_clear_error():
    bare = [T(t.name, t.kind, t.category) for t in POOL]
    with pytest.raises(ConfigError, match="needs prompt_uncertainty"):
        check_scores_available("high_prompt_uncertainty", bare)
    check_scores_available("random", bare)


def test_config_check_catches_uncomputed_scores():
    cfg = load_config(None, ["experiment.strategies=[high_perplexity, random]", "scoring.compute=[prompt_uncertainty]"])
    with pytest.raises(ConfigError, match="need scores perplexity"):
        check_strategy_names(cfg)
    check_strategy_names(load_config(None, ["experiment.strategies=[merge_rank]", "scoring.compute=[prompt_uncertainty]"]))


def test_user_registered_strategy_gets_declared_options():
    @register_strategy("test_alphabetical_tail")
    def tail(pool, scores, k, rng, *, order="high"):
        names = sorted(t.name for t in pool)
        return (names[::-1] if order == "high" else names)[:k]

    try:
        assert pick("test_alphabetical_tail", 2, options={"order": "low", "rate": 0.9}) == ["a", "b"]
        assert pick("test_alphabetical_tail", 2) == ["h", "g"]
    finally:
        del STRATEGIES["test_alphabetical_tail"]


def test_regions_rule():
    labels = regions({t.name: t.prompt_uncertainty for t in POOL}, {t.name: t.prediction_probability for t in POOL})
    # PU median .125: a c g h ambiguous; PP median .55: b e easy, d f difficult
    assert labels == {"a": "ambiguous", "c": "ambiguous", "g": "ambiguous", "h": "ambiguous",
                      "b": "easy", "e": "easy", "d": "difficult", "f": "difficult"}
