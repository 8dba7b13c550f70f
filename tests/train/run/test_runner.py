"""One run in-process: checkpoints hold what was collected, resume continues, divergence stops with a message."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.save_util import load_from_zip_file

from pixelrl.train.config import ConfigError, TrainConfig
from pixelrl.train.run.artifacts import RunPaths
from pixelrl.train.run.callbacks import NonFiniteLossError
from pixelrl.train.run.checkpoints import find_resume_point
from pixelrl.train.run.preflight import prepared_run
from pixelrl.train.run.runner import train


def _progress(paths: RunPaths) -> list[dict]:
    return [json.loads(line) for line in (paths.log_dir / "progress.jsonl").read_text().splitlines()]


def _parameters(config) -> dict[str, th.Tensor]:
    _, params, _ = load_from_zip_file(RunPaths.of(config).final_model)
    return params["policy"]


def test_a_run_writes_periodic_and_final_checkpoints_with_the_steps_it_made(tiny):
    config = tiny(total_steps=300, checkpoint_freq=100)
    result = train(config)
    paths = result.paths
    assert result.num_timesteps == 300 and result.eval is None
    assert sorted(p.name for p in paths.periodic_dir.glob("*.zip")) == ["step100.zip", "step200.zip", "step300.zip"]
    meta = json.loads(paths.final_meta.read_text())
    assert meta["num_timesteps"] == 300 and meta["tag"] == config.run_id and meta["readable_tag"] == config.run_tag
    assert TrainConfig.from_dict(meta["config"]) == config


def test_every_checkpoint_holds_every_transition_collected_before_it(tiny):
    config = tiny(total_steps=300, checkpoint_freq=100, save_replay_buffer=True)
    paths = RunPaths.of(config)
    seen: dict[int, int] = {}

    class ReadBack(BaseCallback):  # runs right after the checkpoint callback, before the next step
        def _on_rollout_start(self) -> None:
            _, meta, buffer_path = paths.periodic(self.num_timesteps)
            if meta.is_file() and self.num_timesteps not in seen:
                with buffer_path.open("rb") as handle:
                    seen[self.num_timesteps] = pickle.load(handle).pos * config.n_envs

        def _on_step(self) -> bool:
            return True

    train(config, extra_callbacks=[ReadBack()])
    assert seen == {100: 100, 200: 200}  # no transition lost to the save
    # Only the newest buffer is kept; the older checkpoints stay complete, as model-only ones.
    point = find_resume_point(paths)
    assert point.skipped == [] and point.checkpoint is not None and point.checkpoint.num_timesteps == 300
    assert json.loads(paths.periodic(100)[1].read_text())["replay_buffer"] is None


def test_extending_a_finished_run_resumes_from_the_checkpoint_with_its_buffer(tiny):
    config = tiny(total_steps=300, checkpoint_freq=200, save_replay_buffer=True)
    paths = train(config).paths
    assert (paths.periodic_dir / "step300.buffer.pkl").is_file()  # the final step keeps its buffer
    extended = config.replace(total_steps=500, resume=True)
    with prepared_run(extended) as run:
        assert run.resume_from is not None and run.resume_from.buffer == paths.periodic(300)[2]
        assert run.model.replay_buffer.pos * config.n_envs == 300
    result = train(extended)
    assert result.num_timesteps == 500
    with paths.periodic(500)[2].open("rb") as handle:
        assert pickle.load(handle).pos * config.n_envs == 500
    assert [p.name for p in paths.periodic_dir.glob("*.buffer.pkl")] == ["step500.buffer.pkl"]


def test_gradient_norm_measurements_do_not_change_training(tiny, tmp_path):
    with_norms = tiny(grad_norm_freq=40, out_dir=tmp_path / "a")
    without = tiny(grad_norm_freq=0, out_dir=tmp_path / "b")
    logged = train(with_norms)
    train(without)
    assert any("encoder/grad_norm_critic" in row for row in _progress(logged.paths)), "no measurement was made"
    a, b = _parameters(with_norms), _parameters(without)
    assert a.keys() == b.keys()
    for key in a:
        assert th.equal(a[key], b[key]), key


def test_a_diverging_run_stops_where_it_diverges_and_names_the_last_checkpoint(tiny):
    config = tiny(total_steps=2000, checkpoint_freq=150, ent_coef="1e38", learning_starts=200)
    with pytest.raises(NonFiniteLossError, match=r"at step [\d,]+\. The last good checkpoint is .*step150\.zip"):
        train(config)


def test_a_second_writer_is_refused_while_a_run_holds_its_folder(tiny):
    config = tiny()
    with prepared_run(config), pytest.raises(ConfigError, match="is being written by another process"):
        train(config)
    assert not RunPaths.of(config).final_model.exists()
    train(config)  # the lock is gone with its holder


def test_resume_without_a_complete_checkpoint_starts_the_run_over(tiny, capsys):
    config = tiny(total_steps=200)
    paths = RunPaths.of(config)
    paths.log_dir.mkdir(parents=True)
    (paths.log_dir / "progress.jsonl").write_text("")  # a run killed before its first checkpoint
    with pytest.raises(ConfigError, match=r"no complete checkpoint .*--resume starts it over"):
        train(config)
    result = train(config.replace(resume=True))
    assert result.num_timesteps == 200
    assert "has no complete checkpoint yet; it starts over from step 0" in capsys.readouterr().err


def test_the_parameters_check_catches_a_nan_before_the_policy_acts(tiny):
    from pixelrl.train.run.callbacks import WatchdogCallback

    config = tiny(total_steps=150)
    with prepared_run(config) as run:
        watchdog = WatchdogCallback(lambda: "none yet")
        watchdog.init_callback(run.model)
        watchdog.on_rollout_start()  # finite: passes
        next(iter(run.model.policy.actor.mu.parameters())).data[0, 0] = np.nan
        with pytest.raises(NonFiniteLossError, match=r"network parameter actor\.mu\.weight became non-finite"):
            watchdog.on_rollout_start()


def test_normalization_statistics_travel_with_checkpoints_eval_and_resume(tiny):
    from stable_baselines3.common.vec_env import VecNormalize

    from pixelrl.train.run.evaluate import evaluate_checkpoint
    from pixelrl.train.run.normalization import statistics_path

    config = tiny(normalize=True, total_steps=300, checkpoint_freq=100, goal_mode="strict")
    paths = train(config).paths
    stats = statistics_path(paths.final_model)
    with stats.open("rb") as handle:
        saved = pickle.load(handle)
    assert isinstance(saved, VecNormalize) and sorted(saved.norm_obs_keys) == [
        "achieved_goal", "desired_goal", "proprioception",
    ]  # fmt: skip
    assert saved.obs_rms["desired_goal"].count > 300  # updated from every collected observation
    assert json.loads(paths.final_meta.read_text())["vec_normalize"] == stats.name
    assert statistics_path(paths.periodic(200)[0]).is_file()
    result = evaluate_checkpoint(paths.final_model, paths.final_meta, 2, None)
    assert result["episodes"] == 2
    with prepared_run(config.replace(total_steps=400, resume=True)) as run:
        restored = run.model.get_vec_normalize_env()
        assert restored is not None and restored.training
        np.testing.assert_array_equal(restored.obs_rms["desired_goal"].mean, saved.obs_rms["desired_goal"].mean)
    statistics_path(paths.periodic(300)[0]).unlink()
    stats.unlink()  # a checkpoint without its statistics is not resumed from
    with prepared_run(config.replace(total_steps=400, resume=True)) as run:
        assert run.resume_from is not None and run.resume_from.num_timesteps == 200
        assert any("normalization statistics) is missing" in note for note in run.notes)


def test_periodic_evaluations_log_the_learning_curve_and_can_stop_the_run(tiny):
    config = tiny(total_steps=600, eval_freq=100, eval_freq_episodes=2)
    paths = train(config).paths
    rows = [r for r in _progress(paths) if "eval/success_rate" in r]
    assert [r["time/total_timesteps"] for r in rows] == [100, 200, 300, 400, 500, 600]
    minutes = [r["eval/train_minutes"] for r in rows]
    assert minutes == sorted(minutes) and minutes[0] > 0
    assert all(0.0 <= r["eval/success_rate"] <= 1.0 for r in rows)
    stopping = tiny(total_steps=600, eval_freq=100, eval_freq_episodes=2, out_dir=paths.log_dir.parents[3] / "s")
    with pytest.MonkeyPatch.context() as patch:  # every evaluation succeeds: the run stops after two in a row
        patch.setattr("pixelrl.train.run.runner.evaluate_policy_episodes", lambda *a: {
            "success_rate": 1.0, "mean_final_goal_distance": 0.0})  # fmt: skip
        stopped = train(stopping.replace(stop_at_success=0.9))
    assert stopped.num_timesteps == 200 + stopping.n_envs  # stops at the step after the second evaluation
    budget = train(tiny(total_steps=100_000, max_train_minutes=0.05, out_dir=paths.log_dir.parents[3] / "budget"))
    assert budget.num_timesteps < 100_000


def test_a_replay_buffer_from_another_run_is_refused_before_training(tiny, tmp_path):
    other = tiny(total_steps=200, checkpoint_freq=200, save_replay_buffer=True, frame_stack=3,
                 out_dir=tmp_path / "other")  # fmt: skip
    config = tiny(total_steps=200, checkpoint_freq=200, save_replay_buffer=True)
    train(other)
    train(config)
    mine = RunPaths.of(config).periodic(200)[2]
    mine.write_bytes(RunPaths.of(other).periodic(200)[2].read_bytes())  # same size would pass; content differs
    meta_path = RunPaths.of(config).periodic(200)[1]
    meta = json.loads(meta_path.read_text())
    meta["replay_buffer_bytes"] = mine.stat().st_size
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(
        ConfigError, match=r"step200\.buffer\.pkl was saved for observations .* It belongs to another run"
    ):
        train(config.replace(total_steps=400, resume=True))


def test_a_diverged_run_exits_1_with_the_step_and_the_last_checkpoint(tmp_path, capsys):
    from pixelrl.train.cli import main

    status = main(["train", "--env", "pixelrl/PointReach-v0", "--image-size", "16", "--frame-stack", "2",
                   "--n-envs", "1", "--batch-size", "8", "--buffer-size", "2000", "--learning-starts", "150",
                   "--checkpoint-freq", "100", "--total-steps", "1000", "--ent-coef", "1e38", "--threads", "1",
                   "--no-progress", "--out-dir", str(tmp_path)])  # fmt: skip
    assert status == 1
    err = capsys.readouterr().err
    assert "training stopped: the network parameter" in err and "The last good checkpoint is" in err
    assert "step100.zip" in err
