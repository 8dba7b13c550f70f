"""SpatialSoftmax (Levine et al., 2016): one expected (x, y) image coordinate per channel."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["SpatialSoftmax"]

# Bounds on the effective temperature. They only guard float32 against overflow/underflow
# (exp of a runaway log-temperature, or logits / tau overflowing); they are far outside any
# useful range, so in practice the clamp never binds and never blocks the gradient.
_MIN_TEMPERATURE = 1e-4
_MAX_TEMPERATURE = 1e4


def _coordinates(n: int) -> torch.Tensor:
    # A single row or column has no extent: put it at the centre rather than at -1.
    if n == 1:
        return torch.zeros(1)
    return torch.linspace(-1.0, 1.0, n)


class SpatialSoftmax(nn.Module):
    """Expected (x, y) position of each channel's activation, in ``[-1, 1]`` image coordinates.

    Per channel, a softmax over the ``H * W`` positions of ``features / temperature`` gives an
    attention map; the outputs are the attention-weighted means of a coordinate grid that runs
    from -1 to 1 (``torch.linspace``) along the width (x, left to right) and the height (y, top
    to bottom). A 1-pixel-wide axis has the single coordinate 0.

    The temperature is stored as its logarithm, ``log_temperature`` (an ``nn.Parameter`` when
    learnable, a buffer otherwise), so ``temperature = exp(log_temperature)`` is positive for any
    value an optimizer writes. It is also clamped to ``[1e-4, 1e4]`` before dividing, which
    only protects float32 from overflow; the softmax itself subtracts the per-channel maximum.
    Low temperatures approach the argmax position, high temperatures the centre of the image.

    Args:
        height: Height ``H`` of the input feature map.
        width: Width ``W`` of the input feature map.
        num_channels: Channels ``C`` of the input feature map.
        temperature: Initial softmax temperature (> 0).
        learnable_temperature: Whether the temperature is trained with the rest of the network.

    Raises:
        ValueError: If a size is not positive or ``temperature`` is not a positive finite number.

    Examples:
        >>> ss = SpatialSoftmax(height=5, width=5, num_channels=1, temperature=0.01)
        >>> features = torch.zeros(1, 1, 5, 5)
        >>> features[0, 0, 0, 4] = 1.0  # top-right corner
        >>> ss(features).tolist()  # [x, y]
        [[1.0, -1.0]]
    """

    pos_grid: torch.Tensor
    log_temperature: torch.Tensor

    def __init__(
        self,
        height: int,
        width: int,
        num_channels: int,
        temperature: float = 1.0,
        learnable_temperature: bool = True,
    ) -> None:
        if height < 1 or width < 1 or num_channels < 1:
            raise ValueError(
                "SpatialSoftmax needs a positive height, width and num_channels, got "
                f"height={height}, width={width}, num_channels={num_channels}."
            )
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(
                f"SpatialSoftmax temperature must be a positive finite number, got {temperature}. "
                "Use e.g. 1.0 (the default)."
            )
        super().__init__()
        self.height = height
        self.width = width
        self.num_channels = num_channels
        self.learnable_temperature = learnable_temperature
        log_temperature = torch.tensor([math.log(temperature)], dtype=torch.float32)
        if learnable_temperature:
            self.log_temperature = nn.Parameter(log_temperature)
        else:
            self.register_buffer("log_temperature", log_temperature)
        pos_y, pos_x = torch.meshgrid(_coordinates(height), _coordinates(width), indexing="ij")
        # (H * W, 2): row k holds the (x, y) coordinate of flattened position k.
        self.register_buffer("pos_grid", torch.stack([pos_x.reshape(-1), pos_y.reshape(-1)], dim=-1))

    @property
    def temperature(self) -> torch.Tensor:
        """The effective (positive, clamped) temperature, a 1-element tensor."""
        return self.log_temperature.exp().clamp(_MIN_TEMPERATURE, _MAX_TEMPERATURE)

    def extra_repr(self) -> str:
        """Show the sizes and whether the temperature is learnable in the module's repr."""
        return (
            f"height={self.height}, width={self.width}, num_channels={self.num_channels}, "
            f"learnable_temperature={self.learnable_temperature}"
        )

    def keypoints(self, features: torch.Tensor) -> torch.Tensor:
        """Expected (x, y) coordinate of each channel, for visualisation.

        Args:
            features: ``(B, C, H, W)`` float feature map.

        Returns:
            ``(B, C, 2)`` float; ``[..., 0]`` is x (along the width), ``[..., 1]`` is y (along the
            height), both in ``[-1, 1]``.

        Raises:
            ValueError: If ``features`` does not have shape ``(B, C, H, W)`` with the constructor's
                ``num_channels``, ``height`` and ``width``.
        """
        expected = (self.num_channels, self.height, self.width)
        if features.dim() != 4 or tuple(features.shape[1:]) != expected:
            raise ValueError(
                f"SpatialSoftmax was built for feature maps of shape (B, C, H, W) = (B, {expected[0]}, "
                f"{expected[1]}, {expected[2]}), got {tuple(features.shape)}. Build it with the "
                "CNN's output shape (e.g. ManipulationCNN.output_shape(H, W))."
            )
        batch = features.shape[0]
        logits = features.reshape(batch, self.num_channels, -1) / self.temperature.to(features.dtype)
        attention = F.softmax(logits, dim=-1)  # (B, C, H * W)
        return attention @ self.pos_grid.to(features.dtype)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Expected coordinates as a flat feature vector.

        Args:
            features: ``(B, C, H, W)`` float feature map.

        Returns:
            ``(B, 2C)`` float in ``[-1, 1]``, ordered ``[x_0, ..., x_{C-1}, y_0, ..., y_{C-1}]``.

        Raises:
            ValueError: If ``features`` does not match the constructor's ``(C, H, W)``.
        """
        points = self.keypoints(features)
        return points.transpose(1, 2).reshape(points.shape[0], -1)
