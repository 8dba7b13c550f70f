"""Pixel encoders: CNN trunks, SpatialSoftmax keypoints and the SB3 features extractor.

* :class:`NatureCNN`: the Atari-era encoder (stride-4 first layer), kept as a baseline.
* :class:`ManipulationCNN`: DrQ-v2-style gentle downsampling (84x84 -> 21x21 feature map).
* :class:`SpatialSoftmax`: expected (x, y) image coordinate of each feature channel.
* :class:`ManipulationExtractor`: ``BaseFeaturesExtractor`` for dict observations that encodes
  image keys and passes vector keys through, for ``SAC("MultiInputPolicy", ...)``.
"""

from __future__ import annotations

from pixelrl.encoders.cnn import ManipulationCNN, NatureCNN
from pixelrl.encoders.extractor import ManipulationExtractor
from pixelrl.encoders.spatial_softmax import SpatialSoftmax

__all__ = ["ManipulationCNN", "ManipulationExtractor", "NatureCNN", "SpatialSoftmax"]
