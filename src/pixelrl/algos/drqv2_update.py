"""DrQv2SAC's gradient step: two phases around the critic's optimizer step, run eagerly or through torch.compile.

As in LeanRL's compiled SAC, the eager functions are the compiled ones: `critic_phase` and
`actor_phase` below are what `DrQv2SAC` runs either way, and ``compile_update=True`` only wraps
them in `torch.compile`. Their shape follows from what a compiled region can and cannot do:

- **Two phases.** The actor's loss reads the Q heads *after* the critic's optimizer step (DrQ-v2's
  order), so one graph cannot hold both losses. `critic_phase` encodes ``obs`` (with gradients)
  and ``next_obs`` (without) and returns the TD loss; `actor_phase` returns the actor's and the
  temperature's losses on the detached ``obs`` features.
- **One backward per phase.** A compiled region is one autograd node whose saved tensors are
  freed by the first backward through it, so each phase's losses are back-propagated together,
  once: the actor's and the temperature's losses train disjoint parameters, so one
  ``backward`` of both gives each the gradient of its own. (The backward of each phase is
  compiled too, by AOTAutograd.)
- **No random numbers inside.** The Gaussian noise of the two sampled actions is drawn eagerly,
  in SB3's order (the policy's action on ``obs`` first, then the next action), and passed in:
  inductor's random numbers differ from eager ones, and with the noise given the compiled
  update computes what the eager one computes, up to float rounding (tested), while the eager
  update still equals SB3's ``SAC.train`` on the critic.
- **Optimizer steps stay eager.** SB3 owns the optimizers and writes their learning rate as a
  Python float at every ``train`` call, which a compiled step would guard on (and recompile
  for, with a schedule); Adam's step is a few ``foreach`` kernels either way.
- **No host syncs.** Nothing in a step reads a value back: the losses come back as device
  tensors (cloned when compiled: CUDA-graph outputs are overwritten by the next replay) and
  `DrQv2SAC.train` averages and reads them once per call.

On CUDA, ``compile_update=True`` compiles with ``mode="reduce-overhead"`` (CUDA graphs, which
remove per-kernel launch costs); elsewhere with inductor's default mode. CUDA graphs keep their
outputs in a memory pool that the next graph call may reuse (each call of a compiled phase with no
backward pending starts a new "generation", ``torch.compiler.cudagraph_mark_step_begin``), so
with them the step copies the critic phase's outputs before the actor phase runs, drops the
gradients (pool memory too) after each optimizer step, and copies the logged losses. This path is
written from PyTorch's CUDA Graph Trees documentation; the CPU has none, so it is tested only by
the ``gpu`` tests (``tests/algos/test_drqv2_sac_cuda.py``).

torch caches compiled graphs per function: many compiled models of different shapes in one process
can exhaust ``torch._dynamo.config.recompile_limit``, after which torch warns and runs the phases
eagerly (same results, no speed-up).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, TypeVar, cast

import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.preprocessing import is_image_space, preprocess_obs
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, PyTorchObs, ReplayBufferSamples
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.sac.policies import Actor

from pixelrl.policies import CriticEncoderActor, CriticEncoderCritic, DrQv2SACPolicy, sac_maths


class _Algorithm(Protocol):
    """What the update reads of the `DrQv2SAC` it steps (a protocol: this module does not import the algorithm)."""

    @property
    def policy(self) -> DrQv2SACPolicy: ...
    @property
    def actor(self) -> CriticEncoderActor: ...
    @property
    def critic(self) -> CriticEncoderCritic: ...
    @property
    def critic_target(self) -> CriticEncoderCritic: ...
    @property
    def device(self) -> th.device: ...
    @property
    def gamma(self) -> float: ...
    @property
    def tau(self) -> float: ...
    @property
    def encoder_tau(self) -> float | None: ...
    @property
    def target_encoder(self) -> str: ...
    @property
    def ent_coef_optimizer(self) -> th.optim.Adam | None: ...
    @property
    def log_ent_coef(self) -> th.Tensor | None: ...
    @property
    def ent_coef_tensor(self) -> th.Tensor: ...
    @property
    def target_entropy(self) -> float | str: ...
    @property
    def batch_norm_stats(self) -> list[th.Tensor]: ...
    @property
    def batch_norm_stats_target(self) -> list[th.Tensor]: ...


__all__ = [
    "COMPILE_BACKEND",
    "ActorPhase",
    "CompileUpdateError",
    "CriticPhase",
    "DrQv2Update",
    "UpdateLosses",
    "actor_phase",
    "critic_phase",
    "preprocessed",
    "sample_actions",
    "scaled_keys",
]

logger = logging.getLogger(__name__)

Samples = DictReplayBufferSamples | ReplayBufferSamples
_F = TypeVar("_F", bound=Callable[..., Any])

COMPILE_BACKEND: str | Callable[..., Any] = "inductor"
"""The ``torch.compile`` backend of ``compile_update``. Inductor generates the fused kernels; the tests
also use ``"aot_eager"`` (the same graphs, forward and backward, without code generation) to check
the graphs quickly."""


class CompileUpdateError(RuntimeError):
    """``torch.compile`` could not compile `DrQv2SAC`'s update on this platform."""


class CriticPhase(NamedTuple):
    """What `critic_phase` returns.

    Attributes:
        critic_loss: Scalar TD loss; its gradient trains the encoder and the Q heads.
        actor_features: ``(B, features_dim)`` the ``obs`` features, detached (the actor's input).
        ent_coef: The entropy coefficient before this step's temperature update (no gradient).
    """

    critic_loss: th.Tensor
    actor_features: th.Tensor
    ent_coef: th.Tensor


class ActorPhase(NamedTuple):
    """What `actor_phase` returns.

    Attributes:
        actor_loss: Scalar policy loss (gradient into the actor's head; the Q heads' share is
            cleared before the next critic step).
        ent_coef_loss: Scalar temperature loss, or None when the coefficient is fixed.
    """

    actor_loss: th.Tensor
    ent_coef_loss: th.Tensor | None


class UpdateLosses(NamedTuple):
    """One gradient step's logged values, detached device tensors (no host sync)."""

    ent_coef: th.Tensor
    ent_coef_loss: th.Tensor | None
    critic_loss: th.Tensor
    actor_loss: th.Tensor


def sample_actions(actor: Actor, features: th.Tensor, noise: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """SB3's squashed-Gaussian action and log-probability from features, with the Gaussian noise given.

    The distribution and its log-probability are SB3's (``SquashedDiagGaussianDistribution``);
    only the draw is taken out: ``loc + noise * scale`` is torch's ``Normal.rsample`` with its
    ``eps`` passed in, so the same noise gives SB3's sample exactly.

    Args:
        actor: An SB3 SAC actor without gSDE.
        features: ``(B, features_dim)`` float features of its encoder.
        noise: ``(B, A)`` standard normal noise.

    Returns:
        ``(actions, log_prob)``: ``(B, A)`` actions in ``[-1, 1]`` and ``(B, 1)`` log-probabilities.
    """
    mean_actions, log_std, _ = sac_maths.action_dist_params(actor, features)
    dist = cast(SquashedDiagGaussianDistribution, actor.action_dist).proba_distribution(mean_actions, log_std)
    gaussian_actions = dist.distribution.loc + noise * dist.distribution.scale
    actions = th.tanh(gaussian_actions)
    return actions, dist.log_prob(actions, gaussian_actions).reshape(-1, 1)


def scaled_keys(space: spaces.Space[Any], normalize_images: bool) -> tuple[str, ...] | None:
    """Which observation keys SB3's ``preprocess_obs`` divides by 255, decided once from the space.

    Args:
        space: The policy's observation space.
        normalize_images: The policy's ``normalize_images``.

    Returns:
        The image keys of a Dict of Boxes (``("",)`` for one image Box, ``()`` for none), or None
        for other spaces, which `preprocessed` leaves to ``preprocess_obs``.
    """
    boxes = space.spaces if isinstance(space, spaces.Dict) else {"": space}
    if not all(isinstance(box, spaces.Box) for box in boxes.values()):
        return None
    return tuple(key for key, box in boxes.items() if normalize_images and is_image_space(box))


def preprocessed(obs: PyTorchObs, space: spaces.Space[Any], keys: tuple[str, ...] | None) -> PyTorchObs:
    """SB3's ``preprocess_obs`` for Box observations with the image test (`scaled_keys`) already taken.

    ``is_image_space`` compares the space's bounds with NumPy; inside a compiled region that is
    a graph break, so it is answered once, outside.

    Args:
        obs: A batch of observations (a tensor, or a dict of tensors).
        space: The policy's observation space.
        keys: `scaled_keys` of it.

    Returns:
        Float observations, images divided by 255.
    """
    if keys is None:
        return preprocess_obs(obs, space)
    if isinstance(obs, dict):
        return {key: value.float() / 255.0 if key in keys else value.float() for key, value in obs.items()}
    return obs.float() / 255.0 if keys else obs.float()


def critic_phase(
    model: _Algorithm, batch: Samples, next_noise: th.Tensor, image_keys: tuple[str, ...] | None
) -> CriticPhase:
    """Encode the batch once per role and compute the TD loss (see `DrQv2SAC`, steps 1, 3 and 4).

    Args:
        model: The algorithm (its policy's modules, ``gamma``, entropy coefficient and target
            encoder choice are read; nothing is modified).
        batch: The replay batch (uint8 images; ``discounts`` replaces ``gamma`` when present).
        next_noise: ``(B, A)`` standard normal noise of the next action.
        image_keys: `scaled_keys` of the policy's observation space.

    Returns:
        The TD loss, the detached ``obs`` features and the entropy coefficient.
    """
    if model.ent_coef_optimizer is not None and model.log_ent_coef is not None:
        ent_coef = th.exp(model.log_ent_coef.detach())
    else:
        ent_coef = model.ent_coef_tensor
    discounts = batch.discounts if batch.discounts is not None else model.gamma
    space = model.policy.observation_space
    obs = preprocessed(batch.observations, space, image_keys)
    next_obs = preprocessed(batch.next_observations, space, image_keys)
    encoder = model.critic.features_extractor

    features: th.Tensor = encoder(obs)  # the only pass that back-propagates
    with th.no_grad():
        next_features: th.Tensor = encoder(next_obs)
        next_actions, next_log_prob = sample_actions(model.actor, next_features, next_noise)
        if model.target_encoder == "separate":
            next_features = model.critic_target.features_extractor(next_obs)
        next_q = model.critic_target.q_values_from_features(next_features, next_actions)
        target_q = sac_maths.soft_td_target(batch.rewards, batch.dones, discounts, next_q, next_log_prob, ent_coef)
    current_q = model.critic.q_values_from_features(features, batch.actions)
    return CriticPhase(sac_maths.critic_loss(current_q, target_q), features.detach(), ent_coef)


def actor_phase(model: _Algorithm, actor_features: th.Tensor, noise: th.Tensor, ent_coef: th.Tensor) -> ActorPhase:
    """The actor's and the temperature's losses on detached features (see `DrQv2SAC`, steps 2 and 5).

    Run after the critic's optimizer step: the Q heads are the updated ones (DrQ-v2's order).

    Args:
        model: The algorithm (read only).
        actor_features: ``(B, features_dim)`` detached ``obs`` features from `critic_phase`.
        noise: ``(B, A)`` standard normal noise of the policy's action (drawn before ``next_noise``).
        ent_coef: The entropy coefficient from `critic_phase`.

    Returns:
        The actor loss and the temperature loss (None when the coefficient is fixed).
    """
    actions_pi, log_prob = sample_actions(model.actor, actor_features, noise)
    ent_coef_loss = None
    if model.ent_coef_optimizer is not None and model.log_ent_coef is not None:
        ent_coef_loss = sac_maths.entropy_coef_loss(model.log_ent_coef, log_prob, float(model.target_entropy))
    q_pi = model.critic.q_values_from_features(actor_features, actions_pi)
    return ActorPhase(sac_maths.actor_loss(q_pi, log_prob, ent_coef), ent_coef_loss)


class DrQv2Update:
    """One `DrQv2SAC` gradient step: noise, `critic_phase`, critic step, `actor_phase`, actor and temperature steps.

    Args:
        model: The algorithm whose networks and optimizers it steps.
        compile: Run both phases (forward and backward) through ``torch.compile``.

    Raises:
        CompileUpdateError: With ``compile=True``, if torch cannot compile here (raised when
            ``torch.compile`` refuses this platform, or at the first step, when it compiles).
    """

    def __init__(self, model: _Algorithm, *, compile: bool) -> None:
        self.model = model
        self.compile = compile
        self.cuda_graphs = compile and model.device.type == "cuda"
        self.compile_seconds: float | None = None
        """Seconds of the first compiled step (compiling both phases' graphs), None until it ran."""
        self._heads = [p for q in model.critic.q_networks for p in q.parameters()]
        self._target_heads = [p for q in model.critic_target.q_networks for p in q.parameters()]
        self._encoder = list(model.critic.features_extractor.parameters())
        self._target_encoder = list(model.critic_target.features_extractor.parameters())
        policy = model.policy
        self.image_keys = scaled_keys(policy.observation_space, policy.normalize_images)
        self.critic_phase: Callable[[_Algorithm, Samples, th.Tensor, tuple[str, ...] | None], CriticPhase]
        self.critic_phase = critic_phase
        self.actor_phase: Callable[[_Algorithm, th.Tensor, th.Tensor, th.Tensor], ActorPhase] = actor_phase
        if compile:
            try:
                self.critic_phase = self._compiled(critic_phase)
                self.actor_phase = self._compiled(actor_phase)
            except Exception as exc:  # e.g. a Python version dynamo does not support
                raise _compile_error(exc) from exc

    def _compiled(self, function: _F) -> _F:
        # Static shapes: every batch has batch_size rows. CUDA graphs replay each phase's kernels
        # in one launch; the graph's inputs are copied into its static buffers (uint8 images).
        mode = "reduce-overhead" if self.cuda_graphs else None
        if COMPILE_BACKEND != "inductor":
            return cast(_F, th.compile(function, dynamic=False, backend=COMPILE_BACKEND))
        return cast(_F, th.compile(function, dynamic=False, mode=mode))

    def __call__(self, batch: Samples) -> UpdateLosses:
        """One gradient step on ``batch``; the first compiled one compiles and is timed.

        Args:
            batch: The replay batch.

        Returns:
            The step's losses and entropy coefficient (device tensors).

        Raises:
            CompileUpdateError: If compiling fails at the first compiled step.
        """
        if not self.compile or self.compile_seconds is not None:
            return self._step(batch)
        start = time.perf_counter()
        try:
            losses = self._step(batch)
            if self.cuda_graphs:
                th.cuda.synchronize(self.model.device)  # once: the compile time includes the first run
        except Exception as exc:  # whatever dynamo, inductor or the C++/Triton toolchain raised
            raise _compile_error(exc) from exc
        self.compile_seconds = time.perf_counter() - start
        logger.info("DrQv2SAC: compiled the update in %.1f s (first step included).", self.compile_seconds)
        return losses

    def _step(self, batch: Samples) -> UpdateLosses:
        model = self.model
        shape, device = batch.actions.shape, batch.actions.device
        noise = th.randn(shape, device=device)  # SB3's order: the policy's action on obs ...
        next_noise = th.randn(shape, device=device)  # ... then the next action
        if self.cuda_graphs:
            th.compiler.cudagraph_mark_step_begin()  # the previous step's graph outputs are dead now

        critic = self.critic_phase(model, batch, next_noise, self.image_keys)
        model.critic.optimizer.zero_grad()
        critic.critic_loss.backward()
        model.critic.optimizer.step()
        if self.cuda_graphs:
            # Calling the next compiled phase starts a new CUDA-graph generation, which may reuse this
            # one's memory: gradients produced in it are dropped, and the outputs still needed copied.
            model.critic.optimizer.zero_grad()
            critic = CriticPhase(*(_kept(tensor) for tensor in critic))

        actor = self.actor_phase(model, critic.actor_features, noise, critic.ent_coef)
        optimizers = [model.actor.optimizer]
        losses = [actor.actor_loss]
        if actor.ent_coef_loss is not None and model.ent_coef_optimizer is not None:
            optimizers.append(model.ent_coef_optimizer)
            losses.append(actor.ent_coef_loss)
        for optimizer in optimizers:
            optimizer.zero_grad()
        th.autograd.backward(losses)  # disjoint parameters: each loss's own gradient
        for optimizer in optimizers:
            optimizer.step()
        if self.cuda_graphs:
            for optimizer in (*optimizers, model.critic.optimizer):
                optimizer.zero_grad()

        keep = _kept if self.compile else th.Tensor.detach
        ent_coef_loss = None if actor.ent_coef_loss is None else keep(actor.ent_coef_loss)
        return UpdateLosses(keep(critic.ent_coef).reshape(()), ent_coef_loss, keep(critic.critic_loss),
                            keep(actor.actor_loss))  # fmt: skip

    def update_targets(self) -> None:
        """Polyak-average the target Q heads (``tau``) and the ``"separate"`` target encoder (``encoder_tau``)."""
        model = self.model
        polyak_update(self._heads, self._target_heads, model.tau)
        if model.target_encoder == "separate":
            encoder_tau = model.tau if model.encoder_tau is None else model.encoder_tau
            polyak_update(self._encoder, self._target_encoder, encoder_tau)
        # Copy running stats, as SAC does (SB3 issue #996).
        polyak_update(model.batch_norm_stats, model.batch_norm_stats_target, 1.0)

    def copy_encoder_to_target(self) -> None:
        """Copy the online encoder into the target critic's (``target_encoder="online"``: it evaluates that target)."""
        with th.no_grad():
            for target, online in zip(self._target_encoder, self._encoder, strict=True):
                target.copy_(online)


def _kept(tensor: th.Tensor) -> th.Tensor:
    """A copy that outlives the next replay of the graph that produced ``tensor``."""
    return tensor.detach().clone()


def _compile_error(exc: BaseException) -> CompileUpdateError:
    root = exc  # dynamo wraps what the backend (inductor, the C++ or Triton toolchain) raised
    while (inner := getattr(root, "inner_exception", None) or root.__cause__) is not None:
        root = inner
    lines = str(root).strip().splitlines()
    cause = f"{type(root).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")
    if root is not exc:
        cause = f"{type(exc).__name__}, from {cause}"
    return CompileUpdateError(
        f"compile_update=True, but torch.compile could not compile DrQv2SAC's update on this platform ({cause}). "
        "Drop compile_update (pixelrl-train: leave out --compile-update) to train with the eager update, which "
        "computes the same losses."
    )
