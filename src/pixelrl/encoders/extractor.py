"""ManipulationExtractor: an SB3 features extractor for dict observations with camera images.

Image keys go through a CNN (ManipulationCNN or NatureCNN) and a head (SpatialSoftmax +
LayerNorm + Tanh, or a flat projection); vector keys (proprioception, goals) pass through
unchanged; keys named in ``exclude_keys`` (e.g. ``achieved_goal``, which HER needs in the
observation) never reach the networks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from pixelrl.encoders.cnn import ManipulationCNN, NatureCNN
from pixelrl.encoders.spatial_softmax import SpatialSoftmax

__all__ = ["CNN_PRECISIONS", "CnnPrecision", "EncoderType", "ImageEncoder", "ManipulationExtractor"]

EncoderType = Literal["manipulation", "nature"]
_ENCODERS: tuple[str, ...] = ("manipulation", "nature")
CnnPrecision = Literal["fp32", "bf16"]
"""What the convolutions compute in: float32, or bfloat16 under ``torch.autocast`` (see `ImageEncoder`)."""
CNN_PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}


class ImageEncoder(nn.Module):
    """One image key's encoder: ``cnn`` -> optional ``spatial_softmax`` -> ``head``.

    Args:
        cnn: Maps ``(B, C, H, W)`` float images to a ``(B, C', H', W')`` feature map.
        feature_map_shape: ``(C', H', W')`` of that feature map for this key's image size.
        spatial_softmax: Turns the feature map into ``(B, 2C')`` coordinates, or ``None``.
        head: Maps the SpatialSoftmax output (or the feature map when there is none) to
            ``(B, features_dim)``.
        features_dim: Width of the output.
        cnn_dtype: ``None`` (float32), or the dtype the CNN computes in under ``torch.autocast``
            (``torch.bfloat16``): convolutions (forward and backward) in that dtype, weights and
            their gradients float32, the feature map cast back to float32 before the keypoints
            and the head. On CPUs with AMX or AVX512-BF16 (and GPUs since Ampere) bfloat16
            convolutions are about twice as fast; the features differ from float32 ones by
            bfloat16's rounding (8 bits of mantissa), so it is a different experiment, not an
            optimization.
    """

    def __init__(
        self,
        cnn: nn.Module,
        feature_map_shape: tuple[int, int, int],
        spatial_softmax: SpatialSoftmax | None,
        head: nn.Module,
        features_dim: int,
        cnn_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.cnn = cnn
        self.spatial_softmax = spatial_softmax
        self.head = head
        self.feature_map_shape = feature_map_shape
        self.features_dim = features_dim
        self.cnn_dtype = cnn_dtype

    def feature_map(self, pixels: torch.Tensor) -> torch.Tensor:
        """The CNN's float32 ``(B, C', H', W')`` feature map of ``(B, C, H, W)`` float images (in ``cnn_dtype``)."""
        if self.cnn_dtype is None:
            out: torch.Tensor = self.cnn(pixels)
            return out
        with torch.autocast(pixels.device.type, dtype=self.cnn_dtype):
            out = self.cnn(pixels)
        return out.float()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Encode ``(B, C, H, W)`` float images in ``[0, 1]`` into ``(B, features_dim)`` features."""
        features = self.feature_map(pixels)
        if self.spatial_softmax is not None:
            features = self.spatial_softmax(features)
        out: torch.Tensor = self.head(features)
        return out

    def keypoints(self, pixels: torch.Tensor) -> torch.Tensor:
        """SpatialSoftmax keypoints ``(B, C', 2)`` (x, y in ``[-1, 1]``) of ``(B, C, H, W)`` images.

        Raises:
            RuntimeError: If this encoder has no SpatialSoftmax.
        """
        if self.spatial_softmax is None:
            raise RuntimeError(
                "This image encoder has no SpatialSoftmax, so it has no keypoints. Build the "
                "extractor with spatial_softmax=True to get them."
            )
        return self.spatial_softmax.keypoints(self.feature_map(pixels))


def _describe(space: spaces.Box) -> str:
    return f"Box(low={space.low.min()}, high={space.high.max()}, shape={space.shape}, dtype={space.dtype})"


def _check_image_box(key: str, space: spaces.Box, normalized_image: bool) -> bool:
    """Decide whether a 3-D Box is an image; raise if it is a mis-declared one."""
    if normalized_image:
        is_image = is_image_space(space, normalized_image=True)
    elif is_image_space(space):
        is_image = True
    elif np.issubdtype(space.dtype, np.floating):
        raise ValueError(
            f"Observation key {key!r} is a 3-D float Box ({_describe(space)}), i.e. float pixels. "
            "Expected pixels declared as Box(0, 255, shape, np.uint8) and kept uint8 until the "
            "features extractor: SB3 divides by 255 because of that exact space, and it would "
            "silently treat a float 3-D space as a flat vector. Keep the frames uint8 (e.g. with "
            "PixelObservationWrapper), or, if the images really are floats in [0, 1], pass "
            "normalized_image=True (and normalize_images=False to the policy)."
        )
    else:
        raise ValueError(
            f"Observation key {key!r} is a 3-D Box ({_describe(space)}) that is not a valid image "
            "space. Expected exactly Box(0, 255, (C, H, W), np.uint8) so that SB3 divides it by 255; "
            "fix the bounds and dtype of the space (PixelObservationWrapper declares it correctly)."
        )
    # SB3's heuristic (is_image_space_channels_first): the smallest axis is the channel axis.
    if is_image and int(np.argmin(space.shape)) != 0:
        raise ValueError(
            f"Observation key {key!r} has image shape {space.shape}, which looks channel-last "
            "(H, W, C): its smallest axis is not the first. Expected channel-first (C, H, W), e.g. "
            "(12, 84, 84). Transpose the frames in the env (np.transpose(frame, (2, 0, 1))) and "
            "declare the space channel-first, or use PixelObservationWrapper, which does both. "
            "(SB3 also takes the smallest axis as the channel axis and would transpose such a space "
            "itself; a real (C, H, W) image needs H and W larger than C.)"
        )
    return is_image


class ManipulationExtractor(BaseFeaturesExtractor):
    """Features extractor for dict observations: CNN per image key, passthrough per vector key.

    Each image key (a channel-first 3-D Box, ``Box(0, 255, (C, H, W), uint8)`` as in SB3's
    ``is_image_space``) gets its own encoder:

    * ``encoder="manipulation", spatial_softmax=True`` (default): ManipulationCNN ->
      SpatialSoftmax -> LayerNorm(2C) -> Tanh, ``2 * num_filters`` features.
    * ``encoder="manipulation", spatial_softmax=False``: ManipulationCNN -> Flatten ->
      Linear(flat_features_dim) -> LayerNorm -> Tanh. The head is the one DrQ-v2's actor and
      critic each put on their encoder's flattened output (DrQ-v2 calls it the trunk, with
      50 features); the CNN under it is not DrQ-v2's (see ManipulationCNN).
    * ``encoder="nature", spatial_softmax=False``: NatureCNN with its Linear + ReLU head,
      ``nature_features_dim`` features: the Atari-style baseline that downsamples 4x at once.
    * ``encoder="nature", spatial_softmax=True``: NatureCNN's conv stack -> SpatialSoftmax ->
      LayerNorm(128) -> Tanh.

    Vector keys are flattened and passed through unchanged; keys in ``exclude_keys`` are dropped.
    Outputs are concatenated in the Dict space's key order (gymnasium sorts plain-dict keys), and
    ``key_slices[key]`` gives each key's columns in the output.

    Inside SB3, use it as ``SAC("MultiInputPolicy", env, policy_kwargs=dict(
    features_extractor_class=ManipulationExtractor, features_extractor_kwargs=dict(...)))``.

    Args:
        observation_space: The dict observation space.
        encoder: Which CNN encodes the images.
        spatial_softmax: Whether images are summarised by SpatialSoftmax keypoints.
        num_filters: Channels of ManipulationCNN (ignored by NatureCNN, which has 64).
        flat_features_dim: Output width of the manipulation flat head (no SpatialSoftmax).
        nature_features_dim: Output width of NatureCNN's own head (nature, no SpatialSoftmax).
        exclude_keys: Keys that stay in the observation (e.g. for HER) but are never encoded.
        normalized_image: Accept any 3-D Box (e.g. float images in ``[0, 1]``) as an image; SB3
            passes ``True`` when the policy has ``normalize_images=False``.
        channels_last: Store the CNN weights channels-last (NHWC), which PyTorch's CPU
            convolutions run faster (``benchmarks/update_throughput.py --channels-last``); the
            outputs are the same up to float rounding.
        cnn_precision: ``"fp32"``, or ``"bf16"``: every image key's CNN computes in bfloat16 under
            ``torch.autocast`` (weights, keypoints, heads and everything downstream stay float32;
            see `ImageEncoder`). About twice as fast on CPUs with AMX or AVX512-BF16 and on GPUs
            since Ampere, and slower where bfloat16 is emulated; the features differ by
            bfloat16's rounding.

    Raises:
        TypeError: If ``observation_space`` is not a ``gymnasium.spaces.Dict`` or
            ``exclude_keys`` is a string.
        ValueError: For an unknown encoder or ``cnn_precision``, unknown or all-covering
            ``exclude_keys``, a channel-last, float (without ``normalized_image``) or mis-bounded
            3-D Box, an image too small for NatureCNN, a nested space, or a non-positive size.

    Examples:
        >>> import numpy as np
        >>> from gymnasium import spaces
        >>> space = spaces.Dict({
        ...     "pixels": spaces.Box(0, 255, (3, 16, 16), np.uint8),
        ...     "proprioception": spaces.Box(-1.0, 1.0, (4,), np.float32),
        ... })
        >>> extractor = ManipulationExtractor(space, num_filters=8)
        >>> extractor.features_dim  # 2 * 8 keypoint coordinates + 4 passthrough
        20
        >>> obs = {"pixels": torch.rand(2, 3, 16, 16), "proprioception": torch.zeros(2, 4)}
        >>> extractor(obs).shape
        torch.Size([2, 20])
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        encoder: EncoderType = "manipulation",
        spatial_softmax: bool = True,
        num_filters: int = 32,
        flat_features_dim: int = 50,
        nature_features_dim: int = 512,
        exclude_keys: Sequence[str] = (),
        normalized_image: bool = False,
        channels_last: bool = False,
        cnn_precision: CnnPrecision = "fp32",
    ) -> None:
        if not isinstance(observation_space, spaces.Dict):
            raise TypeError(
                f"ManipulationExtractor expects a gymnasium.spaces.Dict observation space, got "
                f"{type(observation_space).__name__} ({observation_space}). Use it with "
                "'MultiInputPolicy' on a dict-observation env (e.g. PixelObservationWrapper), or "
                "wrap a single image space as spaces.Dict({'pixels': space})."
            )
        if encoder not in _ENCODERS:
            raise ValueError(f"Unknown encoder {encoder!r}; expected one of {list(_ENCODERS)}.")
        if cnn_precision not in CNN_PRECISIONS:
            raise ValueError(f"Unknown cnn_precision {cnn_precision!r}; expected one of {list(CNN_PRECISIONS)}.")
        for name, value in (
            ("num_filters", num_filters),
            ("flat_features_dim", flat_features_dim),
            ("nature_features_dim", nature_features_dim),
        ):
            if value < 1:
                raise ValueError(f"ManipulationExtractor {name} must be a positive integer, got {value}.")
        if isinstance(exclude_keys, str):
            raise TypeError(
                f"exclude_keys must be a sequence of key names, got the string {exclude_keys!r}. "
                f"Write exclude_keys=({exclude_keys!r},)."
            )
        available = list(observation_space.spaces)
        unknown = [key for key in exclude_keys if key not in observation_space.spaces]
        if unknown:
            raise ValueError(
                f"exclude_keys names keys that are not in the observation space: {unknown}. "
                f"Available keys: {available}."
            )
        kept = {key: space for key, space in observation_space.spaces.items() if key not in exclude_keys}
        if not kept:
            raise ValueError(
                f"exclude_keys={list(exclude_keys)} excludes every observation key ({available}); "
                "at least one key must reach the networks."
            )

        image_keys: list[str] = []
        for key, space in kept.items():
            if isinstance(space, (spaces.Dict, spaces.Tuple)):
                raise ValueError(
                    f"Observation key {key!r} is a nested {type(space).__name__} space, which SB3 does "
                    "not support. Flatten the observation into one level of Box keys."
                )
            if not (isinstance(space, spaces.Box) and len(space.shape) == 3):
                continue
            if _check_image_box(key, space, normalized_image):
                image_keys.append(key)
                if encoder == "nature":
                    _check_nature_size(key, space.shape)

        super().__init__(observation_space, features_dim=1)
        self.encoder_type: EncoderType = encoder
        self.use_spatial_softmax = spatial_softmax
        self.normalized_image = normalized_image
        self.image_keys: tuple[str, ...] = tuple(image_keys)
        self.vector_keys: tuple[str, ...] = tuple(key for key in kept if key not in image_keys)
        self.excluded_keys: tuple[str, ...] = tuple(key for key in available if key not in kept)

        extractors: dict[str, nn.Module] = {}
        self.key_slices: dict[str, slice] = {}
        total = 0
        for key, space in kept.items():
            if key in image_keys:
                assert isinstance(space, spaces.Box)
                shape = (int(space.shape[0]), int(space.shape[1]), int(space.shape[2]))
                image_encoder = _build_image_encoder(
                    key, shape, encoder, spatial_softmax, num_filters, flat_features_dim, nature_features_dim,
                    CNN_PRECISIONS[cnn_precision],
                )  # fmt: skip
                extractors[key] = image_encoder
                width = image_encoder.features_dim
            else:
                extractors[key] = nn.Flatten()
                width = int(get_flattened_obs_dim(space))
            self.key_slices[key] = slice(total, total + width)
            total += width
        self.extractors = nn.ModuleDict(extractors)
        self._features_dim = total
        self.channels_last = channels_last
        self.cnn_precision: CnnPrecision = cnn_precision
        if channels_last:
            # Convolution weights in NHWC make PyTorch run the CNN channels-last (the input is
            # converted once per batch); on CPU that roughly halves the cost of a pass.
            self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def image_encoder(self, key: str) -> ImageEncoder:
        """The encoder of one image key (its ``cnn``, ``spatial_softmax`` and ``head``).

        Raises:
            KeyError: If ``key`` is not an image key.
        """
        if key not in self.image_keys:
            raise KeyError(f"{key!r} is not an image key of this extractor; image keys: {list(self.image_keys)}.")
        module = self.extractors[key]
        assert isinstance(module, ImageEncoder)
        return module

    def _get(self, observations: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
        try:
            value = observations[key]
        except KeyError:
            raise KeyError(
                f"Observation is missing key {key!r}; this extractor needs {list(self.extractors)} "
                f"(got {list(observations)})."
            ) from None
        if key in self.image_keys and not torch.is_floating_point(value):
            raise TypeError(
                f"Image key {key!r} arrived as {value.dtype}; expected float pixels in [0, 1]. Pass the "
                "observation through stable_baselines3.common.preprocessing.preprocess_obs first "
                "(SB3's policies do), which divides uint8 images by 255."
            )
        return value

    def forward(self, observations: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Encode a preprocessed batch of dict observations.

        Args:
            observations: Key -> tensor, as produced by SB3's ``preprocess_obs``: images
                ``(B, C, H, W)`` float in ``[0, 1]``, vectors ``(B, ...)`` float. Excluded keys
                may be present; they are ignored.

        Returns:
            ``(B, features_dim)`` float, the keys' features concatenated in space order.

        Raises:
            KeyError: If a key the extractor needs is missing.
            TypeError: If an image arrives as an integer tensor (not preprocessed).
        """
        encoded = [module(self._get(observations, key)) for key, module in self.extractors.items()]
        return torch.cat(encoded, dim=1)

    def keypoints(self, observations: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """SpatialSoftmax keypoints of every image key, for visualisation.

        Args:
            observations: As for `forward` (only image keys are read).

        Returns:
            Image key -> ``(B, C', 2)`` float keypoints (x, y in ``[-1, 1]``).

        Raises:
            RuntimeError: If the extractor was built with ``spatial_softmax=False``.
        """
        if not self.use_spatial_softmax:
            raise RuntimeError(
                "keypoints() needs SpatialSoftmax, but this extractor was built with "
                "spatial_softmax=False. Rebuild it with spatial_softmax=True."
            )
        return {key: self.image_encoder(key).keypoints(self._get(observations, key)) for key in self.image_keys}


def _check_nature_size(key: str, shape: tuple[int, ...]) -> None:
    if min(shape[1:]) < NatureCNN.MIN_SIZE:
        raise ValueError(
            f"Image key {key!r} has shape (C, H, W) = {shape}, too small for encoder='nature': NatureCNN "
            f"needs H and W >= {NatureCNN.MIN_SIZE}. Render larger images or use "
            "encoder='manipulation', which accepts any size."
        )


def _min_side_for_keypoints(encoder: EncoderType) -> int:
    """Smallest image side whose feature map side is at least 2 (so keypoints can vary along it)."""
    side = NatureCNN.MIN_SIZE if encoder == "nature" else 1
    while True:
        if encoder == "nature":
            out = NatureCNN.conv_output_shape(side, side)[1]
        else:
            out = ManipulationCNN(1, 1).output_shape(side, side)[1]
        if out >= 2:
            return side
        side += 1


def _build_image_encoder(
    key: str,
    shape: tuple[int, int, int],
    encoder: EncoderType,
    spatial_softmax: bool,
    num_filters: int,
    flat_features_dim: int,
    nature_features_dim: int,
    cnn_dtype: torch.dtype | None,
) -> ImageEncoder:
    channels, height, width = shape
    cnn: nn.Module
    head: nn.Module
    if encoder == "nature":
        nature = NatureCNN(shape, features_dim=nature_features_dim)
        cnn, feature_map_shape = nature.conv, nature.feature_map_shape
        if not spatial_softmax:
            # Only the conv stack and NatureCNN's own head are kept: no unused parameters.
            return ImageEncoder(cnn, feature_map_shape, None, nature.head, nature_features_dim, cnn_dtype)
    else:
        manipulation = ManipulationCNN(channels, num_filters)
        cnn, feature_map_shape = manipulation, manipulation.output_shape(height, width)
    fm_channels, fm_height, fm_width = feature_map_shape
    if spatial_softmax and fm_height == fm_width == 1:
        raise ValueError(
            f"Image key {key!r} of shape (C, H, W) = {shape} leaves a 1x1 feature map after the "
            f"{encoder} CNN, on which SpatialSoftmax keypoints are constant (no information, no "
            f"gradient). encoder={encoder!r} with spatial_softmax=True needs H or W >= "
            f"{_min_side_for_keypoints(encoder)}. Render larger images or pass spatial_softmax=False."
        )
    if spatial_softmax:
        keypoints = SpatialSoftmax(fm_height, fm_width, fm_channels)
        head = nn.Sequential(nn.LayerNorm(2 * fm_channels), nn.Tanh())
        return ImageEncoder(cnn, feature_map_shape, keypoints, head, 2 * fm_channels, cnn_dtype)
    head = nn.Sequential(
        nn.Flatten(),
        nn.Linear(fm_channels * fm_height * fm_width, flat_features_dim),
        nn.LayerNorm(flat_features_dim),
        nn.Tanh(),
    )
    return ImageEncoder(cnn, feature_map_shape, None, head, flat_features_dim, cnn_dtype)
