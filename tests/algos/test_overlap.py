"""Overlapped collection: the buffer gets exactly SB3's transitions, the collecting policy is one update behind.

The runs act with a scripted policy (actions seeded by the step count), so an overlapped and an
unoverlapped run take the same actions and see the same envs: everything they store, and every
parameter they learn, must be equal; only the moment each action is chosen differs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from pixelrl.algos import DrQv2SAC
from pixelrl.buffers import CompactHerReplayBuffer, EnvComputeReward
from tests.helpers import IMAGE, point_env

N_ENVS, EPISODE, LEARNING_STARTS, TOTAL, SAVE_AT = 2, 6, 14, 48, 30
TRANSITIONS = ("actions", "rewards", "dones", "timeouts", "ep_start", "ep_length")


class Scripted(DrQv2SAC):
    """Acts with actions seeded by the step count, and records when it acts and when it trains."""

    events: list

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        self.events.append(("act", self.num_timesteps))
        rng = np.random.default_rng(self.num_timesteps)
        return rng.uniform(-1, 1, (self.n_envs, 2)).astype(np.float32), None

    def train(self, gradient_steps, batch_size=64):
        self.events.append(("train", self.num_timesteps, self.replay_buffer.pos, self.step_in_flight))
        super().train(gradient_steps, batch_size)


class Checkpoints(BaseCallback):
    """Asserts no step is in flight whenever a callback runs; saves model and buffer as pixelrl-train does."""

    def __init__(self, folder, at):
        super().__init__()
        self.folder, self.at, self.saved = folder, at, None

    def _on_rollout_start(self):
        assert not self.model.step_in_flight
        if self.saved is None and self.num_timesteps >= self.at:
            self.model.save(self.folder / "model")
            self.model.save_replay_buffer(self.folder / "buffer")
            self.saved = (self.num_timesteps, self.model.replay_buffer.pos)

    def _on_step(self):
        assert not self.model.step_in_flight
        return True


def subproc_env(seed=0):
    # fork: the point envs never touch OpenGL, and forking is instant (forkserver takes seconds per env).
    env = SubprocVecEnv([lambda: point_env(max_episode_steps=EPISODE) for _ in range(N_ENVS)], start_method="fork")
    env.seed(seed)
    return env


def make(env, overlap, cls=Scripted, **kwargs):
    model = cls(
        "DrQv2SACPolicy", env, buffer_size=400, batch_size=8, learning_starts=LEARNING_STARTS, gradient_steps=2,
        seed=0, replay_buffer_class=CompactHerReplayBuffer,
        replay_buffer_kwargs={"compute_reward": EnvComputeReward("pixelrl/PointReach-v0", {"image_size": IMAGE})},
        policy_kwargs={"net_arch": [16], "features_extractor_kwargs": {"num_filters": 4}},
        overlap_collection=overlap, **kwargs,
    )  # fmt: skip
    model.events = []
    model.set_logger(configure(folder=None, format_strings=[]))
    return model


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for overlap in (False, True):
        folder = tmp_path_factory.mktemp(f"overlap{overlap}")
        env = subproc_env()
        model = make(env, overlap)
        checkpoints = Checkpoints(folder, SAVE_AT)
        model.learn(TOTAL, callback=checkpoints)
        assert not model.step_in_flight  # none left behind
        env.close()
        out[overlap] = (model, folder, checkpoints.saved)
    return out


def test_the_buffer_receives_exactly_the_transitions_of_an_unoverlapped_run(runs):
    (plain, _, _), (overlapped, _, _) = runs[False], runs[True]
    a, b = plain.replay_buffer, overlapped.replay_buffer
    assert a.pos == b.pos == TOTAL // N_ENVS
    for name in TRANSITIONS:
        np.testing.assert_array_equal(getattr(b, name), getattr(a, name), err_msg=name)
    for key in a.observations:
        np.testing.assert_array_equal(b.observations[key], a.observations[key], err_msg=key)
        np.testing.assert_array_equal(b.next_observations[key], a.next_observations[key], err_msg=key)
    np.testing.assert_array_equal(b.frames, a.frames)
    # Episode boundaries: each env's episodes of EPISODE steps, in order, as the envs produced them.
    assert (a.ep_length[: a.pos] == EPISODE).all()
    assert (a.ep_start[: a.pos] == (np.arange(a.pos) // EPISODE * EPISODE)[:, None]).all()
    assert overlapped._episode_num == plain._episode_num == TOTAL // EPISODE


def test_each_update_sees_the_same_transitions_and_learns_the_same_parameters(runs):
    (plain, _, _), (overlapped, _, _) = runs[False], runs[True]
    trains = [event[:3] for event in plain.events if event[0] == "train"]
    assert trains == [event[:3] for event in overlapped.events if event[0] == "train"]
    # The first update comes after the step that passes learning_starts, when its transition is stored.
    assert trains[0] == ("train", LEARNING_STARTS + N_ENVS, (LEARNING_STARTS + N_ENVS) // N_ENVS)
    for (name, x), y in zip(plain.policy.state_dict().items(), overlapped.policy.state_dict().values(), strict=True):
        assert th.equal(x, y), name
    assert plain.logger.name_to_value["train/critic_loss"] == overlapped.logger.name_to_value["train/critic_loss"]


def test_the_collecting_policy_is_one_update_behind(runs):
    (plain, _, _), (overlapped, _, _) = runs[False], runs[True]
    first = LEARNING_STARTS + N_ENVS
    updates = list(range(first, TOTAL + 1, N_ENVS))  # env steps after which an update runs

    def around(events, steps):
        """The events just before and just after the update that follows env step ``steps``."""
        i = [event[:2] for event in events].index(("train", steps))
        return events[i - 1][:2], events[i + 1][:2] if i + 1 < len(events) else None, events[i][3]

    for steps in updates:
        last = steps == TOTAL
        # SB3: the update after step t, then the action of step t+1, chosen by the updated policy.
        assert around(plain.events, steps) == (("act", steps - N_ENVS), None if last else ("act", steps), False)
        # Overlapped: the action of step t+1 is chosen and sent before that update, which runs while
        # the envs step. No step is sent after the last one (nothing would collect it), so the
        # last update runs with nothing in flight.
        before, after, in_flight = around(overlapped.events, steps)
        assert before == (("train", steps - N_ENVS) if last else ("act", steps))
        if last:
            assert after is None
        else:
            assert after == (("train", TOTAL) if steps + N_ENVS == TOTAL else ("act", steps + N_ENVS))
        assert in_flight is not last


def test_checkpoints_hold_what_an_unoverlapped_run_holds_and_resume(runs):
    (_, plain_folder, plain_saved), (_, folder, saved) = runs[False], runs[True]
    assert saved == plain_saved == (SAVE_AT, SAVE_AT // N_ENVS)
    plain = DrQv2SAC.load(plain_folder / "model", env=DummyVecEnv([lambda: point_env(max_episode_steps=EPISODE)] * 2))
    loaded = DrQv2SAC.load(folder / "model", env=subproc_env(seed=1))
    for (name, x), y in zip(plain.policy.state_dict().items(), loaded.policy.state_dict().values(), strict=True):
        assert th.equal(x, y), name
    assert loaded.overlap_collection and loaded.num_timesteps == SAVE_AT and not loaded.step_in_flight
    with pytest.warns(UserWarning, match="will be truncated"):  # mid-episode, as pixelrl-train resumes
        loaded.load_replay_buffer(folder / "buffer")
    buffer = loaded.replay_buffer
    assert buffer.pos == SAVE_AT // N_ENVS
    loaded.set_logger(configure(folder=None, format_strings=[]))
    loaded.learn(12, reset_num_timesteps=False)  # resumes, overlapped, from the saved buffer
    assert loaded.num_timesteps == SAVE_AT + 12 and not loaded.step_in_flight
    assert buffer.pos == (SAVE_AT + 12) // N_ENVS and loaded._n_updates > 0
    loaded.env.close()


def test_a_dummy_vec_env_warns_and_collects_without_overlap():
    env = DummyVecEnv([lambda: point_env(max_episode_steps=EPISODE) for _ in range(N_ENVS)])
    model = make(env, overlap=True)
    with pytest.warns(UserWarning, match=r"DummyVecEnv, which steps inside step_wait: .* collects without overlap"):
        model.learn(LEARNING_STARTS + 3 * N_ENVS)
    trains = [event for event in model.events if event[0] == "train"]
    assert trains and not any(event[3] for event in trains)  # never a step in flight
    # Each action is chosen after the update before it, as without overlap.
    assert [event[:2] for event in model.events[-3:]] == [
        ("train", trains[-2][1]),
        ("act", trains[-2][1]),
        ("train", trains[-1][1]),
    ]


def test_a_her_buffer_that_asks_the_env_for_rewards_is_refused():
    env = subproc_env()
    model = make(env, overlap=True)
    model.replay_buffer.compute_reward = None
    with pytest.raises(
        ValueError, match=r"env_method\('compute_reward', ...\): under a SubprocVecEnv .*EnvComputeReward"
    ):
        model.learn(10)
    env.close()


class FailsOnce(Scripted):
    def train(self, gradient_steps, batch_size=64):
        if not getattr(self, "failed", False):
            self.failed = True
            raise RuntimeError("out of memory")
        super().train(gradient_steps, batch_size)


def test_an_update_that_raises_leaves_its_step_to_the_next_learn_or_save(tmp_path):
    env = subproc_env()
    model = make(env, overlap=True, cls=FailsOnce)
    with pytest.raises(RuntimeError, match="out of memory"):
        model.learn(LEARNING_STARTS + 4 * N_ENVS)
    assert model.step_in_flight
    model.save(tmp_path / "model")  # receives and drops it first
    assert not model.step_in_flight and model._last_obs is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the compact buffer warns that the reset closed an episode
        model.learn(4 * N_ENVS, reset_num_timesteps=False)  # resets the env, collects and trains again
    assert not model.step_in_flight and model._n_updates > 0
    env.close()
