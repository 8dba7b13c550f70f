"""Every example script runs, on tiny settings, and leaves what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out


@pytest.mark.mujoco
@pytest.mark.slow
def test_train_then_record_and_draw_keypoints(tmp_path):
    env = ["--env", "FetchReach-v4", "--image-size", "32"]
    out = run("train_pixels_sb3.py", *env, "--steps", "120", "--n-envs", "1", "--batch-size", "8",
              "--learning-starts", "100", "--out", "reach", cwd=tmp_path)  # fmt: skip
    assert "trained 120 steps" in out.stdout and (tmp_path / "reach.zip").is_file()

    out = run("evaluate_and_record.py", "reach.zip", *env, "--episodes", "1", "--out", "reach.gif", cwd=tmp_path)
    from PIL import Image

    gif = Image.open(tmp_path / "reach.gif")
    assert gif.n_frames == 50 and gif.size == (480, 240)  # one frame per step: scene | agent view

    out = run("keypoints.py", "reach.zip", *env, "--steps", "2", "--out", "kp.png", cwd=tmp_path)
    assert "32 keypoints on 2 frames" in out.stdout
    assert Image.open(tmp_path / "kp.png").size == (2 * 32 * 4, 32 * 4)


@pytest.mark.mujoco
@pytest.mark.slow
def test_pretrained_fetchreach_succeeds_offline(tmp_path):
    import re

    out = run("pretrained_fetchreach.py", "--episodes", "6", cwd=tmp_path)
    header, result = out.stdout.strip().splitlines()[-2:]  # what the networks receive; the success rates
    assert "only from the pixels (strict)" in header, header
    trained, random = (int(p) for p in re.findall(r"(\d+)%", result))
    assert trained >= 50 and trained > random, result


@pytest.mark.mujoco
@pytest.mark.slow
def test_wrap_other_goal_env(tmp_path):
    out = run("wrap_other_goal_env.py", "--steps", "160", "--image-size", "32", cwd=tmp_path)
    assert "trained 160 steps on pixels of PointMaze_UMaze-v3" in out.stdout
    assert "'pixels': (6, 32, 32)" in out.stdout


@pytest.mark.mujoco
@pytest.mark.slow
def test_rl_zoo_hyperparameters_train_with_pixelrl_parts(tmp_path):
    import zipfile

    cmd = [
        sys.executable, "-m", "rl_zoo3.train", "--algo", "sac", "--env", "FetchReach-v4",
        "--gym-packages", "gymnasium_robotics", "--conf-file", str(EXAMPLES / "rl_zoo" / "pixelrl_fetch.py"),
        "-n", "1100", "--eval-freq", "-1", "-params", "learning_starts:1000", "batch_size:8",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    model = tmp_path / "logs" / "sac" / "FetchReach-v4_1" / "FetchReach-v4.zip"
    data = zipfile.ZipFile(model).read("data").decode()
    assert "DrQv2SACPolicy" in data and "CompactHerReplayBuffer" in data and "ManipulationExtractor" in data
