from types import SimpleNamespace

from activeit.report import _cube_ticks, curve_points, plot_judged, plot_learning_curves, plot_task_map, summary_markdown


def row(strategy, seed, rnd, n, test, cls=None):
    m = {"rougeL": test, "rougeL_cls": cls if cls is not None else test, "rougeL_gen": test / 2, "exact_match": test / 3,
         "by_category": {"Sentiment": {"rougeL": test}}}
    return {"strategy": strategy, "seed": seed, "round": rnd, "n_train_tasks": n, "test": m, "dev": m}


ROWS = [row("random", 1, 0, 4, 10.0), row("random", 2, 0, 4, 20.0), row("random", 1, 1, 8, 30.0),
        row("random", 2, 1, 8, 50.0), row("high_prompt_uncertainty", 1, 0, 4, 10.0),
        row("high_prompt_uncertainty", 1, 1, 8, 60.0)]


def test_curve_points_mean_and_std_over_seeds():
    pts = curve_points(ROWS, "test", "rougeL")
    assert pts["random"] == [(4.0, 15.0, 5.0, 2), (8.0, 40.0, 10.0, 2)]
    assert pts["high_prompt_uncertainty"][1] == (8.0, 60.0, 0.0, 1)


def test_summary_markdown_tables():
    text = summary_markdown(ROWS)
    assert "| random | 1 | 8 | test | 40.00 ± 10.00 | 40.00 ± 10.00 | 20.00 ± 5.00 | 13.33 ± 3.33 |" in text
    assert "| high_prompt_uncertainty | 1 | 8 | test | 60.00 |" in text
    assert "## Test ROUGE-L by category, round 1" in text
    assert "| Sentiment | 60.00 | 40.00 ± 10.00 |" in text


def test_plots_are_written(tmp_path):
    plot_learning_curves(ROWS, tmp_path / "curves.png")
    scores = {f"t{i}": SimpleNamespace(prompt_uncertainty=0.01 * i, prediction_probability=0.1 * i,
                                       region=["ambiguous", "easy", "difficult"][i % 3]) for i in range(1, 9)}
    plot_task_map(scores, tmp_path / "map.png", picked={"t8"}, annotate=2)
    for name in ("curves.png", "map.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_cube_ticks_are_increasing_and_cover_the_range():
    ticks = _cube_ticks(0.19)
    assert ticks[0] == 0 and ticks == sorted(set(ticks)) and 0.1 < ticks[-1] <= 0.2


def judged(strategy, seed, rnd, n, wins, ties, losses):
    r = row(strategy, seed, rnd, n, 10.0)
    r["judge"] = {"wins": wins, "ties": ties, "losses": losses, "invalid": 0, "n": wins + ties + losses,
                  "wins_minus_losses": wins - losses, "win_rate": wins / (wins + ties + losses), "against": "random",
                  "judge": "tiny"}
    return r


# two seeds of high_prompt_uncertainty against random, 10 questions each; round 0 is not judged
JUDGED = [row("random", 1, 0, 4, 10.0), row("random", 2, 0, 4, 10.0), row("random", 1, 1, 8, 10.0),
          row("random", 2, 1, 8, 10.0), row("high_prompt_uncertainty", 1, 0, 4, 10.0),
          row("high_prompt_uncertainty", 2, 0, 4, 10.0),
          judged("high_prompt_uncertainty", 1, 1, 8, 5, 3, 2), judged("high_prompt_uncertainty", 2, 1, 8, 2, 2, 6),
          judged("high_prompt_uncertainty", 1, 2, 12, 4, 4, 2), judged("high_prompt_uncertainty", 2, 2, 12, 6, 4, 0)]


def test_judged_points_mean_and_std_over_seeds():
    # round 1: wins − losses 3 and −4 → mean −0.5, std 3.5; win rate 0.5 and 0.2 → 0.35 ± 0.15
    # round 2: 2 and 6 → 4 ± 2; win rate 0.4 and 0.6 → 0.5 ± 0.1
    wml = curve_points(JUDGED, "judge", "wins_minus_losses")
    assert list(wml) == ["high_prompt_uncertainty"]
    assert wml["high_prompt_uncertainty"] == [(8.0, -0.5, 3.5, 2), (12.0, 4.0, 2.0, 2)]
    rate = curve_points(JUDGED, "judge", "win_rate")["high_prompt_uncertainty"]
    assert [(x, round(m, 6), round(s, 6), n) for x, m, s, n in rate] == [(8.0, 0.35, 0.15, 2), (12.0, 0.5, 0.1, 2)]


def test_summary_markdown_judged_table(tmp_path):
    text = summary_markdown(JUDGED)
    assert "## Judged against random" in text and "on 10 questions, judged by tiny" in text
    assert "| high_prompt_uncertainty | 1 | 8 | -0.50 ± 3.50 | 35.00 ± 15.00 | 3.50 ± 1.50 | 2.50 ± 0.50 | 4.00 ± 2.00 |" in text
    assert "| high_prompt_uncertainty | 2 | 12 | 4.00 ± 2.00 | 50.00 ± 10.00 |" in text
    assert "| random | 1 | 8 | -" not in text
    assert "Judged" not in summary_markdown(ROWS)
    plot_judged(JUDGED, tmp_path / "judged.png")
    assert (tmp_path / "judged.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
