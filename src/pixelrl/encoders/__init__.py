"""Pixel encoders: CNN trunks, SpatialSoftmax keypoints and the SB3 features extractor.

* [NatureCNN][pixelrl.encoders.NatureCNN]: the Atari DQN encoder (stride-4 first layer,
  84x84 -> 7x7 feature map), kept as a baseline.
* [ManipulationCNN][pixelrl.encoders.ManipulationCNN]: four padded 3x3 convolutions with
  strides 2, 1, 1, 2 (84x84 -> 21x21 feature map). It has the depth, width and kernel size of
  DrQ-v2's encoder but not its padding or strides (DrQ-v2's gives a 35x35 map at 84x84).
* [SpatialSoftmax][pixelrl.encoders.SpatialSoftmax]: expected (x, y) image coordinate of each
  feature channel.
* [ManipulationExtractor][pixelrl.encoders.ManipulationExtractor]: ``BaseFeaturesExtractor``
  for dict observations that encodes image keys and passes vector keys through, for
  ``SAC("MultiInputPolicy", ...)``.
"""

from __future__ import annotations

from pixelrl.encoders.cnn import ManipulationCNN, NatureCNN
from pixelrl.encoders.extractor import ManipulationExtractor
from pixelrl.encoders.spatial_softmax import SpatialSoftmax

__all__ = ["ManipulationCNN", "ManipulationExtractor", "NatureCNN", "SpatialSoftmax"]
