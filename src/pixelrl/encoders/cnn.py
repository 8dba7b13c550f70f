"""Convolutional trunks for pixel observations: NatureCNN and ManipulationCNN.

Both take float images in ``[0, 1]`` (SB3's ``preprocess_obs`` divides ``uint8`` pixels by 255
before the features extractor runs) and differ in how fast they throw away resolution:

* ``NatureCNN`` (Mnih et al., 2015) downsamples 4x in its first layer (84 -> 20), which
  shrinks a 5-pixel object to about one pixel. It is kept as a baseline.
* ``ManipulationCNN`` downsamples 2x twice with padded 3x3 kernels
  (84 -> 42 -> 42 -> 42 -> 21), so small objects survive as a few feature-map pixels. It takes
  the depth, width and kernel size of DrQ-v2's encoder (Yarats et al., 2021) but is a different
  network; its docstring lists the differences.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ManipulationCNN", "NatureCNN"]

# (kernel, stride, padding) of each convolution, used for the arithmetic size checks.
_NATURE_LAYERS: tuple[tuple[int, int, int], ...] = ((8, 4, 0), (4, 2, 0), (3, 1, 0))
_MANIPULATION_LAYERS: tuple[tuple[int, int, int], ...] = ((3, 2, 1), (3, 1, 1), (3, 1, 1), (3, 2, 1))


def _conv_output_size(size: int, layers: tuple[tuple[int, int, int], ...]) -> int:
    """Spatial size after a stack of convolutions (floor division, as ``nn.Conv2d`` does).

    Returns a value < 1 as soon as any layer would receive a map smaller than its kernel.
    """
    for kernel, stride, padding in layers:
        padded = size + 2 * padding
        if padded < kernel:
            return 0
        size = (padded - kernel) // stride + 1
    return size


def _min_input_size(layers: tuple[tuple[int, int, int], ...]) -> int:
    """Smallest input side length whose output side length is at least 1."""
    size = 1
    while _conv_output_size(size, layers) < 1:
        size += 1
    return size


def _check_image_tensor(x: torch.Tensor, name: str, channels: int) -> None:
    if x.dim() != 4:
        raise ValueError(
            f"{name} expected a batch of images shaped (B, C, H, W), got a tensor of shape "
            f"{tuple(x.shape)} ({x.dim()} dims). Add a batch dimension with x.unsqueeze(0) for a "
            "single image."
        )
    if x.shape[1] != channels:
        raise ValueError(
            f"{name} was built for {channels} input channels, got an input of shape "
            f"{tuple(x.shape)} with {x.shape[1]} channels. Build it with the channel count of "
            "your (possibly frame-stacked) observation."
        )
    if not torch.is_floating_point(x):
        raise TypeError(
            f"{name} expects float images in [0, 1], got dtype {x.dtype}. Convert uint8 pixels "
            "with x.float() / 255 (SB3's preprocess_obs does this for Box(0, 255, shape, uint8) spaces)."
        )


class NatureCNN(nn.Module):
    """The Atari DQN encoder (Mnih et al., 2015): 8x8 s4 -> 4x4 s2 -> 3x3 s1, then Linear + ReLU.

    The convolutional stack (``conv``, ending in the last ReLU) and the projection (``head``:
    Flatten -> Linear -> ReLU) are separate attributes so that callers can take the feature map,
    e.g. for [SpatialSoftmax][pixelrl.encoders.SpatialSoftmax]. On 84x84 the feature map is 64x7x7.

    Args:
        observation_shape: ``(C, H, W)`` of the input images. ``H`` and ``W`` must be at least
            36 (``NatureCNN.MIN_SIZE``) to survive the three convolutions.
        features_dim: Width of the output of ``head``.

    Raises:
        ValueError: If the shape is not 3-D, the image is smaller than 36x36, or
            ``features_dim`` is not positive.

    Examples:
        >>> cnn = NatureCNN((3, 84, 84), features_dim=16)
        >>> cnn.feature_map_shape
        (64, 7, 7)
        >>> cnn(torch.rand(2, 3, 84, 84)).shape
        torch.Size([2, 16])
    """

    MIN_SIZE: int = _min_input_size(_NATURE_LAYERS)
    """Smallest image height/width (36) that the three convolutions accept."""

    def __init__(self, observation_shape: tuple[int, int, int], features_dim: int = 512) -> None:
        if len(observation_shape) != 3:
            raise ValueError(
                f"NatureCNN expected observation_shape (C, H, W), got {tuple(observation_shape)}. "
                "Pass the channel-first shape of one image, e.g. (12, 84, 84)."
            )
        channels, height, width = (int(s) for s in observation_shape)
        if channels < 1:
            raise ValueError(f"NatureCNN needs at least one input channel, got observation_shape {observation_shape}.")
        if height < self.MIN_SIZE or width < self.MIN_SIZE:
            raise ValueError(
                f"NatureCNN needs images of at least {self.MIN_SIZE}x{self.MIN_SIZE} pixels to survive its "
                f"8x8/stride-4, 4x4/stride-2 and 3x3/stride-1 convolutions, got (C, H, W) = "
                f"{(channels, height, width)}. Render larger images or use ManipulationCNN "
                "(encoder='manipulation'), which accepts any size."
            )
        if features_dim < 1:
            raise ValueError(f"NatureCNN features_dim must be a positive integer, got {features_dim}.")
        super().__init__()
        self.in_channels = channels
        self.features_dim = features_dim
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 32, kernel_size=8, stride=4),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, kernel_size=4, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, kernel_size=3, stride=1),
            nn.ReLU(inplace=True),
        )
        with torch.no_grad():
            feature_map = self.conv(torch.zeros(1, channels, height, width))
        c_out, h_out, w_out = feature_map.shape[1:]
        self.feature_map_shape: tuple[int, int, int] = (int(c_out), int(h_out), int(w_out))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(feature_map.numel(), features_dim), nn.ReLU())

    @staticmethod
    def conv_output_shape(height: int, width: int) -> tuple[int, int, int]:
        """Shape of ``conv``'s feature map for one ``height`` x ``width`` image, without a forward.

        Args:
            height: Input image height in pixels (>= ``MIN_SIZE``).
            width: Input image width in pixels (>= ``MIN_SIZE``).

        Returns:
            ``(64, H', W')``; 84x84 gives ``(64, 7, 7)``.

        Raises:
            ValueError: If ``height`` or ``width`` is smaller than ``MIN_SIZE`` (36).
        """
        if min(height, width) < NatureCNN.MIN_SIZE:
            raise ValueError(
                f"NatureCNN needs images of at least {NatureCNN.MIN_SIZE}x{NatureCNN.MIN_SIZE} pixels, "
                f"got height={height}, width={width}."
            )
        return (64, _conv_output_size(height, _NATURE_LAYERS), _conv_output_size(width, _NATURE_LAYERS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode a batch of images.

        Args:
            x: ``(B, C, H, W)`` float images in ``[0, 1]``.

        Returns:
            ``(B, features_dim)`` float features (non-negative: the head ends in a ReLU).

        Raises:
            ValueError: If ``x`` is not 4-D or has the wrong channel count.
            TypeError: If ``x`` is not a float tensor.
        """
        _check_image_tensor(x, "NatureCNN", self.in_channels)
        out: torch.Tensor = self.head(self.conv(x))
        return out


class ManipulationCNN(nn.Module):
    """Four padded 3x3 convolutions (strides 2, 1, 1, 2), ReLU after each: 84x84 -> 21x21.

    Every convolution has ``num_filters`` output channels, kernel 3 and padding 1; the strides
    are 2, 1, 1, 2. Each side shrinks to ``ceil(ceil(n / 2) / 2)`` (84 -> 42 -> 42 -> 42 -> 21),
    and any image of at least 1x1 works. The output is a feature map, meant for
    [SpatialSoftmax][pixelrl.encoders.SpatialSoftmax] or a flatten-and-project head.

    It is not DrQ-v2's encoder (Yarats et al., 2021), though it shares that encoder's four 3x3
    convolutions of 32 filters (the default ``num_filters``) with a ReLU after each and has
    parameters of the same shapes. The differences:

    * Padding and strides: DrQ-v2's convolutions are unpadded with strides 2, 1, 1, 1, so an
      84x84 image becomes 41, 39, 37 and finally a 35x35 map (39,200 values at 32 filters);
      this trunk keeps the side at 42 through the middle layers and halves it again in the last
      one, giving 21x21 (14,112 values at 32 filters). The Linear of a flatten-and-project
      head on top therefore has about 2.8 times fewer inputs here.
    * Input range: DrQ-v2 scales uint8 pixels to ``obs / 255 - 0.5``; this trunk takes ``[0, 1]``
      images, as SB3's ``preprocess_obs`` produces them.
    * Initialisation: DrQ-v2 initialises its convolutions orthogonally (ReLU gain, zero bias);
      this trunk keeps PyTorch's default initialisation.

    Args:
        in_channels: Channels of the input images (e.g. 12 for 4 stacked RGB frames).
        num_filters: Channels of every convolution and of the output feature map.

    Raises:
        ValueError: If ``in_channels`` or ``num_filters`` is not positive.

    Examples:
        >>> cnn = ManipulationCNN(in_channels=12, num_filters=8)
        >>> cnn.output_shape(84, 84)
        (8, 21, 21)
        >>> cnn(torch.rand(2, 12, 84, 84)).shape
        torch.Size([2, 8, 21, 21])
    """

    def __init__(self, in_channels: int, num_filters: int = 32) -> None:
        if in_channels < 1:
            raise ValueError(f"ManipulationCNN in_channels must be a positive integer, got {in_channels}.")
        if num_filters < 1:
            raise ValueError(f"ManipulationCNN num_filters must be a positive integer, got {num_filters}.")
        super().__init__()
        self.in_channels = in_channels
        self.num_filters = num_filters
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, num_filters, kernel_size=3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_filters, num_filters, kernel_size=3, stride=1, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_filters, num_filters, kernel_size=3, stride=1, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_filters, num_filters, kernel_size=3, stride=2, padding=1),
            nn.ReLU(inplace=True),
        )

    def output_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """Shape of the feature map for one ``height`` x ``width`` image, computed without a forward.

        Args:
            height: Input image height in pixels (>= 1).
            width: Input image width in pixels (>= 1).

        Returns:
            ``(num_filters, H', W')``.

        Raises:
            ValueError: If ``height`` or ``width`` is smaller than 1.
        """
        if height < 1 or width < 1:
            raise ValueError(
                f"ManipulationCNN needs images of at least 1x1 pixels, got height={height}, width={width}."
            )
        return (
            self.num_filters,
            _conv_output_size(height, _MANIPULATION_LAYERS),
            _conv_output_size(width, _MANIPULATION_LAYERS),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode a batch of images into a feature map.

        Args:
            x: ``(B, C, H, W)`` float images in ``[0, 1]``.

        Returns:
            ``(B, num_filters, H', W')`` float feature map (non-negative), with ``H', W'`` given
            by `output_shape`.

        Raises:
            ValueError: If ``x`` is not 4-D or has the wrong channel count.
            TypeError: If ``x`` is not a float tensor.
        """
        _check_image_tensor(x, "ManipulationCNN", self.in_channels)
        out: torch.Tensor = self.conv(x)
        return out
