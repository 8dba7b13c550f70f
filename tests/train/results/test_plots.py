from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelrl.train.results.phases import detect_phases
from pixelrl.train.results.plots import plot_investigation, plot_run
from pixelrl.train.results.progress import STEP_KEY, load_progress

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
INTERVAL = 20_000  # env steps between logger dumps in the synthetic runs
ONSET, CONVERGED, TOTAL = 2_200_000, 3_500_000, 4_400_000


def hockey_stick(seed: int = 0, *, noise: float = 0.01) -> dict[str, np.ndarray]:
    """Step 2's curve (Section 9.8): flat 5 %, a linear rise to 95 %, a plateau; losses to match."""
    rng = np.random.default_rng(seed)
    x = np.arange(INTERVAL, TOTAL + 1, INTERVAL, dtype=np.float64)
    rise = np.clip((x - ONSET) / (CONVERGED - ONSET), 0.0, 1.0)
    success = np.clip(0.05 + 0.9 * rise + rng.normal(0, noise, x.size), 0, 1)
    log_critic = np.select(
        [x <= ONSET, x <= CONVERGED],
        [
            np.log(0.5) + (np.log(0.07) - np.log(0.5)) * x / ONSET,
            np.log(0.07) + (np.log(0.35) - np.log(0.07)) * rise,
        ],
        np.log(0.35) + (np.log(0.2) - np.log(0.35)) * (x - CONVERGED) / (TOTAL - CONVERGED),
    )
    critic = np.exp(log_critic + rng.normal(0, 0.05, x.size))
    actor = np.select(
        [x <= ONSET, x <= CONVERGED],
        [np.zeros_like(x), 1.0 * rise],
        -0.5 + 1.5 * np.exp(-(x - CONVERGED) / 150_000),  # quickly negative, as in the chapter's table
    ) + rng.normal(0, 0.02, x.size)
    return {"steps": x, "success": success, "critic": critic, "actor": actor}


def flat_run(seed: int = 0, n: int = 150) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.arange(1, n + 1, dtype=np.float64) * INTERVAL
    success = np.clip(0.05 + rng.normal(0, 0.015, n), 0, 1)
    critic = np.exp(np.log(0.5) + (np.log(0.07) - np.log(0.5)) * x / x[-1] + rng.normal(0, 0.05, n))
    return {"steps": x, "success": success, "critic": critic, "actor": rng.normal(0, 0.02, n)}


def write_progress(path: Path, run: dict[str, np.ndarray], *, grads: bool = False, evals: bool = False) -> Path:
    """Write ``run`` as progress.jsonl the way the training runner does (one line per dump)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for i, step in enumerate(run["steps"]):
            line: dict[str, float | int] = {
                STEP_KEY: int(step),
                "rollout/success_rate": float(run["success"][i]),
                "train/critic_loss": float(run["critic"][i]),
                "train/actor_loss": float(run["actor"][i]),
                "time/fps": 40.0,
            }
            if grads:
                line["encoder/grad_norm_critic"] = 1.0 + i * 0.01
                line["encoder/grad_norm_actor"] = 0.01
            if evals and i % 10 == 0:
                line["eval/success_rate"] = float(run["success"][i])
            f.write(json.dumps(line) + "\n")
    return path


def run_path(root: Path, tag: str, seed: int, env: str = "FetchPush-v4") -> Path:
    return root / "runs" / tag / env / f"seed{seed}" / "progress.jsonl"


def assert_png(path: Path, size: tuple[int, int]) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == size
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # atomic write left no temp file


# load_progress ------------------------------------------------------------------------------------


def test_load_progress_aligns_columns_on_steps_with_nan_for_missing_keys(tmp_path):
    path = tmp_path / "progress.jsonl"
    lines = [
        {STEP_KEY: 100, "rollout/success_rate": 0.1},
        {STEP_KEY: 200, "train/critic_loss": 0.5, "rollout/success_rate": 0.2},
        {STEP_KEY: 300, "eval/success_rate": 1.0, "note": "text is not a column", "flag": True},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    data = load_progress(tmp_path)  # a run directory works too
    assert set(data) == {STEP_KEY, "rollout/success_rate", "train/critic_loss", "eval/success_rate"}
    np.testing.assert_array_equal(data[STEP_KEY], [100, 200, 300])
    np.testing.assert_array_equal(data["rollout/success_rate"], [0.1, 0.2, np.nan])
    np.testing.assert_array_equal(data["train/critic_loss"], [np.nan, 0.5, np.nan])
    np.testing.assert_array_equal(data["eval/success_rate"], [np.nan, np.nan, 1.0])


def test_load_progress_restart_segment_supersedes_everything_at_or_after_its_first_step(tmp_path):
    path = tmp_path / "progress.jsonl"
    steps_and_values = [
        (100, 0.0), (200, 0.1), (300, 0.2), (400, 0.3), (500, 0.4),  # crashed after 500
        (300, 0.9), (400, 0.8),  # resumed from the 300 checkpoint, crashed again
        (400, 0.7), (600, 0.6),  # resumed from the 400 checkpoint
    ]  # fmt: skip
    path.write_text("".join(json.dumps({STEP_KEY: s, "rollout/success_rate": v}) + "\n" for s, v in steps_and_values))
    data = load_progress(path)
    np.testing.assert_array_equal(data[STEP_KEY], [100, 200, 300, 400, 600])
    np.testing.assert_array_equal(data["rollout/success_rate"], [0.0, 0.1, 0.9, 0.7, 0.6])


def test_load_progress_skips_a_half_written_last_line_with_a_warning(tmp_path, caplog):
    path = tmp_path / "progress.jsonl"
    path.write_text(
        json.dumps({STEP_KEY: 100, "train/critic_loss": 0.5})
        + "\n\n"
        + json.dumps({"no_step": 1})
        + "\n"
        + json.dumps({STEP_KEY: 200, "train/critic_loss": 0.4})
        + '\n{"time/total_timesteps": 300, "train/cri'
    )
    with caplog.at_level(logging.WARNING, logger="pixelrl.train.results.progress"):
        data = load_progress(path)
    np.testing.assert_array_equal(data[STEP_KEY], [100, 200])
    np.testing.assert_array_equal(data["train/critic_loss"], [0.5, 0.4])
    messages = [r.getMessage() for r in caplog.records]
    assert any("progress.jsonl:5" in m and "not valid JSON" in m for m in messages)
    assert any("progress.jsonl:3" in m and STEP_KEY in m for m in messages)


def test_load_progress_errors_name_the_path_and_the_fix(tmp_path):
    with pytest.raises(ValueError, match=r"missing: no such progress log\. Pass a run directory"):
        load_progress(tmp_path / "missing")
    junk = tmp_path / "progress.jsonl"
    junk.write_text('not json\n{"rollout/success_rate": 0.1}\n')
    with pytest.raises(ValueError, match=r"progress\.jsonl: no usable line .*time/total_timesteps"):
        load_progress(junk)


# detect_phases ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_hockey_stick_gives_onset_convergence_and_the_textbook_loss_signature(seed):
    run = hockey_stick(seed)
    phases = detect_phases(run["steps"], run["success"], run["critic"], run["actor"])
    assert phases.onset_step is not None and abs(phases.onset_step - ONSET) <= INTERVAL
    # 90 % of the way from 5 % to 95 % of a linear rise: 0.9 of the Phase-2 span after the onset.
    expected_conv = ONSET + 0.9 * (CONVERGED - ONSET)
    assert phases.convergence_step is not None and abs(phases.convergence_step - expected_conv) <= 2 * INTERVAL
    assert phases.critic_trends == ("declining", "rising", "declining")
    assert phases.actor_trends == ("flat", "rising", "declining")
    assert phases.actor_negative_in_phase3 is True
    assert phases.textbook_signature and phases.hockey_stick
    assert phases.baseline == pytest.approx(0.05, abs=0.01)
    assert phases.plateau == pytest.approx(0.95, abs=0.02)
    assert (phases.first_step, phases.last_step) == (INTERVAL, TOTAL)
    assert phases.summary.startswith("Three phases: flat at 5% until 2.")
    assert "critic loss declining -> rising -> declining; actor loss negative in Phase 3" in phases.summary
    labels = [label for label, _, _ in phases.spans()]
    assert labels[0].startswith("Phase 1: flat\ncritic loss declining")
    assert labels[1].startswith("Phase 2: hockey-stick\ncritic loss rising")
    assert labels[2].startswith("Phase 3: convergence\ncritic loss declining")
    assert [(s, e) for _, s, e in phases.spans()] == [
        (INTERVAL, phases.onset_step),
        (phases.onset_step, phases.convergence_step),
        (phases.convergence_step, TOTAL),
    ]


def test_sigmoid_rise_onset_is_where_success_leaves_the_baseline():
    x = np.arange(1, 301, dtype=np.float64) * 10_000
    success = 0.05 + 0.9 / (1 + np.exp(-(x - 2_000_000) / 150_000))
    phases = detect_phases(x, success, np.ones_like(x))
    assert phases.onset_step is not None and 1_400_000 <= phases.onset_step <= 1_800_000
    assert success[x == phases.onset_step][0] < 0.08  # still at the baseline, not halfway up
    assert phases.convergence_step is not None and 2_250_000 <= phases.convergence_step <= 2_400_000


def test_flat_run_has_no_onset_and_reads_as_phase_1_only():
    run = flat_run()
    phases = detect_phases(run["steps"], run["success"], run["critic"], run["actor"])
    assert phases.onset_step is None and phases.convergence_step is None
    assert not phases.hockey_stick and not phases.textbook_signature
    assert phases.critic_trends == ("declining",)
    assert phases.summary == "Phase 1 only: success flat at 5%; critic loss declining"
    assert [label.split("\n")[0] for label, _, _ in phases.spans()] == ["Phase 1: flat"]


def test_run_killed_mid_rise_has_an_onset_but_no_convergence():
    run = hockey_stick()
    keep = run["steps"] <= 3_000_000
    phases = detect_phases(run["steps"][keep], run["success"][keep], run["critic"][keep])
    assert phases.onset_step is not None and abs(phases.onset_step - ONSET) <= INTERVAL
    assert phases.convergence_step is None
    assert phases.critic_trends == ("declining", "rising")
    assert "not converged yet" in phases.summary


def test_nans_in_success_and_losses_are_ignored_and_rows_may_be_unsorted():
    run = hockey_stick()
    success, critic = run["success"].copy(), run["critic"].copy()
    success[::3] = np.nan  # success logged on other rows than the losses
    critic[1::3] = np.nan
    critic[5] = -1.0  # a non-positive loss has no log; it is skipped
    order = np.random.default_rng(0).permutation(run["steps"].size)
    phases = detect_phases(run["steps"][order], success[order], critic[order])
    assert phases.onset_step is not None and abs(phases.onset_step - ONSET) <= 2 * INTERVAL
    assert phases.convergence_step is not None
    assert phases.critic_trends == ("declining", "rising", "declining")


@pytest.mark.parametrize("n", [0, 1, 4])
def test_short_runs_give_no_phases(n):
    x = np.arange(n, dtype=np.float64) * 1000
    phases = detect_phases(x, np.linspace(0, 1, n), np.linspace(1, 0.5, n))
    assert phases.onset_step is None and phases.convergence_step is None
    assert math.isnan(phases.baseline) and phases.spans() == []
    assert phases.summary.startswith(f"Too few success points ({n})")


def test_constant_curves_are_flat_with_no_onset():
    x = np.arange(50, dtype=np.float64) * 1000
    phases = detect_phases(x, np.full(50, 0.3), np.full(50, 0.2), np.full(50, -0.1))
    assert phases.onset_step is None
    assert phases.critic_trends == ("flat",) and phases.actor_trends == ("flat",)
    assert phases.baseline == pytest.approx(0.3)


def test_all_nan_success_and_mismatched_lengths():
    x = np.arange(20, dtype=np.float64)
    phases = detect_phases(x, np.full(20, np.nan), np.full(20, np.nan))
    assert phases.onset_step is None and phases.critic_trends == ("unknown",)
    with pytest.raises(ValueError, match=r"one value per row; got lengths 20, 19, 20"):
        detect_phases(x, x[:-1], x)


# plot_run / plot_investigation --------------------------------------------------------------------


def test_plot_run_writes_a_three_panel_png_and_returns_the_phases(tmp_path):
    progress = write_progress(run_path(tmp_path, "step2", 0), hockey_stick(), evals=True)
    out = tmp_path / "plots" / "step2.png"
    phases = plot_run(progress.parent, out)
    assert_png(out, (1200, 960))
    assert phases.onset_step is not None and abs(phases.onset_step - ONSET) <= INTERVAL
    assert phases.textbook_signature


def test_plot_run_adds_a_gradient_panel_and_overwrites_atomically(tmp_path):
    progress = write_progress(run_path(tmp_path, "step0", 1), flat_run(), grads=True)
    out = tmp_path / "curve.png"
    out.write_bytes(b"old")
    phases = plot_run(progress, out, title="Step 0")
    assert_png(out, (1200, 1260))
    assert phases.onset_step is None


def test_plot_run_missing_log_raises_before_writing(tmp_path):
    out = tmp_path / "x.png"
    with pytest.raises(ValueError, match="no such progress log"):
        plot_run(tmp_path / "runs" / "nope", out)
    assert not out.exists()


def test_plot_investigation_groups_seeds_by_tag_and_summarizes_final_success(tmp_path):
    for seed in range(3):
        write_progress(run_path(tmp_path, "step2", seed), hockey_stick(seed))
    flat = write_progress(run_path(tmp_path, "step0", 0), flat_run(0))
    out = tmp_path / "investigation.png"
    rows = plot_investigation([flat.parent, tmp_path / "runs" / "step2"], out)
    assert_png(out, (1560, 600))
    assert [r["label"] for r in rows] == ["step0", "step2"]
    step0, step2 = rows
    assert step0["seeds"] == [0] and step0["onset_steps"] == [None]
    finals = [float(hockey_stick(seed)["success"][-1]) for seed in range(3)]
    assert step2["tag"] == "step2" and step2["env"] == "FetchPush-v4" and step2["seeds"] == [0, 1, 2]
    assert step2["final_success_mean"] == pytest.approx(np.mean(finals))
    assert (step2["final_success_min"], step2["final_success_max"]) == (min(finals), max(finals))
    assert step2["final_steps"] == [TOTAL] * 3
    assert all(s is not None and abs(s - ONSET) <= INTERVAL for s in step2["onset_steps"])
    assert all(s is not None for s in step2["convergence_steps"])


def test_plot_investigation_labels_replace_tags_and_are_checked(tmp_path):
    a = write_progress(run_path(tmp_path, "tag_a", 0), flat_run(0, n=20))
    b = write_progress(run_path(tmp_path, "tag_b", 0), flat_run(1, n=20))
    rows = plot_investigation([a, b], tmp_path / "inv.png", labels=["Step 1", "Step 1"])
    assert len(rows) == 1 and rows[0]["label"] == "Step 1" and rows[0]["final_success_mean"] is not None
    with pytest.raises(ValueError, match="labels has 1 entries but runs has 2"):
        plot_investigation([a, b], tmp_path / "inv.png", labels=["x"])
    with pytest.raises(ValueError, match=r"no progress\.jsonl found"):
        plot_investigation([tmp_path / "empty"], tmp_path / "inv.png")
    with pytest.raises(ValueError, match="at least one run"):
        plot_investigation([], tmp_path / "inv.png")


def test_a_rise_that_collapses_is_not_called_converged():
    x = np.arange(1, 101, dtype=np.float64) * 1000
    success = np.where((x > 40_000) & (x <= 70_000), 0.5, 0.05)
    phases = detect_phases(x, success, np.ones_like(x))
    assert phases.onset_step is not None and abs(phases.onset_step - 40_000) <= 2000
    assert phases.convergence_step is None
    assert "but fell back to 5% (collapsed?)" in phases.summary
