"""A study: named configurations (a grid, a list, or a search space) x seeds, each trial one training run.

A study is read from a study file (TOML, YAML or JSON, parsed as data like config files) and/or
flags, and checked whole before Ray starts: every trial's settings are validated as
`pixelrl-train train` would, so a bad grid exits 2 with the same message. The resolved study is
saved as ``study.json`` in the study folder; ``--resume`` continues that saved study.

Study file::

    seeds = [0, 1, 2]
    [base]                      # settings of every trial (a `preset` key too)
    env = "pixelrl/PointReach-v0"
    goal_mode = "strict"
    [grid]                      # each combination is a configuration ...
    n_steps = [1, 3]
    [configurations.fast]       # ... and/or named configurations over the base (a `preset` key too)
    learning_rate = 1e-3
    [resources]
    concurrency = 2             # trials at a time
    cpus_per_trial = 1
    gpus_per_trial = 0          # a fraction shares a GPU, e.g. 0.25
    [search]                    # instead of the grid: Optuna over named ranges
    trials = 20
    space = { learning_rate = { low = 1e-4, high = 3e-3, log = true }, batch_size = { choices = [64, 128] } }
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pixelrl.train.config import ConfigError, TrainConfig, load_config_file, overlay, resolve_base
from pixelrl.train.config.settings import echo
from pixelrl.train.run.factory import check_env_id

__all__ = ["STUDY_SCHEMA", "Resources", "SearchSpace", "Study", "parse_value", "study_from"]

STUDY_SCHEMA = "pixelrl.study/1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,79}$")
_KEYS = {"name", "seeds", "base", "grid", "configurations", "resources", "search"}


def parse_value(text: str) -> Any:
    """A value given on the command line: a JSON number, boolean, list or object, else the text itself.

    Examples:
        >>> parse_value("1e-3"), parse_value("true"), parse_value("[64, 64]"), parse_value("strict")
        (0.001, True, [64, 64], 'strict')
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@dataclass(frozen=True)
class Resources:
    """What each trial gets and how many run at once.

    Attributes:
        concurrency: Trials running at the same time.
        cpus_per_trial: CPUs Ray reserves per trial (the trial's torch threads).
        gpus_per_trial: GPUs per trial; a fraction lets several trials share one GPU.
    """

    concurrency: int = 1
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0

    def check(self) -> None:
        """Raises ConfigError for values Ray cannot schedule."""
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise ConfigError(f"concurrency must be a positive integer, got {echo(self.concurrency)}.")
        if not 0 < self.cpus_per_trial <= 1024:
            raise ConfigError(f"cpus_per_trial must be positive, got {echo(self.cpus_per_trial)}.")
        if not 0 <= self.gpus_per_trial <= 64:
            raise ConfigError(f"gpus_per_trial must be 0 or more (a fraction shares a GPU), got {self.gpus_per_trial}.")


@dataclass(frozen=True)
class SearchSpace:
    """Optuna search (through Ray Tune) over named ranges, with a trial budget.

    Attributes:
        trials: How many configurations to try.
        space: Setting -> ``{"low", "high", "log"}`` (a number range) or ``{"choices": [...]}``.
        metric: What to maximize: ``final_success`` (the last evaluation's success rate).
    """

    trials: int
    space: dict[str, dict[str, Any]]
    metric: Literal["final_success"] = "final_success"


@dataclass(frozen=True)
class Study:
    """A resolved study: every configuration's settings, the seeds, the resources.

    Attributes:
        name: The study's name.
        base: Settings every trial shares (before its configuration's).
        configurations: Configuration name -> its settings over ``base`` (empty in search mode).
        seeds: The seeds every configuration runs with (the first only, in search mode).
        resources: Concurrency and per-trial CPUs and GPUs.
        search: The search space, or None for a grid / list of configurations.
    """

    name: str
    base: dict[str, Any]
    configurations: dict[str, dict[str, Any]]
    seeds: tuple[int, ...]
    resources: Resources = field(default_factory=Resources)
    search: SearchSpace | None = None

    def config(self, configuration: str | Mapping[str, Any], seed: int, out_dir: Path) -> TrainConfig:
        """The training settings of one trial.

        Args:
            configuration: A configuration's name, or (search mode) the sampled settings.
            seed: The trial's seed.
            out_dir: The study folder (every trial writes its usual artifacts there).

        Returns:
            The trial's settings, tagged with the configuration's name so runs never collide.
        """
        if isinstance(configuration, str):
            name, settings = configuration, self.configurations[configuration]
        else:
            settings = dict(configuration)
            name = "search-" + "_".join(f"{k}-{_short(v)}" for k, v in sorted(settings.items()))
        # A configuration's own preset replaces the base's; then the base's settings, then its own.
        preset = settings.get("preset", self.base.get("preset"))
        base = overlay(resolve_base(preset, None), _without(self.base, "preset"), "study base")
        threads = max(int(self.resources.cpus_per_trial), 1)
        run = {"seed": seed, "out_dir": str(out_dir), "tag": name[:100], "threads": threads, "progress": True}
        return overlay(overlay(base, _without(settings, "preset"), f"configuration {name}"), run, "study")

    def trials(self) -> list[tuple[str, int]]:
        """Every ``(configuration, seed)`` of a grid or list study."""
        return [(name, seed) for name in self.configurations for seed in self.seeds]

    def check(self, out_dir: Path) -> None:
        """Validate every trial's settings, as ``train`` does, before anything starts.

        Raises:
            ConfigError: Naming the configuration and what is wrong with it.
        """
        self.resources.check()
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"The study needs distinct seeds, got {list(self.seeds)}.")
        examples: list[tuple[str, Mapping[str, Any]]] = list(self.configurations.items())
        if self.search is not None:
            examples = [("search", _search_examples(self.search))]
        if not examples:
            raise ConfigError("The study has no configuration: give [grid], [configurations] or [search] values.")
        for name, settings in examples:
            try:
                config = self.config(name if self.search is None else settings, self.seeds[0], out_dir)
                config.validate()
                check_env_id(config.env)
            except ConfigError as exc:
                raise ConfigError(f"Study {self.name}, configuration {name}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The study as saved in ``study.json``."""
        return {
            "schema": STUDY_SCHEMA,
            "name": self.name,
            "base": self.base,
            "configurations": self.configurations,
            "seeds": list(self.seeds),
            "resources": self.resources.__dict__,
            "search": None if self.search is None else self.search.__dict__,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str) -> Study:
        """Rebuild a saved study.

        Raises:
            ConfigError: If ``data`` is not a saved study of this version.
        """
        if data.get("schema") != STUDY_SCHEMA:
            raise ConfigError(f"{source} is not a pixelrl study (schema {STUDY_SCHEMA}).")
        search = data.get("search")
        return cls(
            name=data["name"],
            base=dict(data["base"]),
            configurations={k: dict(v) for k, v in data["configurations"].items()},
            seeds=tuple(data["seeds"]),
            resources=Resources(**data["resources"]),
            search=None if search is None else SearchSpace(**search),
        )


def _short(value: Any) -> str:
    text = format(value, ".3g") if isinstance(value, float) else str(value)
    return re.sub(r"[^A-Za-z0-9.+-]", "", text)


def _without(values: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k != key}


def _search_examples(search: SearchSpace) -> dict[str, Any]:
    """One point of the search space (each range's low end, each first choice), to validate the settings."""
    point: dict[str, Any] = {}
    for name, spec in search.space.items():
        if "choices" in spec:
            if not isinstance(spec["choices"], list) or not spec["choices"]:
                raise ConfigError(
                    f"search space {name}: choices must be a non-empty list, got {echo(spec['choices'])}."
                )
            point[name] = spec["choices"][0]
        elif {"low", "high"} <= set(spec):
            low, high = spec["low"], spec["high"]
            if not (isinstance(low, (int, float)) and isinstance(high, (int, float)) and low < high):
                raise ConfigError(f"search space {name}: needs numbers low < high, got {echo(spec)}.")
            if spec.get("log") and low <= 0:
                raise ConfigError(f"search space {name}: a log range needs low > 0, got {low}.")
            point[name] = low
        else:
            raise ConfigError(
                f"search space {name}: give {{low, high[, log]}} or {{choices = [...]}}, got {echo(spec)}."
            )
    return point


def _grid(values: Mapping[str, Any], source: str) -> dict[str, dict[str, Any]]:
    if not values:
        return {}
    for key, options in values.items():
        if not isinstance(options, list) or not options:
            raise ConfigError(f"{source}: grid {key} must be a non-empty list of values, got {echo(options)}.")
    keys = list(values)
    configurations = {}
    for combination in itertools.product(*(values[k] for k in keys)):
        settings = dict(zip(keys, combination, strict=True))
        configurations["_".join(f"{k}-{_short(v)}" for k, v in settings.items())] = settings
    return configurations


def study_from(
    study_file: Path | None,
    *,
    name: str | None = None,
    preset: str | None = None,
    base: Mapping[str, Any] | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    seeds: Sequence[int] | None = None,
    resources: Mapping[str, Any] | None = None,
) -> Study:
    """Build a study from a study file and flags (flags win), without checking it.

    Args:
        study_file: A TOML / YAML / JSON study file, or None.
        name: The study's name (default: the file's stem, else ``study``).
        preset: A preset for the base settings.
        base: Base settings over the file's.
        grid: Grid values over the file's.
        seeds: Seeds instead of the file's (default 0).
        resources: Resources over the file's.

    Returns:
        The study.

    Raises:
        ConfigError: For an unreadable file, unknown sections, or malformed values.
    """
    data: dict[str, Any] = dict(load_config_file(study_file)) if study_file is not None else {}
    source = f"study file {study_file}" if study_file is not None else "the study"
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown sections {unknown}; expected {sorted(_KEYS)}.")
    for section in ("base", "grid", "configurations", "resources", "search"):
        if not isinstance(data.get(section, {}), dict):
            raise ConfigError(f"{source}: [{section}] must be a table of settings, got {echo(data[section])}.")
    merged_base = {**data.get("base", {}), **(base or {})}
    if preset is not None:
        merged_base["preset"] = preset
    configurations = {
        **_grid({**data.get("grid", {}), **{k: list(v) for k, v in (grid or {}).items()}}, source),
        **{str(k): dict(v) for k, v in data.get("configurations", {}).items()},
    }
    for configuration in configurations:
        if not _NAME.match(configuration):
            raise ConfigError(
                f"{source}: configuration name {echo(configuration)} must be 1-80 letters, digits, '.', '_', '+' "
                "or '-' (it names the runs' folders)."
            )
    if not configurations and "search" not in data:
        configurations = {"base": {}}  # a study of seeds alone
    chosen_seeds = tuple(seeds) if seeds else tuple(data.get("seeds", (0,)))
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in chosen_seeds):
        raise ConfigError(f"{source}: seeds must be integers, got {echo(list(chosen_seeds))}.")
    try:
        chosen_resources = Resources(**{**data.get("resources", {}), **(resources or {})})
    except TypeError as exc:
        raise ConfigError(f"{source}: [resources] {exc}; use concurrency, cpus_per_trial, gpus_per_trial.") from None
    search = None
    if "search" in data:
        spec = data["search"]
        if not isinstance(spec.get("trials"), int) or spec["trials"] < 1 or not isinstance(spec.get("space"), dict):
            raise ConfigError(f"{source}: [search] needs trials = <positive int> and a space table, got {echo(spec)}.")
        search = SearchSpace(trials=spec["trials"], space=spec["space"])
        if data.get("grid") or data.get("configurations") or grid:
            raise ConfigError(f"{source}: give either [search] or a grid / configurations, not both.")
        chosen_seeds = chosen_seeds[:1]
    study_name = name or (study_file.stem if study_file is not None else "study")
    if not _NAME.match(study_name):
        raise ConfigError(f"Study name {echo(study_name)} must be 1-80 letters, digits, '.', '_', '+' or '-'.")
    return Study(study_name, merged_base, configurations, chosen_seeds, chosen_resources, search)
