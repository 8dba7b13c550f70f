"""The chapter's checkpoints as runnable checks against real FetchPush-v4 rendering.

``pixelrl-train verify`` runs `verify_checks` and ``pixelrl-train probe`` runs
`probe_wirings`; both are usable from Python too.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

__all__ = ["CheckFailed", "CheckResult", "probe_wirings", "verify_checks"]

ENV_ID = "FetchPush-v4"


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check.

    Attributes:
        name: What was checked.
        passed: Whether it held.
        detail: The measured values (or the error).
        seconds: Wall time of the check.
    """

    name: str
    passed: bool
    detail: str
    seconds: float


class CheckFailed(Exception):
    """A check's condition did not hold."""


def _require(condition: object, message: str) -> None:
    # Not `assert`: checks must also run under `python -O`.
    if not condition:
        raise CheckFailed(message)


class _Context:
    """Lazily built objects shared by the checks (one Fetch env, one rollout, one model)."""

    def __init__(self, env_id: str, seed: int) -> None:
        self.env_id = env_id
        self.seed = seed
        self._env: Any = None
        self._model: Any = None

    @property
    def env(self) -> Any:
        if self._env is None:
            from pixelrl.wrappers import make_fetch_env

            self._env = make_fetch_env(self.env_id)
        return self._env

    @property
    def model(self) -> Any:
        """A small SAC + DrQv2SACPolicy + HER/DrQ model with 2 episodes in its buffer."""
        if self._model is None:
            from stable_baselines3 import SAC
            from stable_baselines3.common.vec_env import DummyVecEnv

            from pixelrl.buffers import HerDrQDictReplayBuffer

            vec_env = DummyVecEnv([lambda: self.env])
            self._model = SAC(
                "DrQv2SACPolicy",
                vec_env,
                buffer_size=200,
                batch_size=16,
                learning_starts=100,
                gamma=0.95,
                ent_coef=0.05,
                seed=self.seed,
                replay_buffer_class=HerDrQDictReplayBuffer,
            )
            self._model.learn(100)  # collection only: learning_starts == total steps
        return self._model

    def close(self) -> None:
        if self._env is not None:
            self._env.close()


def _check_render(ctx: _Context) -> str:
    import gymnasium as gym

    from pixelrl.wrappers import register_fetch_envs, render_and_resize

    register_fetch_envs()
    env = gym.make(ctx.env_id, render_mode="rgb_array", width=84, height=84)
    env.reset(seed=ctx.seed)
    frame = render_and_resize(env, (84, 84))
    env.close()
    _require(frame.shape == (3, 84, 84) and frame.dtype == np.uint8, f"got {frame.shape} {frame.dtype}")
    _require(frame.std() > 5, "the frame is blank: was render_mode='rgb_array' passed?")
    return f"{frame.shape} {frame.dtype}, values {frame.min()}..{frame.max()}"


def _check_wrapper(ctx: _Context) -> str:
    env = ctx.env
    obs, _ = env.reset(seed=ctx.seed)
    shapes = {key: value.shape for key, value in obs.items()}
    expected = {"pixels": (12, 84, 84), "proprioception": (10,), "achieved_goal": (3,), "desired_goal": (3,)}
    _require(shapes == expected, f"got {shapes}")
    frames = obs["pixels"].reshape(4, 3, 84, 84)
    _require(all(np.array_equal(frames[0], f) for f in frames), "the stack after reset is not 4 copies of frame 0")
    for _ in range(10):
        obs, *_ = env.step(env.action_space.sample())
        _require(obs in env.observation_space, "an observation left the observation space")
    return ", ".join(f"{k} {v}" for k, v in shapes.items())


def _check_env_checker(ctx: _Context) -> str:
    from stable_baselines3.common.env_checker import check_env

    # check_env prints a note about goal envs to stdout; only its warnings matter here.
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("always")
        check_env(ctx.env)
    messages = [str(w.message) for w in caught]
    _require(not messages, f"warnings: {messages}")
    return "0 warnings"


def _check_pixel_buffer(ctx: _Context) -> str:
    from pixelrl.buffers import PixelReplayBuffer

    buffer = PixelReplayBuffer((12, 84, 84), goal_dim=3, act_dim=4, capacity=100, seed=ctx.seed)
    frame = np.random.default_rng(ctx.seed).integers(0, 256, (12, 84, 84), dtype=np.uint8)
    for _ in range(50):
        buffer.add(frame, frame, np.zeros(3), np.zeros(3), np.zeros(4), -1.0, False)
    batch = buffer.sample(16)["pixels"]
    _require(buffer.pixels.dtype == np.uint8, f"storage dtype {buffer.pixels.dtype}, expected uint8")
    _require(batch.dtype == np.float32, f"sampled dtype {batch.dtype}, expected float32")
    _require(batch.min() >= 0.0 and batch.max() <= 1.0, f"samples in [{batch.min()}, {batch.max()}], not [0, 1]")
    return f"storage {buffer.pixels.dtype}, sample {batch.dtype} in [{batch.min():.2f}, {batch.max():.2f}]"


def _check_cnn(ctx: _Context) -> str:
    from pixelrl.encoders import ManipulationCNN

    out = ManipulationCNN(12, 32)(th.rand(4, 12, 84, 84))
    _require(tuple(out.shape) == (4, 32, 21, 21) and bool(th.isfinite(out).all()), f"got {tuple(out.shape)}")
    return f"(4, 12, 84, 84) -> {tuple(out.shape)}, finite"


def _check_spatial_softmax(ctx: _Context) -> str:
    from pixelrl.encoders import SpatialSoftmax

    ss = SpatialSoftmax(21, 21, 32)
    out = ss(th.randn(4, 32, 21, 21))
    _require(tuple(out.shape) == (4, 64), f"got {tuple(out.shape)}, expected (4, 64)")
    _require(out.abs().max() <= 1.0, "coordinates outside [-1, 1]")
    peak = th.zeros(1, 32, 21, 21)
    peak[:, :, 0, 0] = 100.0
    corner = ss.keypoints(peak)[0, 0]
    _require(th.allclose(corner, th.tensor([-1.0, -1.0]), atol=1e-3), f"top-left peak gave {corner.tolist()}")
    return f"(4, 64) in [-1, 1]; top-left peak -> ({corner[0]:.3f}, {corner[1]:.3f})"


def _check_extractor(ctx: _Context) -> str:
    from pixelrl.encoders import ManipulationExtractor

    space = ctx.env.observation_space
    dims = (
        ManipulationExtractor(space).features_dim,
        ManipulationExtractor(space, exclude_keys=["achieved_goal"]).features_dim,
    )
    _require(dims == (80, 77), f"got {dims}")
    return "features_dim 80 (64 spatial + 10 proprio + 3 + 3); 77 in strict mode"


def _check_augmentation(ctx: _Context) -> str:
    from pixelrl.buffers import RandomShiftAug

    aug = RandomShiftAug(pad=4)
    images = th.randint(0, 256, (8, 12, 84, 84), dtype=th.uint8)
    _require(not th.equal(aug(images), aug(images)), "two augmentations of the same batch are identical")
    constant = th.full((8, 12, 84, 84), 77, dtype=th.uint8)
    _require(th.equal(aug(constant), constant), "a constant image changed")
    return "two shifts of one batch differ; a constant image is unchanged"


def _check_her_drq(ctx: _Context) -> str:
    model = ctx.model
    buffer = model.replay_buffer
    batch = buffer.sample(64)
    same_goal = th.equal(batch.observations["desired_goal"], batch.next_observations["desired_goal"])
    _require(same_goal, "obs and next_obs carry different desired goals")
    rewards = ctx.env.compute_reward(
        batch.next_observations["achieved_goal"].cpu().numpy(), batch.observations["desired_goal"].cpu().numpy(), None
    )
    _require(np.array_equal(batch.rewards.cpu().numpy().ravel(), rewards), "rewards disagree with compute_reward")
    augmented = batch.observations["pixels"]
    _require(augmented.dtype == th.uint8, f"augmented pixels are {augmented.dtype}, expected uint8")
    return "HER + DrQ batch of 64: rewards == compute_reward(goals); pixels uint8 (64, 12, 84, 84)"


def _check_optimizers(ctx: _Context) -> str:
    from pixelrl.diagnostics.wiring import optimizer_membership

    m = optimizer_membership(ctx.model.policy)
    _require(
        m.actor_encoder_in_actor_opt == 0, f"{m.actor_encoder_in_actor_opt} encoder tensors in the actor optimizer"
    )
    _require(m.actor_encoder_in_critic_opt == m.encoder_tensors, "encoder tensors missing from the critic optimizer")
    return f"encoder tensors: 0 in actor optimizer, {m.actor_encoder_in_critic_opt}/{m.encoder_tensors} in critic's"


def _check_gradient_flow(ctx: _Context) -> str:
    from pixelrl.diagnostics.gradients import gradient_flow_check

    flow = gradient_flow_check(ctx.model.policy, ctx.model.replay_buffer.sample(16))
    _require(flow.critic_backward_grad_norm > 0, "critic backward left the encoder without gradient")
    _require(flow.actor_backward_grad_norm == 0, "actor backward reached the encoder")
    _require(flow.critic_step_changes_encoder, "the critic step left the encoder unchanged")
    _require(not flow.actor_step_changes_encoder, "the actor step changed the encoder")
    return (
        f"critic backward grad norm {flow.critic_backward_grad_norm:.3g}; actor backward 0; only critic step moves it"
    )


def _check_sharing(ctx: _Context) -> str:
    policy = ctx.model.policy
    _require(policy.actor.features_extractor is policy.critic.features_extractor, "actor and critic encoders differ")
    _require(policy.critic_target.features_extractor is not policy.critic.features_extractor, "target shares it")
    return "actor.features_extractor is critic.features_extractor; critic_target has its own"


def _check_save_load(ctx: _Context) -> str:
    from stable_baselines3 import SAC

    model = ctx.model
    obs, _ = ctx.env.reset(seed=ctx.seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.zip"
        model.save(path)
        loaded = SAC.load(path, env=model.get_env())
    expected, _ = model.predict(obs, deterministic=True)
    got, _ = loaded.predict(obs, deterministic=True)
    diff = float(np.abs(expected - got).max())
    _require(diff <= 1e-5, f"max action difference {diff:.2e}")
    return f"max action difference after save/load {diff:.1e} (<= 1e-5)"


def _check_bridge(ctx: _Context) -> str:
    from pixelrl.diagnostics.bridge import bridge_check

    obs, _ = ctx.env.reset(seed=ctx.seed)
    diff = bridge_check(ctx.model.policy, obs)
    _require(diff < 1e-6, f"max_diff {diff:.2e}")
    return f"max_diff {diff:.1e} (< 1e-6)"


_CHECKS: tuple[tuple[str, Callable[[_Context], str]], ...] = (
    ("render: native 84x84 frame is (3, 84, 84) uint8", _check_render),
    ("wrapper: observation shapes, stack after reset, obs in space", _check_wrapper),
    ("wrapper: SB3 check_env passes without warnings", _check_env_checker),
    ("buffer: uint8 storage, float32 [0, 1] samples", _check_pixel_buffer),
    ("encoder: ManipulationCNN 84 -> 21", _check_cnn),
    ("encoder: SpatialSoftmax coordinates", _check_spatial_softmax),
    ("encoder: ManipulationExtractor features_dim", _check_extractor),
    ("augmentation: random shift", _check_augmentation),
    ("augmentation: HER + DrQ keeps goals and rewards", _check_her_drq),
    ("policy: encoder only in the critic optimizer", _check_optimizers),
    ("policy: gradients after critic and actor backward", _check_gradient_flow),
    ("policy: shared encoder, separate target encoder", _check_sharing),
    ("policy: save/load predictions match", _check_save_load),
    ("bridge: extractor alone == extractor inside SB3", _check_bridge),
)


def verify_checks(env_id: str = ENV_ID, seed: int = 0) -> Iterator[CheckResult]:
    """Run the chapter's checkpoints on real rendering, yielding one result per check.

    A check that raises is reported as failed with the error; later checks still run.

    Args:
        env_id: The Fetch task to render.
        seed: Seed for envs, data and models.

    Yields:
        One `CheckResult` per check, in order.
    """
    th.manual_seed(seed)
    ctx = _Context(env_id, seed)
    try:
        for name, check in _CHECKS:
            start = time.perf_counter()
            try:
                detail, passed = check(ctx), True
            except Exception as exc:  # a failed check must not stop the others
                detail, passed = f"{type(exc).__name__}: {exc}", False
            yield CheckResult(name, passed, detail, time.perf_counter() - start)
    finally:
        ctx.close()


def probe_wirings(env_id: str = ENV_ID, seed: int = 0, batch_size: int = 16) -> list[dict[str, Any]]:
    """Build the three SAC encoder wirings on a real pixel observation and probe each.

    For each wiring: where the encoder parameters live, what one SAC update does to the
    encoder, and the gradient norms the critic and actor losses send into it, on a batch of
    real FetchPush transitions.

    Args:
        env_id: The Fetch task.
        seed: Seed for the env, the data and the networks.
        batch_size: Transitions in the probe batch.

    Returns:
        One dict per wiring with ``wiring``, ``membership``, ``gradient_flow`` and ``gradient_norms``.
    """
    from pixelrl.diagnostics.gradients import encoder_gradient_norms, gradient_flow_check
    from pixelrl.diagnostics.wiring import WIRINGS, build_sac_policy, optimizer_membership

    ctx = _Context(env_id, seed)
    try:
        batch = ctx.model.replay_buffer.sample(batch_size)
        space, action_space = ctx.env.observation_space, ctx.env.action_space
        rows = []
        for wiring in WIRINGS:
            th.manual_seed(seed)
            policy = build_sac_policy(wiring, space, action_space)
            rows.append(
                {
                    "wiring": wiring,
                    "membership": optimizer_membership(policy).as_dict(),
                    "gradient_flow": gradient_flow_check(policy, batch).as_dict(),
                    "gradient_norms": encoder_gradient_norms(policy, batch),
                }
            )
        return rows
    finally:
        ctx.close()
