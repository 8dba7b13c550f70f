from __future__ import annotations

import copy
import pickle
import warnings
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_baselines3 import SAC
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.her import HerReplayBuffer

from pixelrl.buffers import CompactHerReplayBuffer, RandomShiftAug
from pixelrl.wrappers import PixelObservationWrapper
from tests.helpers import point_vec_env

SENTINEL = 0.5  # the env's own reward: compute_reward only returns 0 or -1
IMAGE = 8


class CodedGoalEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Goal env whose frames and goals encode (env id, episode, step); episode ends follow a script.

    ``achieved_goal = [env, episode, step]`` and ``desired_goal = [env, episode, -1]`` (never
    achieved), so a relabelled goal tells where it came from. Frames are random textures whose
    pixel (0, 0) holds the same code, so no two frames are alike.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"]}

    def __init__(self, env_id: int, lengths: list[int], terminates: list[bool], seed: int = 0) -> None:
        self.render_mode = "rgb_array"
        self.env_id, self.lengths, self.terminates = env_id, lengths, terminates
        self.episode, self.t = -1, 0
        self._rng = np.random.default_rng(seed * 10 + env_id)
        goal = spaces.Box(-1e3, 1e3, (3,), np.float64)
        self.observation_space = spaces.Dict(
            {"observation": spaces.Box(-1e3, 1e3, (4,), np.float64), "achieved_goal": goal, "desired_goal": goal}
        )
        self.action_space = spaces.Box(-1, 1, (2,), np.float32)

    def _obs(self) -> dict[str, np.ndarray]:
        code = [float(self.env_id), float(self.episode), float(self.t)]
        return {
            "observation": np.array([*code, 1.0]),
            "achieved_goal": np.array(code),
            "desired_goal": np.array([float(self.env_id), float(self.episode), -1.0]),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return self._obs(), {}

    def step(self, action: np.ndarray):
        self.t += 1
        k = self.episode % len(self.lengths)
        end = self.t >= self.lengths[k]
        terminated = end and self.terminates[k % len(self.terminates)]
        return self._obs(), SENTINEL, terminated, end and not terminated, {"step": self.t}

    def render(self) -> np.ndarray:
        frame = self._rng.integers(0, 256, (IMAGE, IMAGE, 3), dtype=np.uint8)
        frame[0, 0] = (self.env_id, self.episode % 256, self.t % 256)
        return frame

    @staticmethod
    def compute_reward(achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        return -(np.abs(achieved_goal - desired_goal).max(axis=-1) > 0).astype(np.float32)


def coded_vec_env(n_envs: int, lengths, terminates=(False,), frame_stack: int = 3, seed: int = 0) -> DummyVecEnv:
    def make(i: int):
        return lambda: PixelObservationWrapper(
            CodedGoalEnv(i, list(lengths[i % len(lengths)]), list(terminates), seed),
            image_size=IMAGE,
            frame_stack=frame_stack,
            proprio_indices=[0, 1, 2, 3],
        )

    return DummyVecEnv([make(i) for i in range(n_envs)])


def drive(vec_env: DummyVecEnv, buffers: list, n_steps: int, seed: int = 0) -> dict:
    """Step the env as SAC does and add every transition to each buffer.

    Returns ``(pos, env) -> (obs, next_obs)`` of the latest transition written there (what the
    wrapper produced, with SB3's terminal-observation substitution).
    """
    rng = np.random.default_rng(seed)
    records: dict = {}
    obs = vec_env.reset()
    for _ in range(n_steps):
        actions = rng.uniform(-1, 1, (vec_env.num_envs, 2)).astype(np.float32)
        new_obs, rewards, dones, infos = vec_env.step(actions)
        next_obs = copy.deepcopy(new_obs)  # SAC's _store_transition
        for i, done in enumerate(dones):
            if done:
                for key in next_obs:
                    next_obs[key][i] = infos[i]["terminal_observation"][key]
        pos = buffers[0].pos
        for buffer in buffers:
            buffer.add(copy.deepcopy(obs), copy.deepcopy(next_obs), actions, rewards, dones, infos)
        for i in range(vec_env.num_envs):
            records[(pos, i)] = (
                {k: v[i].copy() for k, v in obs.items()},
                {k: v[i].copy() for k, v in next_obs.items()},
            )
        obs = new_obs
    return records


def make_buffers(vec_env, buffer_size: int, **kwargs):
    common = dict(env=vec_env, n_envs=vec_env.num_envs)
    her_kwargs = {
        k: v for k, v in kwargs.items() if k in ("n_sampled_goal", "goal_selection_strategy", "copy_info_dict")
    }
    ours = CompactHerReplayBuffer(buffer_size, vec_env.observation_space, vec_env.action_space, **common, **kwargs)
    theirs = HerReplayBuffer(buffer_size, vec_env.observation_space, vec_env.action_space, **common, **her_kwargs)
    return ours, theirs


def assert_same_batch(a, b) -> None:
    assert a.observations.keys() == b.observations.keys()
    for key in a.observations:
        assert th.equal(a.observations[key], b.observations[key]), key
        assert th.equal(a.next_observations[key], b.next_observations[key]), key
    for field in ("actions", "rewards", "dones"):
        assert th.equal(getattr(a, field), getattr(b, field)), field


def valid_indices(buffer) -> tuple[np.ndarray, np.ndarray]:
    return np.nonzero(buffer.ep_length > 0)


def stored_arrays(buffer) -> dict[str, np.ndarray]:
    """Every array the buffer holds: SB3's per-transition arrays and episode cursors, and the frame ring's."""
    ring = buffer.frame_ring
    out = {f"observations/{key}": array for key, array in buffer.observations.items()}
    out |= {f"next_observations/{key}": array for key, array in buffer.next_observations.items()}
    for name in ("actions", "rewards", "dones", "timeouts", "ep_start", "ep_length", "infos", "_current_ep_start"):
        out[name] = getattr(buffer, name)
    out["_episode_steps"] = buffer._episode_steps
    out["frames"] = np.asarray(ring.frames)
    for name in ("episode_starts", "newest", "head", "written", "last_stacks"):
        out[f"ring.{name}"] = getattr(ring, name)
    assert sum(array.nbytes for array in out.values()) == buffer.nbytes  # nothing left out
    return out


# -- exactness at every boundary ---------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_envs=st.integers(1, 4),
    frame_stack=st.integers(1, 4),
    rows=st.integers(3, 12),
    data=st.data(),
    min_episode_length=st.sampled_from([1, 2, 25]),
    strategy=st.sampled_from(["future", "final", "episode"]),
    frames_device=st.sampled_from([None, "cpu"]),  # NumPy ring, or a torch tensor ring
)
def test_every_sampleable_observation_is_what_the_wrapper_produced(
    n_envs, frame_stack, rows, data, min_episode_length, strategy, frames_device
):
    lengths = data.draw(st.lists(st.lists(st.integers(1, rows - 1), min_size=1, max_size=4), min_size=n_envs))
    terminates = data.draw(st.lists(st.booleans(), min_size=1, max_size=3))
    n_steps = data.draw(st.integers(1, 4 * rows))
    vec_env = coded_vec_env(n_envs, lengths, terminates, frame_stack)
    ours, theirs = make_buffers(
        vec_env,
        rows * n_envs,
        goal_selection_strategy=strategy,
        min_episode_length=min_episode_length,
        frames_device=frames_device,
    )
    records = drive(vec_env, [ours, theirs], n_steps)

    # Sampleable = whole finished episodes that SB3 would also still hold; evicted oldest first.
    assert not (ours.ep_length > 0)[theirs.ep_length == 0].any()
    kept = ours.ep_length > 0
    np.testing.assert_array_equal(ours.ep_length[kept], theirs.ep_length[kept])
    np.testing.assert_array_equal(ours.ep_start[kept], theirs.ep_start[kept])
    if min_episode_length <= min(min(env_lengths) for env_lengths in lengths[:n_envs]):
        np.testing.assert_array_equal(ours.ep_length, theirs.ep_length)  # the frame ring never binds first
    for env_idx in range(n_envs):
        episodes = sorted(
            {int(ours.observations["achieved_goal"][b, env_idx, 1]) for b in np.flatnonzero(kept[:, env_idx])}
        )
        assert episodes == list(range(episodes[0], episodes[0] + len(episodes))) if episodes else True

    # Every observation the buffer can return equals, bit for bit, what the wrapper produced.
    batch, envs = valid_indices(ours)
    if len(batch):
        obs, next_obs = ours.get_observations(batch, envs)
        for row, (b, e) in enumerate(zip(batch, envs, strict=True)):
            want_obs, want_next = records[(b, e)]
            for key in want_obs:
                np.testing.assert_array_equal(obs[key][row], want_obs[key], err_msg=key)
                np.testing.assert_array_equal(next_obs[key][row], want_next[key], err_msg=key)
        if np.array_equal(ours.ep_length, theirs.ep_length):
            np.random.seed(n_steps)
            a = ours.sample(32)
            np.random.seed(n_steps)
            assert_same_batch(a, theirs.sample(32))
    else:
        with pytest.raises(RuntimeError, match="Unable to sample before the end of the first episode"):
            ours.sample(4)


def test_terminal_transition_returns_the_terminal_frame_not_the_reset_frame():
    vec_env = coded_vec_env(1, [[3]], [True], frame_stack=2)
    ours, _ = make_buffers(vec_env, 20)
    drive(vec_env, [ours], 5)
    _, next_obs = ours.get_observations(np.array([2]), np.array([0]))  # step 2 -> 3 ends episode 0
    assert ours.dones[2, 0] == 1
    assert next_obs["pixels"][0, -3:, 0, 0].tolist() == [0, 0, 3]  # env 0, episode 0, step 3
    assert next_obs["pixels"][0, :3, 0, 0].tolist() == [0, 0, 2]
    assert next_obs["achieved_goal"][0].tolist() == [0, 0, 3]
    # The next episode is still in progress: not sampleable.
    with pytest.raises(ValueError, match="not sampleable"):
        ours.get_observations(np.array([3]), np.array([0]))


@pytest.mark.parametrize("frames_device", [None, "cpu"])
def test_sb3_equivalence_with_wrap_around_for_every_strategy_and_info_dicts(frames_device):
    vec_env = point_vec_env(2, seed=0)  # 10-step episodes, frame_stack 2, 16x16
    for strategy in ("future", "final", "episode"):
        for copy_info in (False, True):
            ours, theirs = make_buffers(
                vec_env,
                60,
                goal_selection_strategy=strategy,
                copy_info_dict=copy_info,
                n_sampled_goal=3,
                min_episode_length=10,
                frames_device=frames_device,
            )
            assert isinstance(ours.frames, np.ndarray if frames_device is None else th.Tensor)
            drive(vec_env, [ours, theirs], 95, seed=1)
            assert ours.full
            np.testing.assert_array_equal(ours.ep_length, theirs.ep_length)
            for seed in range(3):
                np.random.seed(seed)
                a = ours.sample(64)
                np.random.seed(seed)
                assert_same_batch(a, theirs.sample(64))


# -- HER ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["future", "final", "episode"])
def test_her_relabels_within_the_episode_and_recomputes_only_relabelled_rewards(strategy):
    lengths = [[4, 7, 5], [6, 3]]
    vec_env = coded_vec_env(2, lengths, [False, True])
    buffer = CompactHerReplayBuffer(
        200, vec_env.observation_space, vec_env.action_space, vec_env, n_envs=2, goal_selection_strategy=strategy
    )
    drive(vec_env, [buffer], 60)
    batch = buffer.sample(400)
    n_virtual = int(buffer.her_ratio * 400)
    n_real = 400 - n_virtual
    obs_goal = batch.observations["desired_goal"]
    achieved = batch.observations["achieved_goal"]
    assert th.equal(obs_goal, batch.next_observations["desired_goal"])

    real, virtual = slice(0, n_real), slice(n_real, None)
    assert (batch.rewards[real] == SENTINEL).all()  # stored rewards kept
    assert (obs_goal[real, 2] == -1).all()  # stored goals kept
    expected = CodedGoalEnv.compute_reward(
        batch.next_observations["achieved_goal"][virtual].numpy(), obs_goal[virtual].numpy(), None
    )
    np.testing.assert_array_equal(batch.rewards[virtual, 0].numpy(), expected)
    assert set(expected.tolist()) == {0.0, -1.0}

    # Goals come from the same env and episode, and (future) not from an earlier step.
    assert th.equal(obs_goal[virtual, :2], achieved[virtual, :2])
    goal_step, step = obs_goal[virtual, 2], achieved[virtual, 2]
    env_ids, episodes = achieved[virtual, 0].long(), achieved[virtual, 1].long()
    length = th.tensor([lengths[e][k % len(lengths[e])] for e, k in zip(env_ids, episodes, strict=True)]).double()
    assert (goal_step >= 1).all()
    assert (goal_step <= length).all()
    if strategy == "future":
        assert (goal_step >= step + 1).all()
    if strategy == "final":
        assert th.equal(goal_step, length)
    if strategy == "episode":
        assert (goal_step < step + 1).any()


def test_without_relabelling_every_row_is_real_and_reset_empties_the_buffer():
    vec_env = coded_vec_env(2, [[3, 4]])
    buffer = CompactHerReplayBuffer(
        40, vec_env.observation_space, vec_env.action_space, vec_env, n_envs=2, n_sampled_goal=0
    )
    drive(vec_env, [buffer], 12)
    batch = buffer.sample(50)
    assert (batch.rewards == SENTINEL).all()
    assert (batch.observations["desired_goal"][:, 2] == -1).all()
    buffer.reset()
    assert buffer.pos == 0
    assert not buffer.full
    with pytest.raises(RuntimeError, match="Unable to sample"):
        buffer.sample(4)
    records = drive(vec_env, [buffer], 12)
    batch_idx, env_idx = valid_indices(buffer)
    obs, _ = buffer.get_observations(batch_idx, env_idx)
    np.testing.assert_array_equal(obs["pixels"][0], records[(batch_idx[0], env_idx[0])][0]["pixels"])


def test_augmentation_shifts_pixels_independently_and_leaves_goals_and_rewards():
    vec_env = coded_vec_env(2, [[5, 6]], frame_stack=2)
    plain = CompactHerReplayBuffer(100, vec_env.observation_space, vec_env.action_space, vec_env, n_envs=2)
    shifted = CompactHerReplayBuffer(100, vec_env.observation_space, vec_env.action_space, vec_env, n_envs=2, pad=2)
    assert plain.augmentation is None
    drive(vec_env, [plain, shifted], 30)
    np.random.seed(0)
    reference = plain.sample(32)
    np.random.seed(0)
    augmented = shifted.sample(32)
    for key in ("achieved_goal", "desired_goal", "proprioception"):
        assert th.equal(reference.observations[key], augmented.observations[key])
        assert th.equal(reference.next_observations[key], augmented.next_observations[key])
    for field in ("actions", "rewards", "dones"):
        assert th.equal(getattr(reference, field), getattr(augmented, field))

    def shifts(original, moved):
        found = []
        for i in range(len(original)):
            found.append(
                next(
                    (dy, dx)
                    for dy in range(-2, 3)
                    for dx in range(-2, 3)
                    if th.equal(
                        RandomShiftAug.shift(original[i : i + 1], th.tensor([dy]), th.tensor([dx])), moved[i : i + 1]
                    )
                )
            )
        return found

    obs_shifts = shifts(reference.observations["pixels"], augmented.observations["pixels"])
    next_shifts = shifts(reference.next_observations["pixels"], augmented.next_observations["pixels"])
    assert obs_shifts != next_shifts
    assert len(set(obs_shifts)) > 1


# -- sizes -------------------------------------------------------------------------------------

CHAPTER_SPACE = spaces.Dict(
    {
        "pixels": spaces.Box(0, 255, (12, 84, 84), np.uint8),
        "proprioception": spaces.Box(-np.inf, np.inf, (10,), np.float64),
        "achieved_goal": spaces.Box(-np.inf, np.inf, (3,), np.float64),
        "desired_goal": spaces.Box(-np.inf, np.inf, (3,), np.float64),
    }
)
CHAPTER_ACTIONS = spaces.Box(-1, 1, (4,), np.float32)


def test_chapter_configuration_costs_at_most_22500_bytes_per_transition():
    for n_envs in (1, 4):
        per_transition = CompactHerReplayBuffer.estimate_nbytes(500_000, CHAPTER_SPACE, CHAPTER_ACTIONS, n_envs) / 5e5
        assert 21_168 < per_transition <= 22_500


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"n_envs": 3, "copy_info_dict": True},
        {"frame_stack": 4, "min_episode_length": 1},
        {"n_envs": 2, "frame_stack": 12, "min_episode_length": 50},
    ],
)
def test_estimate_nbytes_equals_allocated_nbytes(kwargs):
    space = spaces.Dict({**CHAPTER_SPACE.spaces, "pixels": spaces.Box(0, 255, (12, 8, 8), np.uint8)})
    estimate = CompactHerReplayBuffer.estimate_nbytes(301, space, CHAPTER_ACTIONS, **kwargs)
    buffer = CompactHerReplayBuffer(301, space, CHAPTER_ACTIONS, None, **kwargs)
    assert buffer.nbytes == estimate


# -- save / load -------------------------------------------------------------------------------


def sac(vec_env, buffer_size: int, learning_starts: int = 30, seed: int = 0, **buffer_kwargs) -> SAC:
    return SAC(
        "DrQv2SACPolicy",
        vec_env,
        buffer_size=buffer_size,
        batch_size=8,
        learning_starts=learning_starts,
        seed=seed,
        replay_buffer_class=CompactHerReplayBuffer,
        replay_buffer_kwargs={"n_sampled_goal": 2, **buffer_kwargs},
    )


def test_saved_file_grows_with_content_not_capacity(tmp_path):
    sizes, capacity_bytes = [], []
    for capacity in (200, 2000):
        model = sac(point_vec_env(2), capacity, learning_starts=10_000)
        model.learn(45)  # 23 steps of 2 envs
        model.save_replay_buffer(tmp_path / f"{capacity}.pkl")
        sizes.append((tmp_path / f"{capacity}.pkl").stat().st_size)
        capacity_bytes.append(model.replay_buffer.nbytes)
    assert capacity_bytes[1] > 9 * capacity_bytes[0]
    assert sizes[1] < 1.02 * sizes[0]  # same content, 10x the capacity: the same file
    assert sizes[0] < capacity_bytes[0] / 3


def test_sac_saves_reloads_and_keeps_learning(tmp_path):
    vec_env = point_vec_env(1)
    model = sac(vec_env, 300)
    model.learn(45)  # four finished 10-step episodes and one in progress (steps 40..44)
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    original = model.replay_buffer

    fresh = sac(vec_env, 300, learning_starts=0, seed=1)
    fresh.load_replay_buffer(tmp_path / "buffer.pkl", truncate_last_traj=False)
    loaded = fresh.replay_buffer
    assert isinstance(loaded, CompactHerReplayBuffer)
    assert loaded.env is fresh.env
    assert loaded.nbytes == original.nbytes
    np.random.seed(5)
    a = loaded.sample(16)
    np.random.seed(5)
    assert_same_batch(a, original.sample(16))

    # The fresh model resets its env: the unfinished stored episode is closed, with a warning.
    with pytest.warns(UserWarning, match="started a new episode"):
        fresh.learn(10, reset_num_timesteps=False)
    assert loaded.pos == 55
    assert fresh._n_updates > 0  # it trained on the reloaded buffer
    assert loaded.ep_length[40:45, 0].tolist() == [5] * 5

    # SB3's default load truncates the unfinished episode and new episodes start cleanly.
    newer = sac(vec_env, 300, learning_starts=0, seed=2)
    with pytest.warns(UserWarning, match="last trajectory in the replay buffer will be truncated"):
        newer.load_replay_buffer(tmp_path / "buffer.pkl")
    buffer = newer.replay_buffer
    assert buffer.ep_length[40:45, 0].tolist() == [5] * 5
    assert buffer.timeouts[44, 0] == 1
    assert buffer._current_ep_start[0] == buffer.pos == 45
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        newer.learn(20, reset_num_timesteps=False)
    assert buffer.pos == 65
    assert newer._n_updates >= 19
    assert buffer.ep_length[45:55, 0].tolist() == [10] * 10


def test_pickle_round_trip_of_a_wrapped_buffer_is_exact():
    vec_env = coded_vec_env(3, [[2, 5], [3], [4, 1]], [True, False], frame_stack=4)
    buffer = CompactHerReplayBuffer(24, vec_env.observation_space, vec_env.action_space, vec_env, n_envs=3)
    drive(vec_env, [buffer], 30)
    assert buffer.full
    clone = pickle.loads(pickle.dumps(buffer))
    assert clone.env is None
    clone.set_env(vec_env)
    original = stored_arrays(buffer)
    assert stored_arrays(clone).keys() == original.keys()
    for name, array in stored_arrays(clone).items():
        np.testing.assert_array_equal(array, original[name], err_msg=name)
    np.random.seed(0)
    a = clone.sample(20)
    np.random.seed(0)
    assert_same_batch(a, buffer.sample(20))


def test_frames_on_a_torch_device_pickle_as_host_arrays_and_load_without_that_device(monkeypatch):
    vec_env = coded_vec_env(2, [[2, 5], [3, 4]], [True, False], frame_stack=3)
    on_device = CompactHerReplayBuffer(
        20, vec_env.observation_space, vec_env.action_space, vec_env, n_envs=2, frames_device="cpu"
    )
    in_host = CompactHerReplayBuffer(20, vec_env.observation_space, vec_env.action_space, vec_env, n_envs=2)
    drive(vec_env, [on_device, in_host], 25)
    assert isinstance(on_device.frames, th.Tensor)
    np.testing.assert_array_equal(on_device.frames.numpy(), in_host.frames)

    state = on_device.__getstate__()
    assert isinstance(state["_ring"]["frames"], np.ndarray)
    clone = pickle.loads(pickle.dumps(on_device))
    assert isinstance(clone.frames, th.Tensor)
    clone.set_env(vec_env)
    np.random.seed(0)
    a = clone.sample(16)
    np.random.seed(0)
    assert_same_batch(a, in_host.sample(16))

    # Saved from a GPU, loaded where there is none: the frames come back in host memory.
    state["_ring"]["device"] = th.device("cuda")
    monkeypatch.setattr(th.cuda, "is_available", lambda: False)
    restored = CompactHerReplayBuffer.__new__(CompactHerReplayBuffer)
    with pytest.warns(UserWarning, match="loaded into host memory"):
        restored.__setstate__(state)
    assert restored.frames_device is None
    np.testing.assert_array_equal(restored.frames, in_host.frames)


# -- errors ------------------------------------------------------------------------------------


def test_errors_for_bad_configuration():
    from tests.testing_env import GenericGoalEnv

    vec_env = point_vec_env(1)
    space, actions = vec_env.observation_space, vec_env.action_space
    no_pixels = spaces.Dict({k: v for k, v in space.spaces.items() if k != "pixels"})
    with pytest.raises(ValueError, match="pixel_key 'pixels' is not in the observation space"):
        CompactHerReplayBuffer(10, no_pixels, actions, vec_env)
    with pytest.raises(ValueError, match="pixel_key 'rgb' is not in"):
        CompactHerReplayBuffer(10, space, actions, vec_env, pixel_key="rgb")
    eight = spaces.Dict({**space.spaces, "pixels": spaces.Box(0, 255, (8, 16, 16), np.uint8)})
    with pytest.raises(ValueError, match=r"8 channels, which is not a stack of RGB frames.*frame_stack="):
        CompactHerReplayBuffer(10, eight, actions, vec_env)
    assert CompactHerReplayBuffer(10, eight, actions, vec_env, frame_stack=8).frame_stack == 8
    with pytest.raises(ValueError, match="frame_stack=4 does not divide"):
        CompactHerReplayBuffer(10, space, actions, vec_env, frame_stack=4)
    with pytest.raises(ValueError, match="needs a Dict observation space"):
        CompactHerReplayBuffer(10, space["pixels"], actions, vec_env)
    floats = spaces.Dict({**space.spaces, "pixels": spaces.Box(0, 1, (6, 16, 16), np.float32)})
    with pytest.raises(ValueError, match=r"must be Box\(0, 255, \(C, H, W\), uint8\)"):
        CompactHerReplayBuffer(10, floats, actions, vec_env)
    with pytest.raises(ValueError, match="optimize_memory_usage"):
        CompactHerReplayBuffer(10, space, actions, vec_env, optimize_memory_usage=True)
    with pytest.raises(ValueError, match="Unknown goal_selection_strategy 'later'"):
        CompactHerReplayBuffer(10, space, actions, vec_env, goal_selection_strategy="later")
    with pytest.raises(ValueError, match="1 transition slot per env"):
        CompactHerReplayBuffer(3, space, actions, vec_env, n_envs=2)
    desired_only = point_vec_env(1, goal_mode="desired")
    with pytest.raises(ValueError, match=r"\['achieved_goal'\] missing"):
        CompactHerReplayBuffer(10, desired_only.observation_space, desired_only.action_space, desired_only)
    # compute_reward is only called once the env has been reset: its failure shows on the first relabelling.
    no_reward = DummyVecEnv([lambda: PixelObservationWrapper(GenericGoalEnv(with_compute_reward=False), image_size=8)])
    buffer = CompactHerReplayBuffer(50, no_reward.observation_space, no_reward.action_space, no_reward)
    drive(no_reward, [buffer], 21)  # GenericGoalEnv truncates after 20 steps
    with pytest.raises(ValueError, match=r"compute_reward failed .* HER recomputes rewards"):
        buffer.sample(4)


def test_add_rejects_inconsistent_stacks_and_stores_nothing():
    vec_env = coded_vec_env(1, [[3]], frame_stack=3)
    buffer = CompactHerReplayBuffer(
        30, vec_env.observation_space, vec_env.action_space, vec_env, n_envs=1, handle_timeout_termination=False
    )
    obs = vec_env.reset()
    action = np.zeros((1, 2), np.float32)
    new_obs, reward, done, infos = vec_env.step(action)

    padded = copy.deepcopy(obs)
    padded["pixels"][:, :6] = 0  # gymnasium's FrameStackObservation pads with zeros
    with pytest.raises(ValueError, match="must be 3 copies of the first frame"):
        buffer.add(padded, new_obs, action, reward, done, infos)
    unshifted = copy.deepcopy(new_obs)
    unshifted["pixels"][:, :3] += 1
    with pytest.raises(ValueError, match="not obs shifted by one frame"):
        buffer.add(obs, unshifted, action, reward, done, infos)
    assert buffer.pos == 0
    assert buffer.frame_ring.written[0] == 0

    buffer.add(obs, new_obs, action, reward, done, infos)
    after, reward, done, infos = vec_env.step(action)
    with pytest.raises(ValueError, match="neither the previous next_obs"):
        buffer.add(padded, after, action, reward, done, infos)
    assert buffer.pos == 1
    # On done, the reset observation in place of the terminal one is caught (no silent reset frame).
    buffer.add(new_obs, after, action, reward, done, infos)
    last, reward, done, infos = vec_env.step(action)
    assert done[0]
    with pytest.raises(ValueError, match="terminal_observation"):
        buffer.add(after, last, action, reward, done, infos)


def test_episode_longer_than_the_capacity_is_an_error():
    vec_env = coded_vec_env(1, [[50]])
    buffer = CompactHerReplayBuffer(6, vec_env.observation_space, vec_env.action_space, vec_env)
    with pytest.raises(ValueError, match="the episode reached 5 steps"):
        drive(vec_env, [buffer], 10)
    assert buffer.pos == 5
