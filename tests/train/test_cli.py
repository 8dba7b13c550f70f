"""pixelrl-train end to end, through subprocesses (as a user runs it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pixelrl.train.cli import parse_train_args

TINY = [
    "--env", "pixelrl/PointReach-v0", "--image-size", "16", "--frame-stack", "2", "--n-envs", "2",
    "--batch-size", "8", "--buffer-size", "4000", "--learning-starts", "100", "--eval-episodes", "3",
    "--grad-norm-freq", "100", "--log-interval", "2", "--threads", "1",
]  # fmt: skip


_TINY_CONFIG = parse_train_args(TINY)
RUN, RUN_ID = _TINY_CONFIG.run_name, _TINY_CONFIG.run_id
TAG_DIR = f"{RUN_ID}/pixelrl-PointReach-v0/seed0"


def test_run_names_are_a_readable_tag_and_a_hash_of_the_experiment():
    assert re.fullmatch(r"manip_noDrQ_criticEnc_img16_fs2-[0-9a-f]{8}_pixelrl-PointReach-v0_seed0", RUN), RUN


def cli(*args: str, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pixelrl.train.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )


def snapshot(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = cli("train", *TINY, "--total-steps", "400", "--checkpoint-freq", "200", "--out-dir", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_train_writes_every_artifact(trained):
    ckpt = trained / "checkpoints"
    meta = json.loads((ckpt / f"{RUN}.meta.json").read_text())
    assert (ckpt / f"{RUN}.zip").is_file()
    assert meta["schema"] == "pixelrl.checkpoint/1" and meta["num_timesteps"] == 400
    assert meta["config"]["env"] == "pixelrl/PointReach-v0" and meta["versions"]["stable_baselines3"]
    assert meta["steps_per_second"] > 0 and "train" in meta["command"]
    assert sorted(p.name for p in (ckpt / RUN).glob("*.zip")) == ["step200.zip", "step400.zip"]
    ev = json.loads((trained / "results" / f"{RUN}_eval.json").read_text())
    assert ev["schema"] == "pixelrl.eval/1" and ev["episodes"] == 3 and ev["deterministic"] is True
    assert 0.0 <= ev["success_rate"] <= 1.0 and ev["successes"] == round(ev["success_rate"] * 3)
    assert ev["checkpoint"] == f"../checkpoints/{RUN}.zip"  # relative: the run directory can move
    log_dir = trained / "runs" / TAG_DIR
    rows = [json.loads(line) for line in (log_dir / "progress.jsonl").read_text().splitlines()]
    keys = set().union(*rows)
    expected = {"train/critic_loss", "train/actor_loss", "train/ent_coef", "rollout/success_rate", "time/fps"}
    assert expected | {"encoder/grad_norm_critic", "encoder/grad_norm_actor"} <= keys
    assert list(log_dir.glob("events.out.tfevents.*"))


def test_tensorboard_has_the_documented_scalars(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(trained / "runs" / TAG_DIR))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/critic_loss", "train/actor_loss", "train/ent_coef", "rollout/success_rate", "time/fps"} <= tags
    assert "encoder/grad_norm_critic" in tags


def test_eval_rebuilds_env_from_metadata(trained, tmp_path):
    out = tmp_path / "eval.json"
    result = cli("eval", str(trained / "checkpoints" / f"{RUN}.zip"), "--episodes", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    ev = json.loads(out.read_text())
    assert ev["episodes"] == 2 and ev["num_timesteps"] == 400 and ev["tag"] == RUN_ID
    assert (out.parent / ev["checkpoint"]).resolve() == (trained / "checkpoints" / f"{RUN}.zip").resolve()


def test_eval_of_a_moved_checkpoint_writes_next_to_it(trained, tmp_path):
    import shutil

    for suffix in (".zip", ".meta.json"):
        shutil.copy(trained / "checkpoints" / f"{RUN}{suffix}", tmp_path / f"shipped{suffix}")
    before = sorted((trained / "results").iterdir())
    result = cli("eval", str(tmp_path / "shipped.zip"), "--episodes", "1")
    assert result.returncode == 0, result.stderr
    shipped = json.loads((tmp_path / "shipped_eval.json").read_text())
    assert shipped["episodes"] == 1 and shipped["checkpoint"] == "shipped.zip"
    assert sorted((trained / "results").iterdir()) == before  # the training run's results untouched


def test_plot_and_compare(trained, tmp_path):
    png = tmp_path / "curves.png"
    result = cli("plot", str(trained / "runs" / TAG_DIR), "--out", str(png))
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = cli("compare", str(trained / "results"), "--format", "json")
    assert table.returncode == 0, table.stderr
    rows = json.loads(table.stdout)
    assert rows[0]["tag"] == RUN_ID and rows[0]["n_seeds"] == 1


def test_render_frame_pixelrl_env(tmp_path):
    result = cli("render-frame", "--env", "pixelrl/PointReach-v0", "--image-size", "16", "--out-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    from PIL import Image

    run = parse_train_args(["--env", "pixelrl/PointReach-v0", "--image-size", "16"]).run_name
    agent = Image.open(tmp_path / f"{run}_agent.png")
    assert agent.size == (4 * 16 * 4, 16 * 4)  # 4 stacked frames side by side, enlarged 4x
    full = Image.open(tmp_path / f"{run}_full.png")
    assert full.size == (480, 480)


def test_resume_after_sigkill_continues_from_the_last_checkpoint(tmp_path):
    args = ["train", *TINY, "--total-steps", "1400", "--checkpoint-freq", "200", "--save-replay-buffer",
            "--out-dir", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pixelrl.train.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    periodic = tmp_path / "checkpoints" / RUN
    deadline = time.time() + 240
    while time.time() < deadline and not (periodic / "step400.meta.json").exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (periodic / "step400.meta.json").exists(), "no checkpoint before the deadline"
    assert not (tmp_path / "checkpoints" / f"{RUN}.zip").exists()
    saved = {p.name: p.stat().st_mtime_ns for p in periodic.iterdir()}
    progress = tmp_path / "runs" / TAG_DIR / "progress.jsonl"
    logged_before = len(progress.read_text().splitlines())
    latest = max(int(json.loads(p.read_text())["num_timesteps"]) for p in periodic.glob("step*.meta.json"))
    # A partial file from the killed writer may exist; only complete (meta-carrying) checkpoints count.
    (periodic / "step999999.zip").write_bytes(b"half-written")

    result = cli("train", *args[1:], "--resume")
    assert result.returncode == 0, result.stderr
    assert "Unable to sample" not in result.stderr
    meta = json.loads((tmp_path / "checkpoints" / f"{RUN}.meta.json").read_text())
    assert meta["num_timesteps"] == 1400
    # Continued, not restarted: the earlier checkpoints were not rewritten, and every step logged
    # after the resume point is beyond it.
    for name, mtime in saved.items():
        if name.endswith(".zip"):  # (metadata is rewritten when its buffer is replaced by a newer one)
            assert (periodic / name).stat().st_mtime_ns == mtime, f"{name} was rewritten"
    steps = [int(json.loads(line)["time/total_timesteps"]) for line in progress.read_text().splitlines()]
    resumed = steps[logged_before:]
    assert resumed and min(resumed) > latest and steps[-1] <= 1400
    assert len(list(periodic.glob("*.buffer.pkl"))) == 1  # only the newest buffer is kept


def test_determinism_same_seed_same_updates_and_eval(tmp_path):
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / name
        result = cli("train", *TINY, "--total-steps", "300", "--checkpoint-freq", "0", "--out-dir", str(out))
        assert result.returncode == 0, result.stderr
        rows = [json.loads(line) for line in (out / "runs" / TAG_DIR / "progress.jsonl").read_text().splitlines()]
        losses = [(r["time/total_timesteps"], r["train/critic_loss"]) for r in rows if "train/critic_loss" in r]
        ev = json.loads((out / "results" / f"{RUN}_eval.json").read_text())
        outputs.append((losses, {k: ev[k] for k in ("success_rate", "mean_return", "mean_final_goal_distance")}))
    assert outputs[0][0], "no training losses were logged"
    assert outputs[0] == outputs[1]


def test_config_file_and_flags_override_preset(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('preset = "step1"\nbatch_size = 64\nenv = "pixelrl/PointReach-v0"\n')
    config = parse_train_args(["--config", str(cfg), "--batch-size", "32"])
    assert config.routing == "sb3-shared"  # from the preset
    assert config.env == "pixelrl/PointReach-v0" and config.batch_size == 32  # file, then flag
    yaml_cfg = tmp_path / "run.yaml"
    yaml_cfg.write_text("seed: 3\nnet_arch: [64, 64]\n")
    config = parse_train_args(["--config", str(yaml_cfg), "--preset", "step4"])
    assert config.seed == 3 and config.net_arch == (64, 64) and config.drq and config.buffer_size == 500_000


BAD_INPUT = {
    "unknown env": (["--env", "FetchPushh-v4"], "Did you mean FetchPush-v4"),
    "non-goal env": (["--env", "CartPole-v1"], "not goal-conditioned"),
    "full-state with image options": (["--full-state", "--image-size", "64"], "--full-state trains on state vectors"),
    "contradictory wiring": (["--share-encoder"], "contradicts the default --critic-encoder"),
    "buffer too large": (["--buffer-size", "100000000"], "--allow-large-buffer"),
    "resume without checkpoint": (["--resume"], "no complete checkpoint"),
    "bad ent-coef": (["--ent-coef", "lots"], "--ent-coef must be"),
    "unknown preset": (["--preset", "step9"], "Unknown preset 'step9'"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_exits_2_before_any_work(case, tmp_path):
    args, message = BAD_INPUT[case]
    result = cli("train", *args, "--out-dir", str(tmp_path / "out"), timeout=120)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "out").exists()


def test_bad_config_files_exit_2(tmp_path):
    bad_key = tmp_path / "a.toml"
    bad_key.write_text("batch = 3\n")
    bad_type = tmp_path / "b.yaml"
    bad_type.write_text("batch_size: many\n")
    code = tmp_path / "c.yaml"
    code.write_text("seed: !!python/object/apply:os.system ['echo pwned']\n")
    for path, message in ((bad_key, "unknown setting 'batch'"), (bad_type, "batch_size = 'many'"), (code, "parsed")):
        result = cli("train", "--config", str(path), timeout=60)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
        assert "pwned" not in result.stdout


def test_existing_run_is_never_overwritten(trained):
    before = snapshot(trained)
    result = cli("train", *TINY, "--total-steps", "400", "--checkpoint-freq", "200", "--out-dir", str(trained))
    assert result.returncode == 2
    assert "already has files" in result.stderr and "--resume" in result.stderr
    assert snapshot(trained) == before


def test_missing_and_corrupt_checkpoints_exit_2(tmp_path):
    result = cli("eval", str(tmp_path / "nope.zip"), timeout=60)
    assert result.returncode == 2 and "does not exist" in result.stderr
    corrupt = tmp_path / "bad.zip"
    corrupt.write_bytes(b"not a zip")
    (tmp_path / "bad.meta.json").write_text("{broken")
    result = cli("eval", str(corrupt), timeout=60)
    assert result.returncode == 2 and "corrupt" in result.stderr
    assert corrupt.read_bytes() == b"not a zip"


@pytest.mark.mujoco
@pytest.mark.slow
def test_fetch_train_eval_render_frame(tmp_path):
    fetch = ["--env", "FetchReach-v4", "--image-size", "48", "--frame-stack", "2", "--n-envs", "1",
             "--batch-size", "8", "--buffer-size", "2000", "--learning-starts", "50", "--total-steps", "100",
             "--eval-episodes", "1", "--checkpoint-freq", "0", "--threads", "1",
             "--out-dir", str(tmp_path)]  # fmt: skip
    result = cli("train", *fetch)
    assert result.returncode == 0, result.stderr
    run = parse_train_args(fetch).run_name
    assert (tmp_path / "checkpoints" / f"{run}.zip").is_file()
    result = cli("eval", str(tmp_path / "checkpoints" / f"{run}.zip"), "--episodes", "1")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "results" / f"{run}_eval.json").read_text())["episodes"] == 1
    result = cli("render-frame", "--checkpoint", str(tmp_path / "checkpoints" / f"{run}.zip"),
                 "--out-dir", str(tmp_path / "frames"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "frames" / f"{run}_agent.png").is_file() and (tmp_path / "frames" / f"{run}_full.png").is_file()
    # A renamed checkpoint (as shipped): its frames take the file's name, not the run's.
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.copyfile(tmp_path / "checkpoints" / f"{run}.zip", shipped / "mine.zip")
    shutil.copyfile(tmp_path / "checkpoints" / f"{run}.meta.json", shipped / "mine.meta.json")
    result = cli("render-frame", "--checkpoint", str(shipped / "mine.zip"), "--out-dir", str(shipped))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in shipped.glob("*.png")) == ["mine_agent.png", "mine_full.png"]


@pytest.mark.slow
def test_demo_learns_and_writes_every_artifact(tmp_path):
    result = cli("demo", "--out-dir", str(tmp_path), "--total-steps", "2100", timeout=900)
    assert result.returncode == 0, result.stderr
    assert "the agent's position only from the pixels (strict)" in result.stdout  # what the networks received
    run = "demo_pixelrl-PointReach-v0_seed0"
    assert (tmp_path / "checkpoints" / f"{run}.zip").is_file()
    assert (tmp_path / "checkpoints" / f"{run}.meta.json").is_file()
    assert (tmp_path / "checkpoints" / f"{run}.vecnormalize.pkl").is_file()  # the recipe normalizes
    # The final step's buffer is kept with a periodic checkpoint, so extending the run keeps it.
    assert {p.name for p in (tmp_path / "checkpoints" / run).iterdir()} == {
        "step2100.zip", "step2100.meta.json", "step2100.vecnormalize.pkl", "step2100.buffer.pkl",
    }  # fmt: skip
    assert json.loads((tmp_path / "results" / f"{run}_eval.json").read_text())["episodes"] == 20
    assert (tmp_path / "results" / f"{run}_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert list((tmp_path / "runs" / "demo" / "pixelrl-PointReach-v0" / "seed0").glob("events.out.tfevents.*"))


@pytest.mark.parametrize("camera", ["default", "close", "reach"])
def test_render_frame_accepts_every_camera_preset_that_train_does(camera):
    import tyro

    from pixelrl.train.commands import RenderFrameArgs
    from pixelrl.train.config import TrainConfig

    assert tyro.cli(RenderFrameArgs, args=["--camera", camera]).camera == camera
    assert tyro.cli(TrainConfig, args=["--camera", camera]).camera == camera
    assert TrainConfig.from_dict({"camera": camera}).camera == camera  # saved configs too


def test_config_camera_choices_are_the_wrappers_presets():
    import typing

    from pixelrl.train.config import TrainConfig
    from pixelrl.wrappers.fetch import FETCH_CAMERAS, CameraName

    choices = typing.get_args(typing.get_type_hints(TrainConfig)["camera"])
    assert set(choices) == set(typing.get_args(CameraName)) == set(FETCH_CAMERAS)


BAD_VALUES = {
    "negative seed": (["--seed", "-1"], "--seed must be in"),
    "seed beyond numpy": (["--seed", "100000000000"], "--seed must be in"),
    "no threads": (["--threads", "0"], "--threads must be positive"),
    "negative layer": (["--net-arch", "-5"], "--net-arch must be one or more positive"),
    "empty layer": (["--net-arch", "0"], "--net-arch must be one or more positive"),
    "unknown device": (["--device", "tpu"], "--device must be auto, cpu"),
    "bad auto entropy": (["--ent-coef", "auto_xyz"], "--ent-coef must be"),
    "nan entropy": (["--ent-coef", "nan"], "--ent-coef must be"),
    "infinite learning rate": (["--learning-rate", "inf"], "--learning-rate must be a finite number"),
    "huge learning rate": (["--learning-rate", "1e30"], "--learning-rate must be in"),
    "negative grad-norm frequency": (["--grad-norm-freq", "-1"], "--grad-norm-freq must be >= 0"),
    "pad without DrQ": (["--drq-pad", "100"], "--drq-pad sets the DrQ shift, which is off"),
    "pad as large as the image": (["--drq", "--drq-pad", "100"], "--drq-pad 100 shifts 84-pixel images"),
    "tag that is a path": (["--tag", ".."], "--tag must be"),
    "batch beyond the buffer": (["--batch-size", "5000", "--buffer-size", "1000"], "is larger than --buffer-size"),
    "buffer smaller than an episode": (["--env", "pixelrl/PointReach-v0", "--buffer-size", "10", "--batch-size", "4"],
                                       "HER stores whole episodes"),
    "camera on a point env": (["--env", "pixelrl/PointReach-v0", "--camera", "reach"], "--camera set the Fetch"),
    "nature encoder on small images": (["--env", "pixelrl/PointReach-v0", "--encoder", "nature", "--no-spatial-softmax",
                                        "--image-size", "16", "--frame-stack", "2"], "too small for encoder='nature'"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_bad_values_exit_2_with_the_fix_before_any_work(case, tmp_path, capsys):
    from pixelrl.train.cli import main

    args, message = BAD_VALUES[case]
    out = tmp_path / "out"
    try:
        status = main(["train", *args, "--out-dir", str(out), "--threads", "1"] if "--threads" not in args
                      else ["train", *args, "--out-dir", str(out)])  # fmt: skip
    except SystemExit as exc:  # values tyro itself refuses (e.g. an int that is not one)
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert not out.exists()


def test_other_subcommands_refuse_bad_values_with_exit_2(tmp_path, capsys):
    from pixelrl.train.cli import main

    assert main(["eval", str(tmp_path / "m.zip"), "--episodes", "-3"]) == 2
    assert "--episodes must be positive, got -3" in capsys.readouterr().err
    assert main(["render-frame", "--env", "pixelrl/PointReach-v0", "--steps", "-5"]) == 2
    assert "--steps must be 0 or more" in capsys.readouterr().err
    assert main(["render-frame", "--env", "pixelrl/PointReach-v0", "--camera", "reach"]) == 2
    assert "--camera set the Fetch camera" in capsys.readouterr().err
    empty = tmp_path / "run"
    empty.mkdir()
    (empty / "progress.jsonl").write_text("")  # a run shorter than one log interval
    assert main(["plot", str(empty)]) == 2
    assert "no usable line" in capsys.readouterr().err
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    assert main(["plot", str(garbage)]) == 2
    assert "no such progress log" in capsys.readouterr().err
    config = tmp_path / "c.yaml"
    config.write_bytes(b"seed: 1\n\xff\xfe\n")
    assert main(["train", "--config", str(config)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err


def test_an_unknown_opengl_backend_exits_2_with_the_fix(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pixelrl.train.cli", "train", "--env", "FetchReach-v4", "--out-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "MUJOCO_GL": "nonsense"},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "MUJOCO_GL" in result.stderr and "nonsense" in result.stderr and "Traceback" not in result.stderr


def test_one_writer_per_run_and_sigterm_stops_with_a_message(tmp_path):
    args = ["train", *TINY, "--total-steps", "200000", "--checkpoint-freq", "200", "--out-dir", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    live = subprocess.Popen([sys.executable, "-m", "pixelrl.train.cli", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        periodic = tmp_path / "checkpoints" / RUN
        deadline = time.time() + 240
        while time.time() < deadline and not (periodic / "step200.meta.json").exists():
            time.sleep(0.2)
        assert (periodic / "step200.meta.json").exists(), "no checkpoint before the deadline"
        second = cli(*args)
        assert second.returncode == 2 and "is being written by another process" in second.stderr
        resumed = cli(*args, "--resume")
        assert resumed.returncode == 2 and "is being written by another process" in resumed.stderr
    finally:
        live.send_signal(signal.SIGTERM)
        stdout, stderr = live.communicate(timeout=120)
    assert live.returncode == 143, stderr
    assert "terminated (SIGTERM); the last complete checkpoint is kept" in stderr
    assert re.search(r"train [\d,]+/200,000 steps +[\d.]+ steps/s +success .* ETA", stdout), stdout  # not a tty
