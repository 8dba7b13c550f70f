"""Image augmentation of sampled batches: DrQ's random shift and the helper the pixel buffers compose.

- `RandomShiftAug`: the DrQ pad-and-crop shift (Kostrikov et al., 2020) as an `nn.Module`,
  batched and dtype-agnostic.
- `SampleAugmentation`: applies an augmentation to the image keys of a sampled
  `DictReplayBufferSamples` (obs and next_obs drawn independently); every pixel buffer of
  [pixelrl.buffers][] holds one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from torch import nn

__all__ = ["AugmentFn", "RandomShiftAug", "SampleAugmentation", "sample_augmentation_property"]

AugmentFn = Callable[[torch.Tensor], torch.Tensor]
"""Maps a `(B, C, H, W)` image batch to an augmented batch of the same shape and dtype."""


def _check_batch(x: torch.Tensor) -> None:
    if x.dim() != 4:
        hint = " Add a batch dimension with x.unsqueeze(0)." if x.dim() == 3 else ""
        raise ValueError(
            f"RandomShiftAug expected a batch of images shaped (B, C, H, W), got a tensor of shape "
            f"{tuple(x.shape)} ({x.dim()} dims).{hint}"
        )


class RandomShiftAug(nn.Module):
    """Shift each image of a batch by a random integer offset, filling the border by replication.

    Equivalent to DrQ's pad-and-crop (replicate-pad by `pad` pixels, crop back to `H x W` at a
    random offset), but done as one `torch.gather` on clamped index grids: clamping a source
    index to `[0, H - 1]` is exactly replicate padding. This works for any dtype (`uint8`
    included, which `F.pad(mode="replicate")` does not support on CPU) and on any device, and
    is differentiable with respect to float inputs.

    Each sample gets independent shifts `dy, dx` drawn uniformly from `[-pad, pad]`; all
    channels of a sample (e.g. stacked frames) share them. The module applies the shift whether
    it is in training or eval mode: whoever calls it decides when to augment.

    Args:
        pad: Largest shift in pixels along each axis (DrQ uses 4 for 84x84 images). `0`
            disables the augmentation.
        generator: Default random generator for the shifts (for reproducibility); a generator
            passed to `forward` takes precedence. `None` uses torch's global RNG.

    Raises:
        ValueError: If `pad` is negative.

    Examples:
        >>> aug = RandomShiftAug(pad=1)
        >>> x = torch.arange(9, dtype=torch.uint8).reshape(1, 1, 3, 3)
        >>> aug.shift(x, dy=torch.tensor([1]), dx=torch.tensor([0]))[0, 0].tolist()
        [[0, 1, 2], [0, 1, 2], [3, 4, 5]]
        >>> aug(x).shape, aug(x).dtype
        (torch.Size([1, 1, 3, 3]), torch.uint8)
    """

    def __init__(self, pad: int = 4, generator: torch.Generator | None = None) -> None:
        if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
            raise ValueError(f"RandomShiftAug pad must be a non-negative int, got {pad!r}. DrQ uses pad=4.")
        super().__init__()
        self.pad = pad
        self.generator = generator

    def extra_repr(self) -> str:
        """Show `pad` in the module's repr."""
        return f"pad={self.pad}"

    def sample_shifts(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw independent per-sample shifts.

        Args:
            batch_size: Number of samples `B`.
            device: Device of the returned tensors (default: CPU).
            generator: Random generator; defaults to the one given at construction, then to
                torch's global RNG.

        Returns:
            `(dy, dx)`, each `(B,)` int64 uniform in `[-pad, pad]`.
        """
        generator = generator if generator is not None else self.generator
        # Draw on the generator's own device (a CPU generator cannot fill a CUDA tensor).
        draw_device = generator.device if generator is not None else device
        shifts = torch.randint(-self.pad, self.pad + 1, (2, batch_size), generator=generator, device=draw_device)
        shifts = shifts.to(device)
        return shifts[0], shifts[1]

    @staticmethod
    def shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        """Shift each image by given integer offsets, replicating border pixels into the gap.

        `out[b, c, i, j] = x[b, c, clamp(i - dy[b], 0, H - 1), clamp(j - dx[b], 0, W - 1)]`:
        a positive `dy` moves the content down, a positive `dx` moves it right.

        Args:
            x: `(B, C, H, W)` images of any dtype, on any device.
            dy: `(B,)` integer vertical shifts (any magnitude; typically in `[-pad, pad]`).
            dx: `(B,)` integer horizontal shifts.

        Returns:
            `(B, C, H, W)` tensor with the dtype and device of `x`.

        Raises:
            ValueError: If `x` is not 4-D or `dy` / `dx` are not integer tensors of shape
                `(B,)`.
        """
        _check_batch(x)
        batch, channels, height, width = x.shape
        for name, offsets in (("dy", dy), ("dx", dx)):
            if offsets.shape != (batch,) or torch.is_floating_point(offsets) or offsets.is_complex():
                raise ValueError(
                    f"RandomShiftAug.shift expected {name} as an integer tensor of shape ({batch},) "
                    f"(one shift per sample), got dtype {offsets.dtype} and shape {tuple(offsets.shape)}."
                )
        device = x.device
        rows = (torch.arange(height, device=device) - dy.to(device=device, dtype=torch.long)[:, None]).clamp(
            0, height - 1
        )  # (B, H)
        cols = (torch.arange(width, device=device) - dx.to(device=device, dtype=torch.long)[:, None]).clamp(
            0, width - 1
        )  # (B, W)
        # One gather over the flattened spatial axis; the (B, 1, H * W) index is broadcast over
        # channels by expand (no copy), so all channels of a sample move together.
        flat_index = (rows[:, :, None] * width + cols[:, None, :]).reshape(batch, 1, height * width)
        flat = x.reshape(batch, channels, height * width)
        out = torch.gather(flat, 2, flat_index.expand(batch, channels, height * width))
        return out.reshape(batch, channels, height, width)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Randomly shift every image of the batch.

        Args:
            x: `(B, C, H, W)` images of any dtype (`uint8` or float), on any device.
            generator: Random generator for this call; overrides the constructor's.

        Returns:
            `(B, C, H, W)` shifted images, same dtype and device. With `pad == 0` this is
            `x` itself (no copy).

        Raises:
            ValueError: If `x` is not 4-D.
        """
        _check_batch(x)
        if self.pad == 0:
            return x
        dy, dx = self.sample_shifts(x.shape[0], device=x.device, generator=generator)
        return self.shift(x, dy, dx)


def _image_keys(observation_space: spaces.Dict, image_keys: Sequence[str] | None) -> tuple[str, ...]:
    """The keys to augment: the given ones (checked) or every uint8 image key of the space."""
    if image_keys is None:
        found = tuple(key for key, sub in observation_space.spaces.items() if is_image_space(sub, check_channels=False))
        if not found:
            raise ValueError(
                f"No image key to augment in the observation space {list(observation_space.spaces)}: images must "
                "be Box(0, 255, (C, H, W), uint8). Pass image_keys=[...] or use SB3's DictReplayBuffer."
            )
        return found
    unknown = [key for key in image_keys if key not in observation_space.spaces]
    if unknown:
        raise ValueError(f"image_keys {unknown} are not in the observation space {list(observation_space.spaces)}.")
    return tuple(image_keys)


class SampleAugmentation:
    """Augment the image keys of a sampled batch; obs and next_obs get independent draws.

    DrQ regularises the critic with a different random view of `obs` and of `next_obs`, so
    each image key of each is augmented by its own call. Vector keys (goals, proprioception),
    actions, rewards and dones are returned untouched, so a HER reward stays equal to
    `compute_reward(next achieved_goal, desired_goal)`. The pixel buffers of
    [pixelrl.buffers][] hold one and apply it to every batch they sample.

    Args:
        image_keys: Observation keys holding `(B, C, H, W)` images.
        augmentation: Applied to each image batch, e.g. `RandomShiftAug(pad=4)`; `None`
            returns batches unchanged. Saved with the buffer, so it must be picklable.

    Example:
        >>> from stable_baselines3.common.type_aliases import DictReplayBufferSamples
        >>> invert = SampleAugmentation(["pixels"], lambda x: 255 - x)
        >>> obs = {"pixels": torch.zeros(2, 3, 4, 4, dtype=torch.uint8), "goal": torch.zeros(2, 3)}
        >>> batch = DictReplayBufferSamples(obs, torch.zeros(2, 1), obs, torch.zeros(2, 1), torch.zeros(2, 1))
        >>> out = invert(batch)
        >>> int(out.observations["pixels"].min()), float(out.observations["goal"].max())
        (255, 0.0)
    """

    def __init__(self, image_keys: Sequence[str], augmentation: AugmentFn | None) -> None:
        self.image_keys = tuple(image_keys)
        self.augmentation = augmentation

    @classmethod
    def from_options(
        cls,
        observation_space: spaces.Dict,
        *,
        pad: int,
        augmentation: AugmentFn | None = None,
        aug_fn: AugmentFn | None = None,
        image_keys: Sequence[str] | None = None,
        image_key: str | None = None,
    ) -> SampleAugmentation:
        """Build it from a pixel buffer's options, accepting both spellings of each option.

        Args:
            observation_space: The buffer's Dict observation space.
            pad: Maximum shift of `RandomShiftAug`; 0 disables it. Ignored when a callable is given.
            augmentation: A callable used instead of the random shift.
            aug_fn: The same option under the name some texts use.
            image_keys: Keys to augment; default every uint8 image key of the space.
            image_key: One key to augment, the same as `image_keys=[image_key]`.

        Returns:
            The helper.

        Raises:
            TypeError: If an option is given under both of its names, or `image_key` is not a str.
            ValueError: If `pad < 0`, a key is not in the space, or there is no image key.

        Example:
            >>> space = spaces.Dict({"pixels": spaces.Box(0, 255, (3, 8, 8), "uint8")})
            >>> SampleAugmentation.from_options(space, pad=4, image_key="pixels")
            SampleAugmentation(image_keys=('pixels',), augmentation=RandomShiftAug(pad=4))
        """
        if augmentation is not None and aug_fn is not None:
            raise TypeError("Got both augmentation= and aug_fn=, two names of the same option; pass the callable once.")
        if image_keys is not None and image_key is not None:
            raise TypeError(
                f"Got both image_keys={image_keys!r} and image_key={image_key!r}, two names of the same option; "
                "pass image_keys=[...] (several keys) or image_key='...' (one key)."
            )
        if image_key is not None and not isinstance(image_key, str):
            raise TypeError(f"image_key takes one key (a str), got {image_key!r}; pass several as image_keys=[...].")
        if pad < 0:
            raise ValueError(f"pad must be >= 0 (0 disables the shift), got {pad}.")
        keys = _image_keys(observation_space, [image_key] if image_key is not None else image_keys)
        given = augmentation if augmentation is not None else aug_fn
        if given is None and pad > 0:
            given = RandomShiftAug(pad=pad)
        return cls(keys, given)

    def __call__(self, samples: DictReplayBufferSamples) -> DictReplayBufferSamples:
        """Augment the image keys of `observations` and `next_observations`.

        Args:
            samples: A batch; image keys `(B, C, H, W)` tensors of any dtype.

        Returns:
            The batch with augmented images (the same object when there is no augmentation).
        """
        if self.augmentation is None:
            return samples
        observations = dict(samples.observations)
        next_observations = dict(samples.next_observations)
        for key in self.image_keys:
            observations[key] = self.augmentation(observations[key])
            next_observations[key] = self.augmentation(next_observations[key])
        return samples._replace(observations=observations, next_observations=next_observations)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(image_keys={self.image_keys!r}, augmentation={self.augmentation!r})"


_PROPERTY_DOCS = {
    "augmentation": "The callable applied to sampled images, or `None`.",
    "image_keys": "The observation keys augmented at sample time.",
}


def sample_augmentation_property(name: Literal["augmentation", "image_keys"]) -> Any:
    """A read-only buffer property forwarding to the buffer's `sample_augmentation` (one definition for all buffers).

    Args:
        name: The `SampleAugmentation` attribute to expose.

    Returns:
        A `property`, to assign in a buffer class body (`augmentation = sample_augmentation_property("augmentation")`).
    """
    return property(lambda buffer: getattr(buffer.sample_augmentation, name), doc=_PROPERTY_DOCS[name])
