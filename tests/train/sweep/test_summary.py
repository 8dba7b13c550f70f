"""Summary statistics across seeds, against values computed by hand from fixture curves."""

from __future__ import annotations

import json
import math

import pytest

from pixelrl.train.config import ConfigError
from pixelrl.train.sweep.summary import confidence_interval, load_curves, markdown, summarize, write_summary


def _run(folder, configuration, seed, rows, final=None, env="pixelrl-PointReach-v0"):
    log = folder / "runs" / configuration / env / f"seed{seed}"
    log.mkdir(parents=True)
    lines = [{"time/total_timesteps": 50, "train/critic_loss": 0.3}]  # a row without an evaluation
    lines += [{"time/total_timesteps": step, "eval/success_rate": success, "eval/train_minutes": minutes,
               "time/load_average_1min": 1.0} for step, minutes, success in rows]  # fmt: skip
    (log / "progress.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    if final is not None:
        (folder / "results").mkdir(exist_ok=True)
        (folder / "results" / f"{configuration}_{env}_seed{seed}_eval.json").write_text(
            json.dumps({"success_rate": final})
        )


@pytest.fixture
def study(tmp_path):
    _run(tmp_path, "fast", 0, [(1000, 1.0, 0.2), (2000, 2.0, 0.6), (3000, 3.0, 0.9)], final=0.95)
    _run(tmp_path, "fast", 1, [(1000, 1.5, 0.5), (2000, 3.0, 0.85)], final=0.85)
    _run(tmp_path, "fast", 2, [(1000, 1.2, 0.1), (2000, 2.4, 0.4), (3000, 3.6, 0.7)], final=0.75)
    _run(tmp_path, "slow", 0, [(1000, 1.0, 0.0), (2000, 2.0, 0.1)])  # no final evaluation: the last periodic one
    return tmp_path


def test_rows_hold_every_seed_with_times_to_each_level(study):
    rows = {row["configuration"]: row for row in summarize(load_curves(study))}
    fast = rows["fast"]
    assert fast["seeds"] == [0, 1, 2] and fast["final_success"] == [0.95, 0.85, 0.75]
    assert fast["to_50"] == [
        {"env_steps": 2000, "minutes": 2.0}, {"env_steps": 1000, "minutes": 1.5}, {"env_steps": 3000, "minutes": 3.6},
    ]  # fmt: skip
    assert fast["to_80"] == [{"env_steps": 3000, "minutes": 3.0}, {"env_steps": 2000, "minutes": 3.0}, None]
    assert (fast["reached_50"], fast["reached_80"]) == ("3/3", "2/3")
    assert fast["env_steps"] == [3000, 2000, 3000] and fast["train_minutes"] == [3.0, 3.0, 3.6]
    # mean 0.85, sample std 0.1, t(0.975, 2) = 4.303: half-width 4.303 * 0.1 / sqrt(3)
    assert math.isclose(fast["final_success_mean"], 0.85)
    assert math.isclose(fast["final_success_ci95"], 4.303 * 0.1 / math.sqrt(3), rel_tol=1e-9)
    slow = rows["slow"]
    assert slow["final_success"] == [0.1] and slow["final_success_ci95"] is None and slow["reached_50"] == "0/1"


def test_confidence_interval_matches_the_t_table():
    mean, half = confidence_interval([0.2, 0.4])  # std 0.1414, t(0.975, 1) = 12.706
    assert math.isclose(mean, 0.3) and math.isclose(half, 12.706 * math.sqrt(0.02) / math.sqrt(2))
    assert confidence_interval([0.5]) == (0.5, None)


def test_the_summary_files_are_written(study, tmp_path):
    out = tmp_path / "summary"
    rows = write_summary(study, out)
    table = (out / "summary.md").read_text()
    assert table == markdown(rows)
    assert "| fast | 0, 1, 2 | 85% (± 25%) | 2k / 2.0 min; 1k / 1.5 min; 3k / 3.6 min |" in table
    assert table.count("reached 90%") == 1 and "| 3/3 | 2/3 | 1/3 | 1.0, 1.0, 1.0 |" in table
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(rows))
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_a_folder_without_runs_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no runs under"):
        load_curves(tmp_path)
