from __future__ import annotations

import json

import pytest
from stable_baselines3.common.logger import Logger

from pixelrl.train.run.callbacks import JsonlOutputFormat, NonFiniteLossError, WatchdogCallback


def test_jsonl_writer_appends_scalars_with_the_step(tmp_path):
    path = tmp_path / "progress.jsonl"
    for start in (0, 100):  # two segments, as after a resume: the file is appended, not truncated
        writer = JsonlOutputFormat(path)
        writer.write({"train/critic_loss": 0.5, "note": "text", "rollout/success_rate": float("nan")}, {}, step=start)
        writer.close()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["time/total_timesteps"] for r in rows] == [0, 100]
    assert rows[0]["train/critic_loss"] == 0.5 and "note" not in rows[0] and rows[0]["rollout/success_rate"] == "nan"


class _Model:
    num_timesteps = 1234

    def __init__(self, logger):
        self.logger = logger

    def get_env(self):
        return None


def test_watchdog_stops_at_a_non_finite_loss_and_names_the_last_checkpoint():
    logger = Logger(folder=None, output_formats=[])
    callback = WatchdogCallback(lambda: "checkpoints/run/step1000.zip")
    callback.init_callback(_Model(logger))  # type: ignore[arg-type]
    callback.num_timesteps = 1234
    logger.record("train/critic_loss", 0.3)
    assert callback.on_step()
    assert logger.name_to_value["time/wall_seconds"] >= 0
    logger.record("train/critic_loss", float("inf"))
    with pytest.raises(NonFiniteLossError, match=r"train/critic_loss became inf at step 1,234.*step1000\.zip"):
        callback.on_step()
