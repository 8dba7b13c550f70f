from __future__ import annotations

import pytest
import torch

from pixelrl.encoders import ManipulationCNN, NatureCNN


def test_manipulation_cnn_chapter_checkpoint() -> None:
    torch.manual_seed(0)
    cnn = ManipulationCNN(in_channels=12)
    out = cnn(torch.rand(4, 12, 84, 84))
    assert out.shape == (4, 32, 21, 21)
    assert torch.isfinite(out).all()
    assert (out >= 0).all()  # ends in a ReLU
    assert cnn.output_shape(84, 84) == (32, 21, 21)


@pytest.mark.parametrize(("height", "width"), [(1, 1), (2, 3), (5, 8), (7, 7), (16, 16), (31, 33), (36, 40), (84, 84)])
def test_manipulation_output_shape_matches_forward(height: int, width: int) -> None:
    cnn = ManipulationCNN(in_channels=2, num_filters=3)
    with torch.no_grad():
        real = cnn(torch.zeros(1, 2, height, width)).shape[1:]
    assert cnn.output_shape(height, width) == tuple(real)


def test_manipulation_output_shape_is_quarter_ceiling() -> None:
    cnn = ManipulationCNN(in_channels=1, num_filters=4)
    for size in range(1, 90):
        assert cnn.output_shape(size, size) == (4, -(-size // 4), -(-size // 4))


def test_manipulation_layers_are_padded_3x3_with_strides_2_1_1_2() -> None:
    convs = [m for m in ManipulationCNN(in_channels=9, num_filters=16).modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2), (1, 1), (1, 1), (2, 2)]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert convs[0].in_channels == 9
    assert all(c.out_channels == 16 for c in convs)


def test_manipulation_rejects_bad_input() -> None:
    cnn = ManipulationCNN(in_channels=3, num_filters=4)
    with pytest.raises(ValueError, match="Add a batch dimension"):
        cnn(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="built for 3 input channels"):
        cnn(torch.rand(1, 4, 8, 8))
    with pytest.raises(TypeError, match="float images"):
        cnn(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="at least 1x1"):
        cnn.output_shape(0, 5)
    with pytest.raises(ValueError, match="num_filters must be a positive"):
        ManipulationCNN(in_channels=3, num_filters=0)


def test_nature_cnn_chapter_progression() -> None:
    torch.manual_seed(0)
    cnn = NatureCNN((12, 84, 84), features_dim=32)
    assert cnn.feature_map_shape == (64, 7, 7)
    x = torch.rand(2, 12, 84, 84)
    with torch.no_grad():
        first = cnn.conv[0](x)
        feature_map = cnn.conv(x)
        out = cnn(x)
    assert first.shape[-2:] == (20, 20)  # the stride-4 first layer: 84 -> 20
    assert feature_map.shape == (2, 64, 7, 7)
    assert out.shape == (2, 32)
    assert (out >= 0).all()
    # head takes the feature map: forward is exactly head(conv(x)).
    torch.testing.assert_close(out, cnn.head(feature_map))
    linear = [m for m in cnn.head.modules() if isinstance(m, torch.nn.Linear)]
    assert linear[0].in_features == 64 * 7 * 7


def test_nature_cnn_uses_actual_size_not_84() -> None:
    cnn = NatureCNN((3, 40, 52), features_dim=8)
    with torch.no_grad():
        real = cnn.conv(torch.zeros(1, 3, 40, 52)).shape[1:]
    assert cnn.feature_map_shape == tuple(real) == (64, 1, 3)
    assert cnn(torch.rand(2, 3, 40, 52)).shape == (2, 8)


def test_nature_cnn_minimum_size() -> None:
    assert NatureCNN.MIN_SIZE == 36
    NatureCNN((1, 36, 36), features_dim=4)  # the smallest size that works
    with pytest.raises(ValueError, match="at least 36x36"):
        NatureCNN((1, 35, 36), features_dim=4)
    with pytest.raises(ValueError, match="at least 36x36"):
        NatureCNN((3, 84, 32))
    # The stated minimum is the real one: one pixel less breaks a bare conv stack.
    conv = NatureCNN((1, 36, 36), features_dim=4).conv
    with pytest.raises(RuntimeError):
        conv(torch.zeros(1, 1, 35, 35))


def test_nature_cnn_rejects_bad_shape() -> None:
    with pytest.raises(ValueError, match=r"expected observation_shape \(C, H, W\)"):
        NatureCNN((84, 84))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="features_dim must be a positive"):
        NatureCNN((3, 84, 84), features_dim=0)
