"""Studies on a local Ray: a 2 x 2 study, resume after SIGKILL, one failing trial among others."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray.tune", reason="the sweep extra (pip install 'pixelrl[sweep]') is not installed")

pytestmark = pytest.mark.slow

BASE = """
[base]
env = "pixelrl/PointReach-v0"
image_size = 16
frame_stack = 2
n_envs = 1
batch_size = 8
buffer_size = 2000
learning_starts = 100
total_steps = {steps}
checkpoint_freq = 100
eval_freq = 100
eval_freq_episodes = 2
eval_episodes = 3
grad_norm_freq = 0
"""


def sweep(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_DEDUP_LOGS": "0"}
    return subprocess.run([sys.executable, "-m", "pixelrl.train.cli", "sweep", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)  # fmt: skip


def study_file(tmp_path: Path, body: str, steps: int = 300) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(BASE.format(steps=steps) + body)
    return path


def evals(out: Path) -> dict[tuple[str, int], float]:
    found = {}
    for path in (out / "results").glob("*_eval.json"):
        data = json.loads(path.read_text())
        found[(data["tag"], data["seed"])] = data["success_rate"]
    return found


def test_a_two_by_two_study_summarizes_each_configuration_over_both_seeds(tmp_path):
    path = study_file(tmp_path, "[grid]\nlearning_rate = [1e-3, 3e-4]\n")
    out = tmp_path / "out"
    result = sweep("--study", str(path), "--out-dir", str(out), "--seeds", "0", "1", "--concurrency", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["configuration"]: row for row in json.loads((out / "summary.json").read_text())}
    assert set(rows) == {"learning_rate-0.001", "learning_rate-0.0003"}
    finals = evals(out)
    for name, row in rows.items():
        assert row["seeds"] == [0, 1]
        assert row["final_success"] == [finals[(name, 0)], finals[(name, 1)]]  # the trials' own eval JSONs
        assert row["env_steps"] == [300, 300]
    assert (out / "curves.png").is_file() and (out / "summary.md").read_text().count("| learning_rate-") == 2


def test_a_killed_study_resumes_without_rerunning_finished_trials(tmp_path):
    path = study_file(tmp_path, "", steps=400)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pixelrl.train.cli", "sweep", "--study", str(path), "--out-dir", str(out),
         "--seeds", "0", "1", "2", "--concurrency", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 400
    while time.time() < deadline and not list((out / "checkpoints").glob("*.meta.json")):
        time.sleep(1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in (out / "checkpoints").glob("*.meta.json")}
    assert finished, "no trial finished before the deadline"
    assert len(finished) < 3, "the study finished before it was killed"

    result = sweep("--out-dir", str(out), "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    metas = {p.name: p for p in (out / "checkpoints").glob("*.meta.json")}
    assert len(metas) == 3
    for name, mtime in finished.items():
        assert metas[name].stat().st_mtime_ns == mtime, f"{name} was rerun"
    for meta in metas.values():
        recorded = json.loads(meta.read_text())
        assert recorded["num_timesteps"] == 400
        assert recorded["command"].startswith("pixelrl-train sweep (study "), recorded["command"]
    assert json.loads((out / "summary.json").read_text())[0]["seeds"] == [0, 1, 2]


def test_a_failing_trial_is_reported_and_the_others_complete(tmp_path):
    body = '[configurations.good]\nlearning_rate = 1e-3\n[configurations.diverges]\nent_coef = "1e38"\n'
    out = tmp_path / "out"
    result = sweep("--study", str(study_file(tmp_path, body, steps=200)), "--out-dir", str(out), "--concurrency", "2")
    assert result.returncode == 1
    assert "trial" in result.stderr and "failed" in result.stderr and "became non-finite" in result.stderr
    assert (out / "checkpoints" / "good_pixelrl-PointReach-v0_seed0.meta.json").is_file()
    assert not (out / "checkpoints" / "diverges_pixelrl-PointReach-v0_seed0.meta.json").exists()


def test_an_optuna_search_trains_each_sampled_configuration_and_reports_it(tmp_path):
    space = "learning_rate = { low = 3e-4, high = 3e-3, log = true }, batch_size = { choices = [8, 16] }"
    body = f"[search]\ntrials = 2\nspace = {{ {space} }}\n"
    out = tmp_path / "out"
    result = sweep("--study", str(study_file(tmp_path, body, steps=200)), "--out-dir", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metas = [json.loads(p.read_text()) for p in (out / "checkpoints").glob("*.meta.json")]
    assert len(metas) == 2
    for meta in metas:
        config = meta["config"]
        assert 3e-4 <= config["learning_rate"] <= 3e-3 and config["batch_size"] in (8, 16)
        assert meta["num_timesteps"] == 200
        # the run is named by what was sampled, so two samples never share a run folder
        assert config["tag"].startswith("search-") and "learning_rate" in config["tag"]
    assert len({meta["config"]["tag"] for meta in metas}) == 2
    rows = json.loads((out / "summary.json").read_text())
    assert sorted(row["configuration"] for row in rows) == sorted(meta["config"]["tag"] for meta in metas)
