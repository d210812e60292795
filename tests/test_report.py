from types import SimpleNamespace

from activeit.report import _cube_ticks, curve_points, plot_learning_curves, plot_task_map, summary_markdown


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
