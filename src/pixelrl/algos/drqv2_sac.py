"""DrQv2SAC: SAC whose update encodes each sampled batch once per role, as DrQ-v2 does.

SB3's ``SAC.train`` runs the shared encoder of `DrQv2SACPolicy` five
times per gradient step and back-propagates through it twice. The encoder is the expensive
part of a pixel agent, so `DrQv2SAC` reorganises the update around it: ``obs`` is
encoded once with gradients, ``next_obs`` once without, and the actor reuses the detached
``obs`` features.
"""

from __future__ import annotations

import io
import pathlib
import warnings
from collections.abc import Iterable
from typing import Any, ClassVar, Literal, get_args

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, RolloutReturn, Schedule, TrainFreq
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.sac.policies import SACPolicy

from pixelrl.algos.drqv2_update import DrQv2Update, Samples
from pixelrl.algos.n_step import N_STEP_IGNORED_WARNING, n_step_buffer_kwargs
from pixelrl.algos.overlap import OverlappedCollection, check_overlap, gives_overlap
from pixelrl.policies import CriticEncoderActor, CriticEncoderCritic, DrQv2SACPolicy

__all__ = ["DrQv2SAC", "TargetEncoder"]

TargetEncoder = Literal["separate", "online"]
"""Which encoder computes the TD target's ``next_obs`` features.

- ``"separate"``: the target critic's own encoder, Polyak-averaged with ``encoder_tau`` (the
  chapter's setup, and what ``SAC`` + ``DrQv2SACPolicy`` computes). 3 encoder passes per update.
- ``"online"``: the online encoder, whose ``next_obs`` features the next action needs anyway
  (DrQ-v2's setup: only the Q heads have target copies). 2 encoder passes per update.
"""

_TARGET_ENCODERS: tuple[str, ...] = get_args(TargetEncoder)


class DrQv2SAC(SAC):
    """SAC with DrQ-v2's update: one encoder pass per batch and role, critic-only encoder training.

    Requires `DrQv2SACPolicy` (one encoder shared by actor and critic,
    in the critic's optimizer). Each gradient step:

    1. encodes ``obs`` once, with gradients;
    2. samples the policy's action on the *detached* features and updates ``ent_coef``
       (when auto-tuned);
    3. encodes ``next_obs`` once with the online encoder, without gradients, for the next
       action, and (``target_encoder="separate"``) once with the target encoder for the target
       Q heads; with ``"online"`` the target Q heads read the online features;
    4. trains encoder + Q heads on the TD loss (the only backward pass through the encoder);
    5. trains the actor on the detached ``obs`` features of step 1 and the just-updated Q heads;
    6. Polyak-averages the target Q heads with ``tau`` and the target encoder with
       ``encoder_tau``.

    Encoder passes per gradient step (forward calls of the online + target encoder):
    ``target_encoder="separate"``: 2 + 1 = 3; ``"online"``: 2 + 0 = 2. ``SAC.train`` with the same
    policy makes 4 + 1 = 5, two of them back-propagated.

    Differences from SAC:
        Compared with SB3's ``SAC.train`` on the same ``DrQv2SACPolicy``:

        - Critic loss and TD update: identical with ``target_encoder="separate"`` (same batch,
          same random draws in the same order: policy action on ``obs``, then on ``next_obs``),
          so encoder and Q heads receive the same gradient. With ``"online"`` the target uses
          the online encoder's ``next_obs`` features instead of the target encoder's.
        - Actor loss: ``mean(ent_coef * log_pi(a|z) - min_i Q_i(z, a))`` with ``a ~ pi(.|z)`` and
          ``z`` the detached ``obs`` features computed *before* the critic step (DrQ-v2's
          ``obs.detach()``). SB3 samples ``a`` from the same pre-step features but evaluates
          ``Q`` on ``obs`` re-encoded by the *updated* encoder. Both use the updated Q heads.
        - No gradient from the actor loss reaches the encoder. (SB3 computes one and discards
          it: the encoder is not in the actor's optimizer; the update is the same.)
        - The target encoder has its own coefficient ``encoder_tau`` (default: ``tau``). With
          ``"online"`` the target encoder is unused; it is copied from the online encoder after
          every gradient step, so ``policy.critic_target`` still evaluates the target the update
          uses.
        - ``target_update_interval`` counts gradient steps across ``train`` calls. SB3 counts
          them within one call, so with ``gradient_steps=1`` it updates the target every step
          whatever the interval.
        - Losses are averaged on the device and read once per ``train`` call (one sync), not
          once per gradient step. Logged names are SB3's: ``train/critic_loss``,
          ``train/actor_loss``, ``train/ent_coef``, ``train/ent_coef_loss``, ``train/n_updates``
          (and ``train/compile_seconds`` once, with ``compile_update``).
        - The temperature is stepped after the critic (its loss reads neither the encoder nor the
          Q heads, so the order changes nothing) and the policy's Gaussian noise is drawn before
          the update, in SB3's order (`pixelrl.algos.drqv2_update`).
        - gSDE (``use_sde=True``) is not supported.

    Args:
        policy: ``"DrQv2SACPolicy"`` or `DrQv2SACPolicy` (or a subclass).
        env: The environment, or its registered id.
        learning_rate: Adam learning rate of actor, critic and entropy coefficient, or a schedule.
        buffer_size: Replay capacity in transitions.
        learning_starts: Env steps collected before the first update.
        batch_size: Transitions per gradient step.
        tau: Polyak coefficient of the target Q heads.
        gamma: Discount factor (replaced by ``replay_data.discounts`` when the buffer supplies them).
        train_freq: Update every ``train_freq`` steps, or ``(n, "step" | "episode")``.
        gradient_steps: Gradient steps per rollout (``-1``: as many as env steps collected).
        action_noise: Exploration noise added to the policy's actions.
        replay_buffer_class: Replay buffer class, e.g. `HerDrQDictReplayBuffer`.
        replay_buffer_kwargs: Keyword arguments of the replay buffer.
        optimize_memory_usage: SB3's memory-efficient replay buffer variant.
        n_steps: n-step returns. Passed, with ``gamma``, to a buffer class that takes ``n_steps``
            (`CompactHerReplayBuffer` and `HerDrQDictReplayBuffer` do, with HER and Dict
            observations); SB3's ``NStepReplayBuffer`` for ``replay_buffer_class=None`` and Box
            observations. Refused for any other buffer, where SB3 would ignore it.
        ent_coef: Entropy coefficient, or ``"auto"`` / ``"auto_<init>"`` to tune it.
        target_update_interval: Update the targets every this many gradient steps.
        target_entropy: Target entropy of the auto-tuning (``"auto"``: ``-action_dim``).
        use_sde: Must be False.
        sde_sample_freq: Unused (gSDE is not supported).
        use_sde_at_warmup: Unused (gSDE is not supported).
        stats_window_size: Episodes averaged in the rollout logs.
        tensorboard_log: TensorBoard log directory.
        policy_kwargs: Keyword arguments of the policy.
        verbose: 0, 1 or 2.
        seed: Random seed.
        device: Torch device.
        _init_setup_model: Build the networks now (SB3's ``load`` passes False).
        target_encoder: Which encoder computes the target's ``next_obs`` features; see
            `TargetEncoder`. The default, ``"separate"``, keeps the chapter's TD target
            (the one its results were obtained with) exactly; ``"online"`` saves one of three
            encoder passes (1.3-1.4x the updates/s on a 2-core CPU, 2-3% slower on an H200;
            ``docs/performance.md``) but its target moves with every critic step.
        encoder_tau: Polyak coefficient of the target encoder, in ``(0, 1]``; ``None`` uses
            ``tau``. Only for ``target_encoder="separate"``.
        compile_update: Run the update through ``torch.compile`` (CUDA graphs on CUDA;
            `pixelrl.algos.drqv2_update`): the eager update's losses and parameters up to float
            rounding, after a one-time compile in the first ``train`` call (`compile_seconds`).
            Saved with the model; ``DrQv2SAC.load(path, compile_update=...)`` changes it.
        overlap_collection: Step the envs while the update runs (`pixelrl.algos.overlap`): the
            collecting policy is one update behind; each update sees the transitions it sees
            without overlap. Needs a `SubprocVecEnv` (a `DummyVecEnv` warns and collects without
            overlap) and, with HER, in-process rewards (``replay_buffer_kwargs=dict(compute_reward=...)``).

    Raises:
        TypeError: If the policy is not a ``DrQv2SACPolicy``.
        ValueError: If ``use_sde`` is True, ``target_encoder`` is unknown, ``encoder_tau`` is
            out of range or given with ``target_encoder="online"``, ``n_steps > 1`` with a buffer
            that has no n-step returns, or ``replay_buffer_kwargs`` give another ``n_steps`` or
            ``gamma`` than the algorithm's; at ``learn``, if ``overlap_collection`` meets a HER
            buffer that asks the env for rewards.
        CompileUpdateError: With ``compile_update``, where torch cannot compile (at the first update).

    Examples:
        >>> import gymnasium as gym
        >>> from pixelrl.algos import DrQv2SAC
        >>> from pixelrl.wrappers import PixelObservationWrapper
        >>> env = PixelObservationWrapper(gym.make("pixelrl/PointReach-v0", image_size=16), image_size=16)
        >>> model = DrQv2SAC("DrQv2SACPolicy", env, buffer_size=100, target_encoder="online")
        >>> model.target_encoder, model.encoder_tau
        ('online', None)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        **SAC.policy_aliases,
        "DrQv2SACPolicy": DrQv2SACPolicy,
    }
    policy: DrQv2SACPolicy
    actor: CriticEncoderActor
    critic: CriticEncoderCritic
    critic_target: CriticEncoderCritic

    def __init__(
        self,
        policy: str | type[SACPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        ent_coef: str | float = "auto",
        target_update_interval: int = 1,
        target_entropy: str | float = "auto",
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        use_sde_at_warmup: bool = False,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
        *,
        target_encoder: TargetEncoder = "separate",
        encoder_tau: float | None = None,
        compile_update: bool = False,
        overlap_collection: bool = False,
    ) -> None:
        self._check_policy_class(policy)
        if use_sde:
            raise ValueError(
                "DrQv2SAC does not support gSDE (use_sde=True): its update samples actions from the "
                "encoder's features directly. Pass use_sde=False, or use SB3's SAC for gSDE."
            )
        self.target_encoder: TargetEncoder = target_encoder
        self.encoder_tau = encoder_tau
        self.compile_update = compile_update
        self.overlap_collection = overlap_collection
        self._overlap = OverlappedCollection()
        self._check_target_options()
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            action_noise=action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            ent_coef=ent_coef,
            target_update_interval=target_update_interval,
            target_entropy=target_entropy,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            use_sde_at_warmup=use_sde_at_warmup,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=_init_setup_model,
        )

    def _check_policy_class(self, policy: str | type[BasePolicy]) -> None:
        policy_class = self.policy_aliases.get(policy) if isinstance(policy, str) else policy
        if not (isinstance(policy_class, type) and issubclass(policy_class, DrQv2SACPolicy)):
            name = policy if isinstance(policy, str) else getattr(policy, "__name__", repr(policy))
            raise TypeError(
                f"DrQv2SAC needs a DrQv2SACPolicy (one encoder shared by actor and critic, trained by the "
                f"critic), got {name!r}. Pass policy='DrQv2SACPolicy'; for other policies use SB3's SAC."
            )

    def _check_target_options(self) -> None:
        if self.target_encoder not in _TARGET_ENCODERS:
            raise ValueError(
                f"Unknown target_encoder {self.target_encoder!r}; expected one of {list(_TARGET_ENCODERS)}."
            )
        if self.encoder_tau is None:
            return
        if self.target_encoder == "online":
            raise ValueError(
                "encoder_tau sets the Polyak coefficient of the target encoder, but "
                "target_encoder='online' uses no target encoder. Drop encoder_tau or use "
                "target_encoder='separate'."
            )
        if not 0.0 < self.encoder_tau <= 1.0:
            raise ValueError(f"encoder_tau must be in (0, 1] (or None to use tau), got {self.encoder_tau}.")

    def _setup_model(self) -> None:
        self._check_target_options()  # again: SB3's load sets the attributes after __init__
        self.n_steps, self.replay_buffer_kwargs = n_step_buffer_kwargs(
            self.n_steps, self.gamma, self.replay_buffer_class, self.replay_buffer_kwargs, self.observation_space
        )
        with warnings.catch_warnings():
            # n_steps reached the buffer (or was refused) above: SB3's "n_steps is ignored" would be wrong.
            warnings.filterwarnings("ignore", message=N_STEP_IGNORED_WARNING)
            super()._setup_model()
        if not isinstance(self.policy, DrQv2SACPolicy):
            raise TypeError(f"DrQv2SAC needs a DrQv2SACPolicy, got {type(self.policy).__name__}.")
        self._updater = DrQv2Update(self, compile=self.compile_update)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_updater", "_overlap"]

    @property
    def compile_seconds(self) -> float | None:
        """Seconds the first compiled update took (compiling included); None without ``compile_update`` or before it."""
        return self._updater.compile_seconds

    @property
    def step_in_flight(self) -> bool:
        """Whether an env step has been sent and not yet received (only ever during an update)."""
        return self._overlap.in_flight

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """Run ``gradient_steps`` DrQ-v2 updates (see the class docstring) and log their losses.

        Args:
            gradient_steps: Number of gradient steps.
            batch_size: Transitions sampled per gradient step.
        """
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)

        ent_coef_losses: list[th.Tensor] = []
        ent_coefs: list[th.Tensor] = []
        actor_losses: list[th.Tensor] = []
        critic_losses: list[th.Tensor] = []
        compiled_before = self.compile_seconds is not None
        for gradient_step in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            ent_coef, ent_coef_loss, critic_loss, actor_loss = self._update(replay_data)
            ent_coefs.append(ent_coef)
            critic_losses.append(critic_loss)
            actor_losses.append(actor_loss)
            if ent_coef_loss is not None:
                ent_coef_losses.append(ent_coef_loss)
            if (self._n_updates + gradient_step) % self.target_update_interval == 0:
                self._updater.update_targets()
            if self.target_encoder == "online":
                self._updater.copy_encoder_to_target()

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", _mean(ent_coefs))
        self.logger.record("train/actor_loss", _mean(actor_losses))
        self.logger.record("train/critic_loss", _mean(critic_losses))
        if ent_coef_losses:
            self.logger.record("train/ent_coef_loss", _mean(ent_coef_losses))
        if not compiled_before and self.compile_seconds is not None:
            self.logger.record("train/compile_seconds", self.compile_seconds)

    def _update(self, replay_data: Samples) -> tuple[th.Tensor, th.Tensor | None, th.Tensor, th.Tensor]:
        """One gradient step on one batch; returns detached ``(ent_coef, ent_coef_loss, critic_loss, actor_loss)``."""
        losses = self._updater(replay_data)
        return losses.ent_coef, losses.ent_coef_loss, losses.critic_loss, losses.actor_loss

    # -- overlapped collection (pixelrl.algos.overlap) ---------------------------------------------

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        train_freq: TrainFreq,
        replay_buffer: ReplayBuffer,
        action_noise: ActionNoise | None = None,
        learning_starts: int = 0,
        log_interval: int | None = None,
    ) -> RolloutReturn:
        """SB3's collection; overlapped, its first step is the one sent before the update, and it sends the next."""
        overlap = self.overlap_collection and gives_overlap(env)
        view = self._overlap.receive(env) if overlap else env  # receives the step in flight
        rollout = super().collect_rollouts(view, callback, train_freq, replay_buffer, action_noise, learning_starts,
                                           log_interval)  # fmt: skip
        if overlap and rollout.continue_training and self.num_timesteps < self._total_timesteps:
            self._overlap.launch(env, *self._sample_action(learning_starts, action_noise, env.num_envs))
        return rollout

    def _sample_action(
        self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        arrived = self._overlap.take_actions()  # the received step's, chosen before the update
        return arrived if arrived is not None else super()._sample_action(learning_starts, action_noise, n_envs)

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        if self._overlap.discard():  # left by a learn() that raised: the env moved past _last_obs
            self._last_obs = None  # SB3 resets the env
        if self.overlap_collection and self.env is not None:
            check_overlap(self.env, self.replay_buffer)
        return super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        """SB3's ``set_env``; a step in flight on (or received from) the old env is dropped first (see `save`)."""
        if self._overlap.discard():
            force_reset = True
        super().set_env(env, force_reset)

    def save(
        self,
        path: str | pathlib.Path | io.BufferedIOBase,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:
        """SB3's ``save``, never with an env step in flight (`pixelrl.algos.overlap`: none is, in callbacks).

        A step is only left in flight when ``learn`` raised during an update: it is dropped first.
        """
        if self._overlap.drop_in_flight():
            self._last_obs = None
        super().save(path, exclude, include)


def _mean(values: list[th.Tensor]) -> float:
    return float(th.stack(values).float().mean().item()) if values else float(np.nan)
