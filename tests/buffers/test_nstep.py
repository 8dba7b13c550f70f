"""n-step returns with HER in both HER pixel buffers, checked against a brute-force reference.

The reference (`expected_rows`) is written from the definition, one sampled row at a time, and
reads nothing from the buffers: it recomputes every row from the transitions the envs produced
(recorded while driving them). The coded env's `achieved_goal = [env, episode, step]` tells
which recorded transition a sampled row is, and its rewards and info dicts differ at every step,
so a reward, observation or done taken from the wrong step shows.
"""

from __future__ import annotations

import copy
import pickle
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from pixelrl.buffers import CompactHerReplayBuffer, HerDrQDictReplayBuffer, RandomShiftAug
from pixelrl.wrappers import PixelObservationWrapper
from tests.buffers.test_compact import IMAGE, CodedGoalEnv

BUFFERS = [CompactHerReplayBuffer, HerDrQDictReplayBuffer]
GAMMA = 0.9
# Terminations and truncations, 1-step episodes, episodes longer than n; per env.
LENGTHS = [[2, 5, 1], [4, 3], [6, 2, 3]]
TERMINATES = [True, False, False, True]


class RewardCodedGoalEnv(CodedGoalEnv):
    """`CodedGoalEnv` whose stored rewards differ at every step and whose `compute_reward` reads the info dict."""

    def step(self, action: np.ndarray):
        obs, _, terminated, truncated, info = super().step(action)
        return obs, self.t / 8 + (self.episode % 5) + self.env_id / 16, terminated, truncated, info

    @staticmethod
    def compute_reward(achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        hit = (np.abs(achieved_goal - desired_goal).max(axis=-1) == 0).astype(np.float32)
        step = np.array([item.get("step", 0) for item in info], dtype=np.float32)  # 0 without copy_info_dict
        return hit - 1 + step / 32


def make_vec_env(n_envs: int = 3, lengths=LENGTHS, terminates=TERMINATES) -> DummyVecEnv:
    def make(i: int):
        return lambda: PixelObservationWrapper(
            RewardCodedGoalEnv(i, list(lengths[i % len(lengths)]), list(terminates)),
            image_size=IMAGE,
            frame_stack=2,
            proprio_indices=[0, 1, 2, 3],
        )

    return DummyVecEnv([make(i) for i in range(n_envs)])


class Step(NamedTuple):
    """One transition as the env produced it."""

    next_obs: dict[str, np.ndarray]
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]


def drive_and_record(vec_env: DummyVecEnv, buffers: list, n_steps: int, seed: int = 0) -> dict:
    """Step the envs as SAC does, add every transition to each buffer, return `(env, episode) -> [Step]`."""
    rng = np.random.default_rng(seed)
    episodes: dict[tuple[int, int], list[Step]] = defaultdict(list)
    obs = vec_env.reset()
    for _ in range(n_steps):
        actions = rng.uniform(-1, 1, (vec_env.num_envs, 2)).astype(np.float32)
        new_obs, rewards, dones, infos = vec_env.step(actions)
        next_obs = copy.deepcopy(new_obs)  # SAC's _store_transition
        for i, done in enumerate(dones):
            if done:
                for key in next_obs:
                    next_obs[key][i] = infos[i]["terminal_observation"][key]
        for buffer in buffers:
            buffer.add(copy.deepcopy(obs), copy.deepcopy(next_obs), actions, rewards, dones, infos)
        for i in range(vec_env.num_envs):
            env_id, episode, step = obs["achieved_goal"][i].astype(int)
            truncated = bool(infos[i].get("TimeLimit.truncated", False))
            episodes[(env_id, episode)].append(
                Step({k: v[i].copy() for k, v in next_obs.items()}, float(rewards[i]), dones[i] and not truncated,
                     truncated, infos[i])
            )  # fmt: skip
            assert len(episodes[(env_id, episode)]) == step + 1
        obs = new_obs
    return episodes


class Row(NamedTuple):
    reward: float
    next_obs: dict[str, np.ndarray]
    done: float
    discount: float
    k: int


def expected_rows(
    batch, n_real: int, episodes: dict, n_steps: int, gamma: float, copy_info: bool, timeouts_bootstrap: bool = True
) -> list[Row]:
    """Each sampled row's n-step reward, next_obs, done and discount, from the definition and the record."""
    rows = []
    for row in range(len(batch.actions)):
        env_id, episode, t = batch.observations["achieved_goal"][row].numpy().astype(int)
        goal = batch.observations["desired_goal"][row].numpy()
        steps = episodes[(env_id, episode)]
        k = min(n_steps, len(steps) - t)
        reward = 0.0
        for j in range(k):
            step = steps[t + j]
            if row < n_real:
                r = step.reward
            else:
                info = step.info if copy_info else {}
                r = RewardCodedGoalEnv.compute_reward(step.next_obs["achieved_goal"][None], goal[None], [info])[0]
            reward += gamma**j * float(r)
        last = steps[t + k - 1]
        done = last.terminated or (last.truncated and not timeouts_bootstrap)
        rows.append(Row(reward, {**last.next_obs, "desired_goal": goal}, float(done), gamma**k, k))
    return rows


def assert_rows_are(batch, rows: list[Row]) -> None:
    assert batch.discounts is not None
    assert batch.discounts.shape == batch.rewards.shape == batch.dones.shape == (len(rows), 1)
    assert batch.discounts.dtype == batch.rewards.dtype == batch.dones.dtype == th.float32
    for i, want in enumerate(rows):
        for key, value in want.next_obs.items():
            np.testing.assert_array_equal(batch.next_observations[key][i].numpy(), value, err_msg=f"row {i} {key}")
        assert batch.dones[i, 0].item() == want.done, i
        assert batch.rewards[i, 0].item() == pytest.approx(want.reward, rel=1e-6, abs=1e-6), i
        assert batch.discounts[i, 0].item() == pytest.approx(want.discount, rel=1e-6), i


def make_buffer(cls, vec_env, buffer_size: int, **kwargs):
    if cls is HerDrQDictReplayBuffer:
        kwargs.pop("min_episode_length", None)
        kwargs.setdefault("pad", 0)
    return cls(buffer_size, vec_env.observation_space, vec_env.action_space, vec_env, n_envs=vec_env.num_envs, **kwargs)


def n_real(buffer, batch_size: int) -> int:
    return batch_size - int(buffer.her_ratio * batch_size)


# -- the definition, row by row ------------------------------------------------------------------


@pytest.mark.parametrize("cls", BUFFERS)
@pytest.mark.parametrize("n_steps", [2, 3, 5])
@pytest.mark.parametrize(
    ("strategy", "copy_info"), [("future", True), ("final", False), ("episode", True), ("future", False)]
)
def test_every_row_is_the_n_step_return_of_its_episode(cls, n_steps, strategy, copy_info):
    vec_env = make_vec_env()
    # 12 slots per env for 70 steps: the transition ring (and the frame ring) wrap several times.
    buffer = make_buffer(
        cls, vec_env, 36, n_steps=n_steps, gamma=GAMMA, goal_selection_strategy=strategy, copy_info_dict=copy_info,
        n_sampled_goal=3, min_episode_length=2,
    )  # fmt: skip
    episodes = drive_and_record(vec_env, [buffer], 70)
    kept = buffer.ep_length > 0
    assert buffer.full and (buffer.ep_start + buffer.ep_length > buffer.buffer_size)[kept].any()  # wrapping episodes

    rows: list[Row] = []
    for seed in range(2):
        np.random.seed(seed)
        batch = buffer.sample(64)
        want = expected_rows(batch, n_real(buffer, 64), episodes, n_steps, GAMMA, copy_info)
        assert_rows_are(batch, want)
        rows += want
    # The batch covered what the definition distinguishes.
    ks = [row.k for row in rows]
    assert max(ks) == n_steps and min(ks) < n_steps
    assert any(row.done for row in rows)
    assert any(row.k < n_steps and not row.done for row in rows)  # sums stopped at a truncation


@pytest.mark.parametrize("cls", BUFFERS)
def test_truncations_terminate_without_timeout_handling(cls):
    vec_env = make_vec_env()
    buffer = make_buffer(cls, vec_env, 60, n_steps=3, gamma=GAMMA, handle_timeout_termination=False)
    episodes = drive_and_record(vec_env, [buffer], 40)
    np.random.seed(0)
    batch = buffer.sample(64)
    # Without timeout handling SB3 treats every episode end as a termination.
    rows = expected_rows(batch, n_real(buffer, 64), episodes, 3, GAMMA, copy_info=False, timeouts_bootstrap=False)
    assert_rows_are(batch, rows)
    with_timeouts = expected_rows(batch, n_real(buffer, 64), episodes, 3, GAMMA, copy_info=False)
    assert any(row.done and not other.done for row, other in zip(rows, with_timeouts, strict=True))


@pytest.mark.parametrize("cls", BUFFERS)
def test_without_relabelling_every_row_sums_stored_rewards(cls):
    vec_env = make_vec_env()
    buffer = make_buffer(cls, vec_env, 60, n_steps=3, gamma=GAMMA, n_sampled_goal=0)
    episodes = drive_and_record(vec_env, [buffer], 40)
    np.random.seed(0)
    batch = buffer.sample(32)
    assert_rows_are(batch, expected_rows(batch, 32, episodes, 3, GAMMA, copy_info=False))


# -- the draws are SB3's -----------------------------------------------------------------------


@pytest.mark.parametrize("cls", BUFFERS)
@pytest.mark.parametrize("strategy", ["future", "final", "episode"])
def test_same_rows_and_goals_as_the_one_step_sample(cls, strategy):
    vec_env = make_vec_env()
    one = make_buffer(cls, vec_env, 45, goal_selection_strategy=strategy, min_episode_length=2)
    three = make_buffer(cls, vec_env, 45, goal_selection_strategy=strategy, min_episode_length=2, n_steps=3, gamma=0.5)
    drive_and_record(vec_env, [one, three], 50)
    np.random.seed(1)
    a = one.sample(96)
    after_one_step = np.random.get_state()[1].copy()
    np.random.seed(1)
    b = three.sample(96)
    assert a.discounts is None
    np.testing.assert_array_equal(np.random.get_state()[1], after_one_step)  # no extra draws
    assert a.observations.keys() == b.observations.keys() == a.next_observations.keys() == b.next_observations.keys()
    for key in a.observations:  # the same rows, goals included
        assert th.equal(a.observations[key], b.observations[key]), key
    assert th.equal(a.actions, b.actions)
    assert th.equal(a.next_observations["desired_goal"], b.next_observations["desired_goal"])
    # Rows whose episode ends at their own step are one-step rows: SB3's, exactly.
    one_step = (b.discounts[:, 0] == np.float32(0.5)).numpy()
    assert 0 < one_step.sum() < 96
    for key in a.next_observations:
        assert th.equal(a.next_observations[key][one_step], b.next_observations[key][one_step]), key
    assert th.equal(a.rewards[one_step], b.rewards[one_step])
    assert th.equal(a.dones[one_step], b.dones[one_step])


@pytest.mark.parametrize("cls", BUFFERS)
def test_augmentation_shifts_the_n_step_next_obs(cls):
    vec_env = make_vec_env(2)
    plain = make_buffer(cls, vec_env, 60, n_steps=3, gamma=GAMMA, pad=0)
    shifted = make_buffer(cls, vec_env, 60, n_steps=3, gamma=GAMMA, pad=1)
    drive_and_record(vec_env, [plain, shifted], 30)
    np.random.seed(0)
    a = plain.sample(16)
    np.random.seed(0)
    b = shifted.sample(16)
    for field in ("rewards", "dones", "discounts"):
        assert th.equal(getattr(a, field), getattr(b, field)), field
    moved = 0
    for i in range(16):
        original, augmented = a.next_observations["pixels"][i : i + 1], b.next_observations["pixels"][i : i + 1]
        shifts = [
            (dy, dx)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if th.equal(RandomShiftAug.shift(original, th.tensor([dy]), th.tensor([dx])), augmented)
        ]
        assert shifts, i
        moved += (0, 0) not in shifts
    assert moved > 0


@pytest.mark.parametrize("cls", BUFFERS)
def test_vec_normalize_normalises_each_reward_and_the_next_obs_and_relabels_with_raw_goals(cls):
    vec_env = make_vec_env(2)
    buffer = make_buffer(cls, vec_env, 80, n_steps=3, gamma=GAMMA)
    drive_and_record(vec_env, [buffer], 40)
    normalize = VecNormalize(make_vec_env(2), norm_obs_keys=["proprioception", "desired_goal"], clip_reward=1e6)
    normalize.ret_rms.var[...] = 4.0
    normalize.obs_rms["desired_goal"].mean[...] = [1.0, 2.0, -3.0]
    normalize.obs_rms["desired_goal"].var[...] = [4.0, 0.25, 9.0]
    normalize.obs_rms["proprioception"].mean[...] = 0.5
    np.random.seed(0)
    raw = buffer.sample(64)
    np.random.seed(0)
    normalised = buffer.sample(64, env=normalize)
    th.testing.assert_close(normalised.rewards, raw.rewards / np.sqrt(4.0 + normalize.epsilon))
    want = normalize.normalize_obs({key: value.numpy() for key, value in raw.next_observations.items()})
    for key in ("proprioception", "achieved_goal", "desired_goal", "pixels"):
        np.testing.assert_allclose(normalised.next_observations[key].numpy(), want[key], rtol=1e-6, err_msg=key)
    assert th.equal(normalised.discounts, raw.discounts)


# -- options, pickles ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", BUFFERS)
def test_n_steps_1_has_no_discounts_and_bad_options_are_refused(cls):
    vec_env = make_vec_env(1)
    buffer = make_buffer(cls, vec_env, 30)
    assert (buffer.n_steps, buffer.gamma) == (1, 0.99)
    drive_and_record(vec_env, [buffer], 12)
    assert buffer.sample(8).discounts is None
    with pytest.raises(ValueError, match=r"n_steps must be an integer >= 1.*got 0"):
        make_buffer(cls, vec_env, 30, n_steps=0)
    with pytest.raises(ValueError, match=r"n_steps must be an integer >= 1.*got 2.5"):
        make_buffer(cls, vec_env, 30, n_steps=2.5)
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\], got 1.5"):
        make_buffer(cls, vec_env, 30, n_steps=3, gamma=1.5)


@pytest.mark.parametrize("cls", BUFFERS)
def test_pickled_n_step_buffer_samples_what_it_sampled(cls):
    vec_env = make_vec_env()
    buffer = make_buffer(cls, vec_env, 36, n_steps=3, gamma=GAMMA, copy_info_dict=True)
    drive_and_record(vec_env, [buffer], 50)
    clone = pickle.loads(pickle.dumps(buffer))
    clone.set_env(vec_env)
    assert (clone.n_steps, clone.gamma) == (3, GAMMA)
    np.random.seed(3)
    a = clone.sample(32)
    np.random.seed(3)
    b = buffer.sample(32)
    for key in a.observations:
        assert th.equal(a.observations[key], b.observations[key]), key
        assert th.equal(a.next_observations[key], b.next_observations[key]), key
    for field in ("actions", "rewards", "dones", "discounts"):
        assert th.equal(getattr(a, field), getattr(b, field)), field


@pytest.mark.parametrize("cls", BUFFERS)
def test_a_state_saved_before_n_step_returns_loads_as_one_step(cls):
    vec_env = make_vec_env(2)
    one = make_buffer(cls, vec_env, 40)
    three = make_buffer(cls, vec_env, 40, n_steps=3, gamma=GAMMA)
    drive_and_record(vec_env, [one, three], 30)
    state = three.__getstate__()
    del state["n_steps"], state["gamma"]
    if cls is CompactHerReplayBuffer:
        assert state["format_version"] == 2
    restored = cls.__new__(cls)
    restored.__setstate__(pickle.loads(pickle.dumps(state)))
    restored.set_env(vec_env)
    assert restored.n_steps == 1
    np.random.seed(0)
    a = restored.sample(16)
    np.random.seed(0)
    b = one.sample(16)
    assert a.discounts is None
    assert th.equal(a.rewards, b.rewards)
    for key in a.next_observations:
        assert th.equal(a.next_observations[key], b.next_observations[key]), key


def test_version_1_pickles_load_as_one_step():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # frames saved on a device
        fixture = pickle.loads((Path(__file__).parent / "data" / "compact_v1.pkl").read_bytes())
    for name in ("compact_wrapped", "compact_partial", "her_drq"):
        buffer = pickle.loads(fixture[name]["pickle"])
        assert buffer.n_steps == 1, name


CUDA = pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not th.cuda.is_available(), reason="CUDA")])


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_frames_on_a_torch_device_give_the_host_rings_n_step_batch(device):
    vec_env = make_vec_env()
    kwargs = dict(n_steps=3, gamma=GAMMA, min_episode_length=2, device=device)
    on_device = make_buffer(CompactHerReplayBuffer, vec_env, 36, frames_device=device, **kwargs)
    in_host = make_buffer(CompactHerReplayBuffer, vec_env, 36, **kwargs)
    drive_and_record(vec_env, [on_device, in_host], 50)
    assert isinstance(on_device.frames, th.Tensor)
    np.random.seed(0)
    a = on_device.sample(32)
    np.random.seed(0)
    b = in_host.sample(32)
    assert a.discounts.device.type == a.next_observations["pixels"].device.type == device
    for key in a.observations:
        assert th.equal(a.observations[key], b.observations[key]), key
        assert th.equal(a.next_observations[key], b.next_observations[key]), key
    for field in ("actions", "rewards", "dones", "discounts"):
        assert th.equal(getattr(a, field), getattr(b, field)), field
