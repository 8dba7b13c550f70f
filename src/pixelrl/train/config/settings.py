"""How a training setting is declared: its role, its check and its tag label, next to its type and help.

Each field of [TrainConfig][pixelrl.train.config.TrainConfig] is declared once with
[setting][pixelrl.train.config.settings.setting]; validation, the run's identity, what
``--resume`` may change, what state-vector runs refuse and how config files are parsed are all
derived from those declarations. The help text is the docstring under the field (tyro reads it).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

__all__ = [
    "MAX_ECHO",
    "NUMBER_AS_TEXT",
    "ROLES",
    "ConfigError",
    "EnvKwargs",
    "Role",
    "Spec",
    "at_least",
    "choice_problem",
    "coerce",
    "echo",
    "in_range",
    "setting",
    "spec_of",
]


class ConfigError(ValueError):
    """A configuration that cannot run; the message says what to change."""


Role = Literal["task", "experiment", "pixel", "control", "output"]
"""What a setting is for.

- ``task``: which task and seed (named in the run's name itself).
- ``experiment``: changes what is learned; part of the run's identity; fixed on ``--resume``.
- ``pixel``: an experiment setting that only applies to pixel observations (``--full-state``
  refuses it when it differs from its default).
- ``control``: steers the run without changing the experiment (length, logging, devices,
  threads); ``--resume`` may change it.
- ``output``: where artifacts go and what the run is called; ``--resume`` may change it (a moved
  or differently spelled folder is the same run).
"""

ROLES: tuple[Role, ...] = get_args(Role)

MAX_ECHO = 200
"""Longest value an error message quotes (a huge value is cut, never echoed whole)."""

Check = Callable[[Any], str | None]
"""Returns what the value must be (e.g. ``"positive"``) when it is invalid, else None."""
Label = Callable[[Any], str]
"""Maps the whole config to this setting's part of the readable run tag ('' for none)."""


@dataclass(frozen=True)
class Spec:
    """The declaration of one setting beyond its type, default and help.

    Attributes:
        role: See [Role][pixelrl.train.config.settings.Role].
        check: Validation of the value on its own (cross-setting rules live in ``validate``).
        label: Its part of the readable run tag, computed from the whole config.
    """

    role: Role
    check: Check | None = None
    label: Label | None = None


_SPEC_KEY = "pixelrl"


def setting(
    default: Any = dataclasses.MISSING,
    *,
    role: Role,
    check: Check | None = None,
    label: Label | None = None,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
) -> Any:
    """Declare a dataclass field as a training setting (write the help as the docstring under it).

    Args:
        default: The default value.
        role: What the setting is for.
        check: Validation of the value.
        label: Its part of the readable run tag.
        default_factory: For mutable defaults (dicts).

    Returns:
        A ``dataclasses.field``.
    """
    metadata = {_SPEC_KEY: Spec(role, check, label)}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def spec_of(field: dataclasses.Field[Any]) -> Spec:
    """The [Spec][pixelrl.train.config.settings.Spec] a field was declared with.

    Raises:
        TypeError: If the field was not declared with ``setting``.
    """
    spec = field.metadata.get(_SPEC_KEY)
    if not isinstance(spec, Spec):
        raise TypeError(f"Field {field.name!r} was not declared with setting(); every setting needs a role.")
    return spec


def at_least(low: int | float) -> Check:
    """A check that the value is ``>= low`` (``None`` passes: it means "default")."""
    phrase = "positive" if low == 1 else f">= {low}"

    def check(value: Any) -> str | None:
        return phrase if value is not None and value < low else None

    return check


def in_range(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Check:
    """A check that the value lies in an interval; ``(0, 1]`` is ``in_range(0, 1, low_open=True)``."""
    bounds = ", ".join(f"{b:,}" if isinstance(b, int) else f"{b:g}" for b in (low, high))
    phrase = f"in {'(' if low_open else '['}{bounds}{')' if high_open else ']'}"

    def check(value: Any) -> str | None:
        if value is None:
            return None
        too_low = value <= low if low_open else value < low
        too_high = value >= high if high_open else value > high
        return phrase if too_low or too_high else None

    return check


def echo(value: Any) -> str:
    """``repr(value)``, cut to [MAX_ECHO][pixelrl.train.config.settings.MAX_ECHO] characters."""
    text = repr(value)
    return text if len(text) <= MAX_ECHO else f"{text[:MAX_ECHO]}... ({len(text):,} characters)"


# --- the one dict-typed setting, as JSON on the command line -------------------------------------

Scalar = Union[int, float, str, bool]  # noqa: UP007 (tyro reads this at run time on Python 3.10)


def _json_object(args: list[str]) -> dict[str, Scalar]:
    value = json.loads(args[0])
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object such as '{{\"noise\": 220}}', got {echo(args[0])}")
    return value


try:  # the command line's parser (the cli extra); the settings work without it, e.g. for recipes in Python
    from tyro.constructors import PrimitiveConstructorSpec

    _ENV_KWARGS_ON_THE_COMMAND_LINE: Any = PrimitiveConstructorSpec(
        nargs=1,
        metavar="JSON",
        instance_from_str=_json_object,
        is_instance=lambda value: isinstance(value, dict),
        str_from_instance=lambda value: [json.dumps(value, sort_keys=True)],
    )
except ImportError:  # pragma: no cover - tyro ships with the cli extra
    _ENV_KWARGS_ON_THE_COMMAND_LINE = "a JSON object on the command line"

EnvKwargs = Annotated[dict[str, Scalar], _ENV_KWARGS_ON_THE_COMMAND_LINE]
"""Extra keyword arguments of ``gym.make``: a dict of scalars, written as a JSON object on the command line."""


NUMBER_AS_TEXT = "number-as-text"
"""Marks a ``str`` setting (``Annotated[str, NUMBER_AS_TEXT]``) that config files may also give as a number."""


# --- values from config files and saved metadata, checked against the field's declared type ------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """``(ok, converted)`` for ``value`` read from a file as type ``tp`` (no string parsing)."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        if NUMBER_AS_TEXT in args[1:] and _is_number(value):
            return True, str(value)
        return _coerce(value, args[0])
    if origin in (Union, types.UnionType):
        for option in args:
            ok, converted = _coerce(value, option)
            if ok:
                return True, converted
        return False, None
    if origin is Literal:
        return value in args and type(value) is type(next(a for a in args if a == value)), value
    if tp is type(None):
        return value is None, None
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        return _is_number(value), float(value) if _is_number(value) else None
    if tp is str:
        return isinstance(value, str), value
    if tp is Path:
        return isinstance(value, str), Path(value) if isinstance(value, str) else None
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, (list, tuple)):
            return False, None
        items = [_coerce(v, args[0]) for v in value]
        return all(ok for ok, _ in items), tuple(v for _, v in items)
    if origin is dict:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            return False, None
        entries = {k: _coerce(v, args[1]) for k, v in value.items()}
        return all(ok for ok, _ in entries.values()), {k: v for k, (_, v) in entries.items()}
    raise TypeError(f"No file conversion for the setting type {tp!r}.")  # pragma: no cover - a new field type


def _describe(tp: Any) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return _describe(args[0])
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is Literal:
        return f"one of {list(args)}"
    if tp is type(None):
        return "null"
    if origin is tuple:
        return f"list of {_describe(args[0])}"
    if origin is dict:
        return "mapping of names to numbers, strings or booleans"
    return getattr(tp, "__name__", str(tp))


def _literal_options(tp: Any) -> list[Any] | None:
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return list(args)
    if origin in (Union, types.UnionType):
        found = [_literal_options(a) for a in args if a is not type(None)]
        return found[0] if len(found) == 1 else None
    return None


def choice_problem(owner: type, name: str, value: Any) -> str | None:
    """What ``value`` must be when ``owner.name`` is declared as a choice (a ``Literal``) it is not, else None.

    Files and the command line are checked when they are read (`coerce`, the parser's choices); this
    checks a config built in Python.
    """
    tp = typing.get_type_hints(owner, include_extras=True)[name]
    options = _literal_options(tp)
    if options is None or value in options or (value is None and _coerce(None, tp)[0]):
        return None
    return f"one of {options}"


def coerce(owner: type, name: str, value: Any, source: str) -> Any:
    """Convert a value read from a file (TOML, YAML, saved metadata) to the declared type of ``owner.name``.

    Only what the type allows is accepted: a string is never parsed as a number, a float never
    truncated to an int; ``float`` settings also take integers. Floats must be finite.

    Args:
        owner: The dataclass that declares the setting.
        name: The field's name.
        value: The value as the file held it.
        source: Where it came from, for the message.

    Returns:
        The converted value.

    Raises:
        ConfigError: Naming the setting, the value (shortened) and the expected type.
    """
    tp = typing.get_type_hints(owner, include_extras=True)[name]
    ok, converted = _coerce(value, tp)
    if ok and isinstance(converted, float) and not math.isfinite(converted):
        raise ConfigError(f"{source}: {name} = {echo(value)} is not a finite number.")
    if not ok:
        literal = _literal_options(tp)
        if literal is not None:
            raise ConfigError(f"{source}: {name} = {echo(value)}; expected one of {literal}.")
        raise ConfigError(f"{source}: {name} = {echo(value)} is not a valid {_describe(tp)}.")
    return converted
