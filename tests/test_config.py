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
