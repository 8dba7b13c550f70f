"""Pickle formats: buffers saved by the version-1 code load into today's classes and return what they returned.

`data/compact_v1.pkl` was written by `data/make_compact_v1.py` against the version-1 code
(commit 335f335): pickled buffers, and the batches and arrays they gave before being pickled.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch as th

from pixelrl.buffers import CompactHerReplayBuffer, DrQDictReplayBuffer, HerDrQDictReplayBuffer, RandomShiftAug
from tests.buffers.test_compact import coded_vec_env, drive

FIXTURE = Path(__file__).parent / "data" / "compact_v1.pkl"


@pytest.fixture(scope="module")
def v1() -> dict:
    return pickle.loads(FIXTURE.read_bytes())


def case_env(expected: dict):
    case = expected["case"]
    return coded_vec_env(case["n_envs"], case["lengths"], case["terminates"], case["frame_stack"])


def assert_batch_is(batch, recorded: dict) -> None:
    assert batch.observations.keys() == recorded["observations"].keys()
    for key in recorded["observations"]:
        np.testing.assert_array_equal(batch.observations[key].numpy(), recorded["observations"][key], err_msg=key)
        np.testing.assert_array_equal(
            batch.next_observations[key].numpy(), recorded["next_observations"][key], err_msg=key
        )
    for field in ("actions", "rewards", "dones"):
        np.testing.assert_array_equal(getattr(batch, field).numpy(), recorded[field], err_msg=field)


def seeded_sample(buffer, batch_size: int = 16):
    np.random.seed(0)
    th.manual_seed(0)
    return buffer.sample(batch_size)


@pytest.mark.parametrize("name", ["compact_wrapped", "compact_partial"])
def test_a_version_1_compact_buffer_loads_with_everything_it_stored(v1, name):
    blob, expected = v1[name]["pickle"], v1[name]["expected"]
    # The fixture is today's-code-independent evidence of the old format.
    assert "_saved_arrays" in expected["state_keys"]
    assert "format_version" not in expected["state_keys"]
    assert "observations/achieved_goal" in expected["saved_arrays"]

    buffer = pickle.loads(blob)
    assert isinstance(buffer, CompactHerReplayBuffer)
    assert buffer.env is None
    vec_env = case_env(expected)
    buffer.set_env(vec_env)
    assert (buffer.pos, buffer.full) == (expected["pos"], expected["full"])
    for name_, array in (
        ("ep_length", buffer.ep_length),
        ("ep_start", buffer.ep_start),
        ("dones", buffer.dones),
        ("timeouts", buffer.timeouts),
        ("current_ep_start", buffer._current_ep_start),
        ("frames", np.asarray(buffer.frames)),
    ):
        np.testing.assert_array_equal(array, expected[name_], err_msg=name_)
    assert buffer.nbytes == expected["nbytes"]
    obs, next_obs = buffer.get_observations(*expected["valid"])
    for key, want in expected["get_observations"][0].items():
        np.testing.assert_array_equal(obs[key], want, err_msg=key)
        np.testing.assert_array_equal(next_obs[key], expected["get_observations"][1][key], err_msg=key)
    assert_batch_is(seeded_sample(buffer), expected["sample"])

    # Saved again, it is written in the current format and still gives the same batch.
    state = buffer.__getstate__()
    assert state["format_version"] == 2
    assert "_saved_arrays" not in state
    clone = pickle.loads(pickle.dumps(buffer))
    clone.set_env(vec_env)
    assert_batch_is(seeded_sample(clone), expected["sample"])

    # And it keeps collecting: the unfinished episodes are closed, new ones start cleanly.
    with pytest.warns(UserWarning, match="last trajectory in the replay buffer will be truncated"):
        buffer.truncate_last_trajectory()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        drive(vec_env, [buffer], 12)
    batch_idx, env_idx = np.nonzero(buffer.ep_length > 0)
    assert buffer.get_observations(batch_idx, env_idx)[0]["pixels"].shape == (
        len(batch_idx),
        3 * expected["case"]["frame_stack"],
        8,
        8,
    )


def test_version_1_options_come_back_as_they_were(v1):
    wrapped = pickle.loads(v1["compact_wrapped"]["pickle"])
    assert wrapped.copy_info_dict
    assert wrapped.frames_device is None
    assert wrapped.augmentation is None
    assert wrapped.frame_stack == 2
    assert wrapped.min_episode_length == 2
    assert wrapped.n_sampled_goal == 2
    partial = pickle.loads(v1["compact_partial"]["pickle"])
    assert partial.frames_device == th.device("cpu")
    assert isinstance(partial.frames, th.Tensor)
    assert isinstance(partial.augmentation, RandomShiftAug)
    assert partial.augmentation.pad == 2
    assert partial.image_keys == ("pixels",)
    assert partial.frame_stack == 3


def test_a_pre_composition_her_drq_buffer_loads_and_samples_what_it_sampled(v1):
    blob, expected = v1["her_drq"]["pickle"], v1["her_drq"]["expected"]
    assert "augmentation" in expected["state_keys"]  # augmentation was an attribute of the buffer then
    buffer = pickle.loads(blob)
    assert isinstance(buffer, HerDrQDictReplayBuffer)
    assert buffer.augmentation.pad == 2
    assert buffer.image_keys == ("pixels",)
    buffer.set_env(case_env(expected))
    np.testing.assert_array_equal(buffer.ep_length, expected["ep_length"])
    assert_batch_is(seeded_sample(buffer), expected["sample"])


def test_an_unknown_format_version_is_refused_with_what_to_do():
    vec_env = coded_vec_env(1, [[3]], frame_stack=2)
    buffer = CompactHerReplayBuffer(20, vec_env.observation_space, vec_env.action_space, vec_env)
    drive(vec_env, [buffer], 4)
    state = buffer.__getstate__()
    assert state["format_version"] == 2
    state["format_version"] = 7
    restored = CompactHerReplayBuffer.__new__(CompactHerReplayBuffer)
    with pytest.raises(ValueError, match=r"format version 7; this pixelrl reads versions 1 and 2\. Load it with"):
        restored.__setstate__(state)


def test_a_pre_composition_drq_dict_buffer_state_loads():
    vec_env = coded_vec_env(2, [[3, 4]], frame_stack=2)
    buffer = DrQDictReplayBuffer(40, vec_env.observation_space, vec_env.action_space, n_envs=2, pad=3)
    drive(vec_env, [buffer], 10)
    # What pickling a DrQDictReplayBuffer wrote before it composed SampleAugmentation: its __dict__, with
    # the two fields as attributes.
    old_state = dict(vars(buffer))
    helper = old_state.pop("sample_augmentation")
    old_state |= {"augmentation": helper.augmentation, "image_keys": helper.image_keys}
    restored = DrQDictReplayBuffer.__new__(DrQDictReplayBuffer)
    restored.__setstate__(pickle.loads(pickle.dumps(old_state)))
    assert restored.augmentation.pad == 3
    assert restored.image_keys == ("pixels",)
    np.random.seed(0)
    th.manual_seed(0)
    a = restored.sample(8)
    np.random.seed(0)
    th.manual_seed(0)
    b = buffer.sample(8)
    for key in a.observations:
        assert th.equal(a.observations[key], b.observations[key]), key
