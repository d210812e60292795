from pathlib import Path

import pytest

from activeit.config import Config, load_config, parse_override
from activeit.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "src" / "activeit" / "configs"


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_are_the_papers_setting():
    cfg = Config()
    s = cfg.scoring
    assert (s.instances, s.perturbations, s.drop_rate, s.target, s.label, s.absolute, s.aggregate) == (
        10, 10, 0.2, "both", "predicted", True, "mean")
    assert cfg.prompt.num_pos_examples == 2 and cfg.prompt.max_source_length == 1024
    assert cfg.training.instances_per_task == 200
    assert cfg.strategies == ["high_prompt_uncertainty"] and cfg.seeds == [42]


def test_yaml_then_overrides(tmp_path):
    path = write(tmp_path, "seed: 3\nscoring:\n  perturbations: 4\n")
    cfg = load_config(path, ["scoring.perturbations=7", "experiment.seeds=[1, 2]", "model.name=foo/bar"])
    assert cfg.seed == 3
    assert cfg.scoring.perturbations == 7
    assert cfg.seeds == [1, 2]
    assert cfg.model.name == "foo/bar"


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        ("scoring:\n  perturbation: 3\n", [], "unknown config key 'scoring.perturbation' (did you mean 'scoring.perturbations'?)"),
        ("sede: 3\n", [], "unknown config key 'sede'"),
        ("", ["scoring.nope=1"], "unknown config key 'scoring.nope'"),
        ("scoring:\n  target: instruction\n", [], "scoring.target"),
        ("scoring:\n  drop_rate: 2\n", [], "scoring.drop_rate"),
        ("seed: [1\n", [], "invalid YAML at line"),
        ("- a\n- b\n", [], "must be a mapping"),
        ("", ["seed"], "expected KEY=VALUE"),
        ("", ["seed.x=1"], "'seed' is not a section"),
        ("experiment:\n  seeds: [1, 1]\n", [], "without repeats"),
    ],
)
def test_errors_name_the_key(tmp_path, text, overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), overrides)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_engine_section(tmp_path):
    cfg = load_config(write(tmp_path, ""), ["engine.name=hf", "engine.workers=1"])
    assert (cfg.engine.name, cfg.engine.workers) == ("hf", 1)
    assert Config().engine.name == "auto"
    two = load_config(write(tmp_path, ""), ["scoring.batch_size=16"])
    assert two.scoring.result_inputs() == {**Config().scoring.result_inputs(), "batch_size": 16}
    with pytest.raises(ConfigError, match="engine.workers"):
        load_config(write(tmp_path, ""), ["engine.workers=0"])
    with pytest.raises(ConfigError, match="unknown config key 'scoring.workers'"):
        load_config(write(tmp_path, ""), ["scoring.workers=2"])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.yaml")


def test_parse_override_yaml_values():
    assert parse_override("a.b=[1,2]") == (["a", "b"], [1, 2])
    assert parse_override("a=null") == (["a"], None)
    assert parse_override("a=x=y") == (["a"], "x=y")


def test_round_trip_yaml(tmp_path):
    cfg = load_config(None, ["rounds.count=2", "strategy.cls_ratio=0.356"])
    again = load_config(write(tmp_path, cfg.to_yaml()))
    assert again == cfg


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_opens_with_its_command(path):
    cfg = load_config(path)
    assert path.read_text().splitlines()[0].startswith("# activeit ")
    assert cfg.strategies


def test_configs_symlink_points_at_package_configs():
    root = Path(__file__).resolve().parents[1]
    assert sorted(p.name for p in (root / "configs").glob("*.yaml")) == sorted(p.name for p in CONFIG_DIR.glob("*.yaml"))


def test_rounds_sizes_set_count_and_picks():
    from activeit.config import RoundsConfig

    rounds = RoundsConfig(sizes=[1000, 2000, 4000, 8000, 16000])
    assert rounds.count == 5 and rounds.initial_size() == 1000
    assert rounds.picks(1000) == [1000, 2000, 4000, 8000]
    assert RoundsConfig(count=3, chunk=4).picks(9) == [4, 4] and RoundsConfig(count=3).picks(9) == [9, 9]
    assert RoundsConfig(count=1).picks(9) == [] and RoundsConfig(count=3, initial=5).initial_size() == 5
    assert RoundsConfig(sizes=[4, 8, 12], count=3, initial=4).picks(4) == [4, 4]


@pytest.mark.parametrize(
    "text, message",
    [
        ("rounds:\n  sizes: [4, 8]\n  chunk: 2\n", "not both"),
        ("rounds:\n  sizes: [4, 4, 8]\n", "strictly increasing"),
        ("rounds:\n  sizes: []\n", "strictly increasing"),
        ("rounds:\n  sizes: [0, 4]\n", "strictly increasing"),
        ("rounds:\n  sizes: [4, 8]\n  count: 3\n", "rounds.count is 3 but rounds.sizes gives 2 rounds"),
        ("rounds:\n  sizes: [4, 8]\n  initial: 3\n", r"rounds.initial \(3\) must equal rounds.sizes\[0\] \(4\)"),
        ("data:\n  held_out: 5\n", "data.held_out and data.dev are drawn only with data.split: auto"),
        ("data:\n  split: x\n  dev: 5\n", "split 'x' gives its own dev and test lists"),
    ],
)
def test_rounds_and_auto_split_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_sizes_round_trip_through_the_saved_config(tmp_path):
    cfg = load_config(write(tmp_path, "data:\n  split: auto\n  held_out: 3\nrounds:\n  sizes: [4, 8, 12]\n"))
    assert load_config(write(tmp_path, cfg.to_yaml())) == cfg
    assert load_config(None, ["rounds.sizes=[2, 3]"]).rounds.count == 2


def test_new_scoring_options_default_to_the_reference():
    s = Config().scoring
    assert s.perturb_input is False and s.redraw_identical == 0
