"""Settings declared once: roles, checks, file values and the run identity all follow the declarations."""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest

from pixelrl.train.config import ROLES, ConfigError, TrainConfig, load_config_file, overlay
from pixelrl.train.config.settings import MAX_ECHO, spec_of


def _other_value(name: str) -> Any:
    """A valid value different from the default, chosen from the setting's declared type."""
    default = getattr(TrainConfig(), name)
    tp = typing.get_type_hints(TrainConfig, include_extras=True)[name]
    while get_origin(tp) is typing.Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) is Literal:
        return next(v for v in get_args(tp) if v != default)
    special = {"ent_coef": "auto", "net_arch": (64, 64), "env_kwargs": {"noise": 10}, "learning_starts": 10}
    if name in special:
        return special[name]
    if default is None:  # an optional setting: a value of its other type
        kind = next(a for a in get_args(tp) if a is not type(None))
        return {int: 2, float: 0.5, str: "x", Path: Path("x")}[kind]
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 1
    if isinstance(default, float):
        return default / 2
    raise AssertionError(f"no test value for {name}")  # a new setting type: extend this helper


def test_every_setting_declares_a_role():
    for field in dataclasses.fields(TrainConfig):
        assert spec_of(field).role in ROLES, field.name
    assert set(TrainConfig.names()) == {f.name for f in dataclasses.fields(TrainConfig)}


@pytest.mark.parametrize("name", TrainConfig.names("experiment", "pixel"))
def test_the_run_identity_changes_with_every_experiment_setting(name):
    base = TrainConfig()
    changed = dataclasses.replace(base, **{name: _other_value(name)})
    assert changed.experiment_hash != base.experiment_hash
    assert changed.run_id != base.run_id and changed.run_name != base.run_name


@pytest.mark.parametrize("name", TrainConfig.names("control", "output", "task"))
def test_control_and_output_settings_do_not_change_the_experiment_hash(name):
    base = TrainConfig()
    value = {"out_dir": Path("elsewhere"), "tag": "mine", "device": "cpu", "threads": 2, "env": "FetchReach-v4",
             "checkpoints_dir": Path("c"), "results_dir": Path("r"), "runs_dir": Path("l")}.get(name)  # fmt: skip
    changed = dataclasses.replace(base, **{name: value if value is not None else _other_value(name)})
    assert changed.experiment_hash == base.experiment_hash


def test_seeds_of_one_experiment_share_the_run_id_and_differ_in_the_name():
    a, b = TrainConfig(seed=0), TrainConfig(seed=1)
    assert a.run_id == b.run_id and a.run_name != b.run_name
    assert TrainConfig(tag="mine").run_id == "mine"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ent_coef": "nan"}, "--ent-coef must be"),
        ({"ent_coef": "auto_xyz"}, "--ent-coef must be"),
        ({"learning_rate": math.inf}, "--learning-rate must be a finite number"),
        ({"learning_rate": 1e30}, r"--learning-rate must be in \(0, 1\]"),
        ({"tau": math.nan}, "--tau must be a finite number"),
        ({"seed": -1}, "--seed must be in"),
        ({"seed": 10**11}, "--seed must be in"),
        ({"threads": 0}, "--threads must be positive"),
        ({"threads": -3}, "--threads must be positive"),
        ({"net_arch": (-5,)}, "--net-arch must be one or more positive layer sizes"),
        ({"net_arch": (0,)}, "--net-arch must be one or more positive layer sizes"),
        ({"net_arch": ()}, "--net-arch must be one or more positive layer sizes"),
        ({"device": "gpu0"}, "--device must be auto, cpu"),
        ({"grad_norm_freq": -1}, "--grad-norm-freq must be >= 0"),
        ({"drq": True, "drq_pad": 100}, "--drq-pad 100 shifts 84-pixel images"),
        ({"drq_pad": 2}, "--drq-pad sets the DrQ shift, which is off"),
        ({"image_size": 2}, "--image-size 2 is not larger than the 12 channels"),
        ({"tag": ".."}, "--tag must be"),
        ({"tag": "a/b"}, "--tag must be"),
        ({"batch_size": 5000, "buffer_size": 1000}, "--batch-size 5000 is larger than --buffer-size 1000"),
        ({"env": "pixelrl/PointReach-v0", "camera": "reach"}, "--camera set the Fetch camera"),
        ({"env": "pixelrl/PointReach-v0", "hide_goal": True}, "--hide-goal set the Fetch camera"),
        ({"env": "pixelrl/PointReach-v0", "antialias": False}, "--no-antialias set the Fetch camera"),
        ({"env_kwargs": {"a": [1, 2]}}, "--env-kwargs must be a JSON object of numbers"),
        # Choice settings built in Python (files and the command line check them when read):
        ({"target_encoder": "bogus"}, r"--target-encoder must be one of \['separate', 'online'\], got 'bogus'"),
        ({"precision": "fp16"}, r"--precision must be one of \['fp32', 'bf16'\], got 'fp16'"),
        ({"precision": "bf16", "full_state": True}, "the image options --precision do not apply"),
    ],
)
def test_validate_refuses_bad_values_with_the_fix(changes, message):
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(TrainConfig(), **changes).validate()


def test_file_values_are_checked_against_the_declared_type():
    config = overlay(
        TrainConfig(),
        {"env-kwargs": {"noise": 220}, "net_arch": [64, 32], "learning_rate": 1, "threads": None, "ent_coef": 0.1},
        source="f",
    )
    assert config.env_kwargs == {"noise": 220} and config.net_arch == (64, 32)
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float) and config.threads is None
    assert config.ent_coef == "0.1"
    for key, value, expected in [
        ("batch_size", 64.0, "is not a valid int"),  # never truncated
        ("batch_size", True, "is not a valid int"),
        ("learning_rate", "1e-3", "is not a valid float"),  # never parsed from a string
        ("learning_rate", math.nan, "is not a finite number"),
        ("net_arch", [64, "a"], "is not a valid list of int"),
        ("env_kwargs", "{}", "is not a valid mapping"),
        ("out_dir", 3, "is not a valid Path"),
        ("goal_mode", "loose", "expected one of"),
    ]:
        with pytest.raises(ConfigError, match=expected):
            overlay(TrainConfig(), {key: value}, source="f")


def test_an_error_never_echoes_a_huge_value():
    with pytest.raises(ConfigError) as info:
        overlay(TrainConfig(), {"env": ["x" * 1000] * 1000}, source="f")
    assert len(str(info.value)) < MAX_ECHO + 200 and "characters" in str(info.value)


def test_yaml_aliases_are_refused_before_they_expand(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]")
    bomb.write_text("\n".join(lines) + "\nseed: *i\n")
    assert bomb.stat().st_size < 600
    with pytest.raises(ConfigError, match=r"YAML aliases \(\*a\) are not allowed"):
        load_config_file(bomb)


def test_config_files_must_be_small_utf8_text(tmp_path):
    binary = tmp_path / "a.toml"
    binary.write_bytes(b"seed = 1\n\xff\xfe")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config_file(binary)
    huge = tmp_path / "b.json"
    huge.write_text("{" + " " * 2_000_000 + "}")
    with pytest.raises(ConfigError, match="a config file is at most"):
        load_config_file(huge)
    nan = tmp_path / "c.yaml"
    nan.write_text("learning_rate: .nan\n")
    with pytest.raises(ConfigError, match="learning_rate = nan is not a finite number"):
        overlay(TrainConfig(), load_config_file(nan), source=str(nan))
