"""DrQ random-shift augmentation (Kostrikov et al., 2020), batched and dtype-agnostic."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RandomShiftAug"]


def _check_batch(x: torch.Tensor) -> None:
    if x.dim() != 4:
        hint = " Add a batch dimension with x.unsqueeze(0)." if x.dim() == 3 else ""
        raise ValueError(
            f"RandomShiftAug expected a batch of images shaped (B, C, H, W), got a tensor of shape "
            f"{tuple(x.shape)} ({x.dim()} dims).{hint}"
        )


class RandomShiftAug(nn.Module):
    """Shift each image of a batch by a random integer offset, filling the border by replication.

    Equivalent to DrQ's pad-and-crop (replicate-pad by ``pad`` pixels, crop back to ``H x W`` at a
    random offset), but done as one ``torch.gather`` on clamped index grids: clamping a source
    index to ``[0, H - 1]`` is exactly replicate padding. This works for any dtype (``uint8``
    included, which ``F.pad(mode="replicate")`` does not support on CPU) and on any device, and
    is differentiable with respect to float inputs.

    Each sample gets independent shifts ``dy, dx`` drawn uniformly from ``[-pad, pad]``; all
    channels of a sample (e.g. stacked frames) share them. The module applies the shift whether
    it is in training or eval mode: whoever calls it decides when to augment.

    Args:
        pad: Largest shift in pixels along each axis (DrQ uses 4 for 84x84 images). ``0``
            disables the augmentation.
        generator: Default random generator for the shifts (for reproducibility); a generator
            passed to :meth:`forward` takes precedence. ``None`` uses torch's global RNG.

    Raises:
        ValueError: If ``pad`` is negative.

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
        """Show ``pad`` in the module's repr."""
        return f"pad={self.pad}"

    def sample_shifts(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw independent per-sample shifts.

        Args:
            batch_size: Number of samples ``B``.
            device: Device of the returned tensors (default: CPU).
            generator: Random generator; defaults to the one given at construction, then to
                torch's global RNG.

        Returns:
            ``(dy, dx)``, each ``(B,)`` int64 uniform in ``[-pad, pad]``.
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

        ``out[b, c, i, j] = x[b, c, clamp(i - dy[b], 0, H - 1), clamp(j - dx[b], 0, W - 1)]``:
        a positive ``dy`` moves the content down, a positive ``dx`` moves it right.

        Args:
            x: ``(B, C, H, W)`` images of any dtype, on any device.
            dy: ``(B,)`` integer vertical shifts (any magnitude; typically in ``[-pad, pad]``).
            dx: ``(B,)`` integer horizontal shifts.

        Returns:
            ``(B, C, H, W)`` tensor with the dtype and device of ``x``.

        Raises:
            ValueError: If ``x`` is not 4-D or ``dy`` / ``dx`` are not integer tensors of shape
                ``(B,)``.
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
            x: ``(B, C, H, W)`` images of any dtype (``uint8`` or float), on any device.
            generator: Random generator for this call; overrides the constructor's.

        Returns:
            ``(B, C, H, W)`` shifted images, same dtype and device. With ``pad == 0`` this is
            ``x`` itself (no copy).

        Raises:
            ValueError: If ``x`` is not 4-D.
        """
        _check_batch(x)
        if self.pad == 0:
            return x
        dy, dx = self.sample_shifts(x.shape[0], device=x.device, generator=generator)
        return self.shift(x, dy, dx)
