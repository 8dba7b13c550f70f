"""Config files (TOML, YAML, JSON) read as plain data, with limits that keep a hostile file harmless."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pixelrl.train.config.settings import MAX_ECHO, ConfigError

__all__ = ["MAX_CONFIG_BYTES", "load_config_file"]

MAX_CONFIG_BYTES = 1_000_000
"""Largest config file read (a real one is a few hundred bytes)."""


def _load_yaml(text: str) -> Any:
    import yaml

    class NoAliasSafeLoader(yaml.SafeLoader):
        """SafeLoader (plain data, no Python objects) that also refuses anchors and aliases.

        Nested aliases let a few hundred bytes expand to gigabytes (the "billion laughs" file);
        a training config never needs them.
        """

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise ConfigError(
                    f"YAML aliases (*{event.anchor}) are not allowed in config files (line "
                    f"{event.start_mark.line + 1}); write the values out."
                )
            return super().compose_node(parent, index)

    return yaml.load(text, Loader=NoAliasSafeLoader)


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML (``.toml``), YAML (``.yaml`` / ``.yml``) or JSON (``.json``) config file as plain data.

    A ``preset`` key selects a preset; every other key is a [TrainConfig][pixelrl.train.config.TrainConfig]
    setting. Nothing in the file is evaluated (YAML tags that build Python objects are refused),
    YAML aliases are refused, and files over `MAX_CONFIG_BYTES`
    are not read.

    Args:
        path: The file.

    Returns:
        The mapping of settings.

    Raises:
        ConfigError: If the file is missing, too large, not UTF-8 text, of an unknown type, unparsable
            or not a mapping.
    """
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist.")
    if path.suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise ConfigError(f"Config file {path}: use a .toml, .yaml/.yml or .json file.")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"Config file {path} is {size:,} bytes; a config file is at most {MAX_CONFIG_BYTES:,}.")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Config file {path} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    try:
        if path.suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover
                import tomli as tomllib  # type: ignore[import-not-found]
            data: Any = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = _load_yaml(text)
    except ConfigError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"Config file {path} could not be parsed: {first[:MAX_ECHO]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of settings, got {type(data).__name__}.")
    return data
