"""Running a study on Ray Tune: one Tune trial per (configuration, seed), each a full `pixelrl-train train` run.

Ray Tune schedules the trials (concurrency, CPUs and GPU fractions per trial, a local Ray or a
cluster), records the study's state for ``--resume`` and runs Optuna searches. Each trial is an
ordinary training run writing its usual artifacts into the study folder; it reports every row it
logs to Tune (live progress), stops by the run's own rules (``stop_at_success``,
``max_train_minutes``), and resumes from its own checkpoints when the study is resumed. A trial
that fails is reported with its error and does not stop the others.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stable_baselines3.common.logger import KVWriter

from pixelrl.train.config import ConfigError, TrainConfig
from pixelrl.train.run.artifacts import RunPaths, recorded_command, write_json
from pixelrl.train.run.checkpoints import read_meta
from pixelrl.train.sweep.study import Study

__all__ = ["STUDY_FILE", "TRIAL_LOCK_WAIT_SECONDS", "StudyOutcome", "TuneReporter", "run_study", "run_trial"]

STUDY_FILE = "study.json"
TUNE_DIR = "tune"
TRIAL_LOCK_WAIT_SECONDS = 120.0
"""How long a resumed trial waits for its run's lock: a worker of the interrupted study may still be exiting."""


class TuneReporter(KVWriter):
    """SB3 logger output that reports each logged row's numbers to Ray Tune (``env_steps`` is the step).

    Every row also carries ``final_success``, the newest evaluation's success rate so far (0
    before the first): the metric a search maximizes, which Tune wants in every result.
    """

    def __init__(self) -> None:
        self.success = 0.0

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        """Report one row."""
        from ray import tune

        metrics: dict[str, float] = {"env_steps": int(step)}
        for key, value in key_values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value)):
                metrics[key] = float(value)
        self.success = metrics.get("eval/success_rate", self.success)
        tune.report({**metrics, "final_success": self.success})

    def close(self) -> None:
        """Nothing to close."""


def _final_metrics(config: TrainConfig) -> dict[str, Any]:
    """What a finished trial reports last: its final success (the final evaluation, else the last periodic one)."""
    import json

    import numpy as np

    from pixelrl.train.results.progress import load_progress

    paths = RunPaths.of(config)
    success: float | None = None
    if paths.eval_json.is_file():
        success = float(json.loads(paths.eval_json.read_text())["success_rate"])
    else:
        try:
            curve = load_progress(paths.log_dir).get("eval/success_rate", np.array([]))
        except ValueError:
            curve = np.array([])
        finite = curve[np.isfinite(curve)]
        success = float(finite[-1]) if len(finite) else None
    steps = int(read_meta(paths.final_meta)["num_timesteps"])
    return {"env_steps": steps, "final_success": 0.0 if success is None else success, "done": True}


def run_trial(params: dict[str, Any], study_file: str) -> None:
    """The Tune trainable: one training run of the study, resumed from its checkpoints if it has some.

    Args:
        params: ``configuration`` (a name) or ``settings`` (search mode), and ``seed``.
        study_file: The study's ``study.json`` (its folder is where the runs write).

    Raises:
        Exception: Whatever the run raises; Tune records it as the trial's error.
    """
    import json

    from ray import tune

    from pixelrl.train.run.runner import train

    path = Path(study_file)
    study = Study.from_dict(json.loads(path.read_text()), str(path))
    configuration = params.get("configuration") or dict(params["settings"])
    config = study.config(configuration, int(params["seed"]), path.parent)
    paths = RunPaths.of(config)
    if paths.final_meta.is_file():  # finished before the study was interrupted: nothing to redo
        tune.report(_final_metrics(config))
        return
    config = config.replace(resume=bool(paths.existing()))
    trial = f"configuration {configuration if isinstance(configuration, str) else json.dumps(configuration)}"
    command = f"pixelrl-train sweep (study {path}, trial {trial}, seed {int(params['seed'])})"
    deadline = time.monotonic() + TRIAL_LOCK_WAIT_SECONDS
    while True:
        try:
            with recorded_command(command):
                train(config, extra_outputs=[TuneReporter()])
            break
        except ConfigError as exc:
            if "is being written by another process" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(2.0)
    tune.report(_final_metrics(config))


@dataclass(frozen=True)
class StudyOutcome:
    """How a study ended.

    Attributes:
        trials: Trials in the study.
        failed: ``(trial, error)`` of each trial that failed.
        seconds: Wall time of the study command (Ray's start and stop included).
    """

    trials: int
    failed: list[tuple[str, str]]
    seconds: float


def _param_space(study: Study) -> tuple[dict[str, Any], Any, int]:
    from ray import tune

    if study.search is None:
        names = list(study.configurations)
        return {"configuration": tune.grid_search(names), "seed": tune.grid_search(list(study.seeds))}, None, 1
    from ray.tune.search.optuna import OptunaSearch

    space: dict[str, Any] = {}
    for name, spec in study.search.space.items():
        if "choices" in spec:
            space[name] = tune.choice(spec["choices"])
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int) and not spec.get("log"):
            space[name] = tune.randint(spec["low"], spec["high"] + 1)
        else:
            space[name] = (tune.loguniform if spec.get("log") else tune.uniform)(spec["low"], spec["high"])
    searcher = OptunaSearch(metric=study.search.metric, mode="max", seed=study.seeds[0])
    return {"settings": space, "seed": study.seeds[0]}, searcher, study.search.trials


def run_study(
    study: Study, out_dir: Path, *, address: str | None = None, resume: bool = False, retry_failed: bool = False
) -> StudyOutcome:
    """Run (or resume) a checked study on Ray Tune.

    Args:
        study: The study (checked with `Study.check`).
        out_dir: The study folder (absolute paths are used for Ray's workers).
        address: A Ray cluster to join (``auto``, ``<host>:6379``, ``ray://<host>:10001``), or None
            to start a local Ray for this command and stop it after.
        resume: Continue the study saved in ``out_dir``: finished trials are not rerun, interrupted
            ones continue from their checkpoints.
        retry_failed: With ``resume``, run failed trials again (from their checkpoints).

    Returns:
        The outcome.
    """
    import ray
    from ray import tune

    start = time.perf_counter()
    out_dir = out_dir.resolve()
    study_file = out_dir / STUDY_FILE
    if not resume:
        write_json(study_file, study.to_dict())
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, study_file=str(study_file)),
        {"cpu": study.resources.cpus_per_trial, "gpu": study.resources.gpus_per_trial},
    )
    ray.init(address=address, include_dashboard=False, configure_logging=False, log_to_driver=True)
    try:
        tune_dir = out_dir / TUNE_DIR
        if resume and tune.Tuner.can_restore(str(tune_dir)):
            tuner = tune.Tuner.restore(str(tune_dir), trainable, resume_unfinished=True, resume_errored=retry_failed)
        else:
            param_space, searcher, samples = _param_space(study)
            tuner = tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=tune.TuneConfig(
                    max_concurrent_trials=study.resources.concurrency, search_alg=searcher, num_samples=samples
                ),
                run_config=tune.RunConfig(
                    name=TUNE_DIR,
                    storage_path=str(out_dir),
                    failure_config=tune.FailureConfig(max_failures=0),
                    verbose=1,
                ),
            )
        results = tuner.fit()
        trials = [results[i] for i in range(len(results))]
        failed = [(Path(r.path).name, _first_line(r.error)) for r in trials if r.error is not None]
        return StudyOutcome(len(trials), failed, time.perf_counter() - start)
    finally:
        if address is None:
            ray.shutdown()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    meaningful = [line for line in text if line.strip() and not line.startswith(("Traceback", " "))]
    return (meaningful[-1] if meaningful else repr(error))[:500]
