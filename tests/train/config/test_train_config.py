from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pixelrl.train.config import PRESETS, ConfigError, TrainConfig, load_config_file, overlay, resolve_base


def test_defaults_are_the_chapters_working_configuration():
    config = TrainConfig()
    assert config.routing == "drqv2" and not config.drq and config.spatial_softmax
    assert (config.learning_rate, config.batch_size, config.gamma, config.tau) == (1e-4, 256, 0.95, 0.005)
    assert (config.learning_starts, config.gradient_steps, config.n_envs, config.ent_coef) == (1000, 1, 4, "0.05")
    assert (config.buffer_size, config.frame_stack, config.num_filters, config.flat_features_dim) == (
        200_000,
        4,
        32,
        50,
    )
    assert config.run_tag == "manip_noDrQ_criticEnc"


def test_every_preset_has_its_own_tag():
    chapter = ("step0", "step1", "step2", "step4", "full-state")
    tags = {name: resolve_base(name, None).run_tag for name in chapter}
    assert len({resolve_base(name, None).run_id for name in PRESETS}) == len(PRESETS)  # recipes included
    assert tags == {
        "step0": "nature_flat_noDrQ_sharedEnc_noProprio",
        "step1": "manip_noDrQ_sharedEnc",
        "step2": "manip_noDrQ_criticEnc",
        "step4": "manip_drq4_criticEnc",
        "full-state": "fullstate",
    }
    step2 = resolve_base("step2", None)
    assert (step2.buffer_size, step2.her_n_sampled_goal, step2.total_steps) == (500_000, 8, 5_000_000)


def test_tag_changes_with_every_experiment_setting():
    base = TrainConfig()
    changes = {
        "encoder": "nature", "spatial_softmax": False, "drq": True, "proprio": False, "goal_mode": "strict",
        "image_size": 64, "frame_stack": 3, "camera": "close", "hide_goal": True,
    }  # fmt: skip
    tags = {dataclasses.replace(base, **{k: v}).run_tag for k, v in changes.items()}
    assert len(tags) == len(changes) and base.run_tag not in tags
    assert dataclasses.replace(base, critic_encoder=False).run_tag == "manip_noDrQ_sepEnc"


def test_round_trip_through_dict():
    config = dataclasses.replace(TrainConfig(), seed=3, net_arch=(64, 32), out_dir=Path("/tmp/x"), tag="mine")
    assert TrainConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"total_steps": 0}, "--total-steps must be positive"),
        ({"gamma": 1.5}, r"--gamma must be in \(0, 1\]"),
        ({"ent_coef": "-1"}, "--ent-coef must be"),
        ({"share_encoder": True}, "contradicts the default --critic-encoder"),
        ({"full_state": True, "drq": True}, "the image options --drq do not apply"),
        ({"tag": "a/b"}, "--tag must be"),
    ],
)
def test_validate_rejects_with_the_fix(changes, message):
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(TrainConfig(), **changes).validate()


def test_overrides_are_type_checked_and_accept_dashes():
    config = overlay(TrainConfig(), {"total-steps": 10, "ent_coef": 0.1, "net_arch": [8]}, source="test")
    assert (config.total_steps, config.ent_coef, config.net_arch) == (10, "0.1", (8,))
    with pytest.raises(ConfigError, match="test: total_steps = '10' is not a valid int"):
        overlay(TrainConfig(), {"total_steps": "10"}, source="test")
    with pytest.raises(ConfigError, match=r"vec_env = 'threads'; expected one of \['dummy', 'subproc'\]"):
        overlay(TrainConfig(), {"vec_env": "threads"}, source="test")
    with pytest.raises(ConfigError, match="unknown setting 'lr'"):
        overlay(TrainConfig(), {"lr": 1.0}, source="test")


def test_config_files(tmp_path):
    (tmp_path / "a.toml").write_text("seed = 4\n")
    assert load_config_file(tmp_path / "a.toml") == {"seed": 4}
    (tmp_path / "b.ini").write_text("seed=4\n")
    with pytest.raises(ConfigError, match=r"use a \.toml, \.yaml/\.yml or \.json file"):
        load_config_file(tmp_path / "b.ini")
    (tmp_path / "c.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config_file(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "missing.toml")


def test_algorithm_follows_the_routing_and_shows_in_the_tag():
    base = TrainConfig()
    assert base.algorithm == "drqv2sac"
    assert dataclasses.replace(base, critic_encoder=False).algorithm == "sac"
    assert dataclasses.replace(base, full_state=True).algorithm == "sac"
    assert dataclasses.replace(base, algo="sac").run_tag == "manip_noDrQ_criticEnc_sb3sac"
    assert dataclasses.replace(base, target_encoder="online").run_tag == "manip_noDrQ_criticEnc_tgtOnline"
    with pytest.raises(ConfigError, match="--algo drqv2sac trains the encoder through the critic"):
        dataclasses.replace(base, algo="drqv2sac", critic_encoder=False).validate()


@pytest.mark.parametrize(
    ("device", "frames_device", "buffer", "expected"),
    [
        ("cuda", "auto", "compact", "cuda"),  # training on a GPU: the frame ring lives there
        ("cuda", "host", "compact", None),
        ("cpu", "auto", "compact", None),
        ("cuda", "auto", "sb3", None),  # SB3's layout has no frame ring
    ],
)
def test_compact_buffer_keeps_frames_on_the_training_gpu_unless_told_otherwise(
    monkeypatch, device, frames_device, buffer, expected
):
    import torch

    from pixelrl.train.run import factory

    monkeypatch.setattr(factory, "get_device", lambda name: torch.device(device))
    config = dataclasses.replace(TrainConfig(), frames_device=frames_device, buffer=buffer)
    _, kwargs = factory.buffer_setup(config)
    got = kwargs.get("frames_device")
    assert (None if got is None else got.type) == expected


def test_recipes_are_presets_and_flags_and_files_go_over_them(tmp_path):
    from pixelrl.train.cli import parse_train_args
    from pixelrl.train.config import RECIPES

    for name, settings in RECIPES.items():
        config = resolve_base(name, None)
        config.validate()
        for key, value in settings.items():
            expected = tuple(value) if isinstance(value, list) else value
            assert getattr(config, key) == expected, (name, key)
    assert resolve_base("fetchreach", None).proprio and resolve_base("fetchreach", None).goal_mode == "strict"
    cfg = tmp_path / "run.toml"
    cfg.write_text('preset = "fetchreach"\nbatch_size = 64\n')
    config = parse_train_args(["--config", str(cfg), "--learning-rate", "3e-4"])
    assert (config.env, config.batch_size, config.learning_rate, config.normalize) == ("FetchReach-v4", 64, 3e-4, True)
