"""Pickle formats of `CompactHerReplayBuffer`: the version number, and conversion of older states.

- Version 2 (this one): the buffer's attributes with every per-transition array cut to the
  filled rows (the fields of `TransitionArrays` are the attribute names), the frame ring as a
  `FrameRingState` under `"_ring"`, and `"format_version": 2`. A state saved before n-step
  returns has no `n_steps` and `gamma`: it loads with `n_steps=1`, the sampling it had.
- Version 1 (pixelrl before the frame ring was composed; no `"format_version"`): the arrays in
  a `"_saved_arrays"` dict keyed `"frames"`, `"observations/<key>"`, ..., the frame ring's
  bookkeeping as buffer attributes, and `augmentation` / `image_keys` / `frames_device` as
  attributes. It is converted on load: nothing stored is lost.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np

from pixelrl.buffers.augmentation import SampleAugmentation
from pixelrl.buffers.compact_layout import CompactLayout, TransitionArrays
from pixelrl.buffers.frame_ring import FrameRingState

__all__ = ["FORMAT_VERSION", "pickled_state", "unpickled_state", "upgrade_state"]

FORMAT_VERSION = 2
Array = np.ndarray[Any, Any]
_ONE_STEP = {"n_steps": 1, "gamma": 0.99}  # what buffers saved before n-step returns sample with


def pickled_state(
    attributes: dict[str, Any], transitions: TransitionArrays[Array], ring: FrameRingState, rows: int
) -> dict[str, Any]:
    """The version-2 state of a buffer.

    Args:
        attributes: The buffer's attributes without the env (SB3's `__getstate__`).
        transitions: Its per-transition arrays, at full capacity.
        ring: Its frame ring's `state_dict`.
        rows: Filled transition slots (all of them once the buffer is full).

    Returns:
        `attributes` with each per-transition array cut to `rows`, the ring under `"_ring"`
        and `"format_version"`.
    """
    trimmed = transitions.map(lambda array: array[:rows])
    state = {**attributes, **{field.name: getattr(trimmed, field.name) for field in fields(trimmed)}}
    state["_ring"] = ring
    state["format_version"] = FORMAT_VERSION
    return state


def unpickled_state(state: dict[str, Any]) -> tuple[dict[str, Any], TransitionArrays[Array], FrameRingState]:
    """Split a pickled state (of any readable version) into what the buffer restores.

    Args:
        state: What `pickled_state` (or a version-1 `__getstate__`) returned.

    Returns:
        `(attributes, transitions, ring)`: the plain attributes, the per-transition arrays at
        full capacity with the saved rows copied in, and the ring's state.

    Raises:
        ValueError: If the state is of a version this code does not know.
    """
    attributes = upgrade_state(state)
    ring: FrameRingState = attributes.pop("_ring")
    del attributes["format_version"]
    saved: TransitionArrays[Array] = TransitionArrays(
        **{field.name: attributes.pop(field.name) for field in fields(TransitionArrays)}
    )
    layout: CompactLayout = attributes["_layout"]
    return attributes, layout.transitions.allocate().zip_with(saved, _copy_rows), ring


def _copy_rows(full: Array, saved: Array) -> Array:
    full[: len(saved)] = saved
    return full


def upgrade_state(state: dict[str, Any]) -> dict[str, Any]:
    """Return a pickled buffer state in the current format, converting a version-1 state.

    Args:
        state: What `__getstate__` of this or an earlier version returned.

    Returns:
        A version-2 state (a new dict; `state` is not modified).

    Raises:
        ValueError: If the state is of a version this code does not know (e.g. written by a
            newer pixelrl).
    """
    version = state.get("format_version", 1 if "_saved_arrays" in state else None)
    if version == FORMAT_VERSION:
        return {**_ONE_STEP, **state}
    if version == 1:
        return {**_ONE_STEP, **_from_version_1(state)}
    raise ValueError(
        f"This CompactHerReplayBuffer was saved in format version {version!r}; this pixelrl reads versions 1 and "
        f"{FORMAT_VERSION}. Load it with the pixelrl version that saved it (or a newer one), or start a new buffer "
        "(load the model without its replay buffer)."
    )


def _from_version_1(state: dict[str, Any]) -> dict[str, Any]:
    old = dict(state)
    saved = old.pop("_saved_arrays")
    del old["_layout"]  # that version's CompactLayout, with its own fields: rebuilt below
    frames_device = old.pop("frames_device")
    sample_augmentation = SampleAugmentation(old.pop("image_keys"), old.pop("augmentation"))
    space, pixel_key, n_envs = old["observation_space"], old["pixel_key"], old["n_envs"]
    frames = saved["frames"]  # (filled frame rows, n_envs, c, H, W)
    layout = CompactLayout.build(
        old["buffer_size"] * n_envs, space, old["action_space"], n_envs, space[pixel_key].shape[0] // frames.shape[2],
        pixel_key, old["copy_info_dict"], old["min_episode_length"],
    )  # fmt: skip
    keys = layout.vector_keys
    transitions = TransitionArrays(
        observations={key: saved[f"observations/{key}"] for key in keys},
        next_observations={key: saved[f"next_observations/{key}"] for key in keys},
        actions=saved["actions"],
        rewards=saved["rewards"],
        dones=saved["dones"],
        timeouts=saved["timeouts"],
        ep_start=saved["ep_start"],
        ep_length=saved["ep_length"],
        infos=saved.get("infos", np.empty((0, n_envs), dtype=object)),  # only saved with copy_info_dict
    )
    ring = FrameRingState(
        layout=layout.ring,
        device=frames_device,
        frames=frames,
        episode_starts=saved["frame_episode_start"],
        newest=saved["frame_index"],
        head=saved["_frame_pos"],
        written=saved["_frame_count"],
        last_stacks=saved["_last_next_pixels"],
    )
    return {
        **old,
        **{field.name: getattr(transitions, field.name) for field in fields(transitions)},
        "_current_ep_start": saved["_current_ep_start"],
        "_episode_steps": saved["_episode_steps"],
        "sample_augmentation": sample_augmentation,
        "_layout": layout,
        "_ring": ring,
        "_rewards_checked": False,
        "format_version": FORMAT_VERSION,
    }
