from __future__ import annotations

import itertools

import pytest
import torch

from pixelrl.encoders import SpatialSoftmax


def _peak(batch: int, channels: int, height: int, width: int, row: int, col: int, value: float = 50.0) -> torch.Tensor:
    features = torch.zeros(batch, channels, height, width)
    features[:, :, row, col] = value
    return features


def test_chapter_checkpoint_shape_and_range() -> None:
    torch.manual_seed(0)
    ss = SpatialSoftmax(21, 21, 32)
    out = ss(torch.randn(4, 32, 21, 21) * 5)
    assert out.shape == (4, 64)
    assert out.abs().max() <= 1.0 + 1e-6


def test_top_left_and_bottom_right_corners() -> None:
    ss = SpatialSoftmax(21, 21, 3)
    top_left = ss(_peak(2, 3, 21, 21, 0, 0))
    torch.testing.assert_close(top_left, torch.full((2, 6), -1.0), atol=1e-3, rtol=0)
    bottom_right = ss(_peak(2, 3, 21, 21, 20, 20))
    torch.testing.assert_close(bottom_right, torch.full((2, 6), 1.0), atol=1e-3, rtol=0)


def test_interior_pixel_maps_to_linspace_coordinate() -> None:
    height, width = 7, 11
    row, col = 2, 8
    ss = SpatialSoftmax(height, width, 1, temperature=0.01)
    out = ss(_peak(1, 1, height, width, row, col, value=1.0))
    expected_x = torch.linspace(-1, 1, width)[col]  # x runs along the width
    expected_y = torch.linspace(-1, 1, height)[row]  # y runs along the height
    torch.testing.assert_close(out, torch.stack([expected_x, expected_y])[None], atol=1e-5, rtol=0)


def test_output_order_is_all_x_then_all_y() -> None:
    ss = SpatialSoftmax(5, 5, 2, temperature=0.01)
    features = torch.zeros(1, 2, 5, 5)
    features[0, 0, 0, 4] = 1.0  # channel 0: top-right, (x, y) = (1, -1)
    features[0, 1, 2, 0] = 1.0  # channel 1: middle-left, (x, y) = (-1, 0)
    out = ss(features)
    torch.testing.assert_close(out, torch.tensor([[1.0, -1.0, -1.0, 0.0]]), atol=1e-5, rtol=0)
    keypoints = ss.keypoints(features)
    assert keypoints.shape == (1, 2, 2)
    torch.testing.assert_close(keypoints, torch.tensor([[[1.0, -1.0], [-1.0, 0.0]]]), atol=1e-5, rtol=0)


def test_forward_and_keypoints_agree() -> None:
    torch.manual_seed(1)
    ss = SpatialSoftmax(6, 9, 4)
    features = torch.randn(3, 4, 6, 9)
    keypoints = ss.keypoints(features)
    out = ss(features)
    torch.testing.assert_close(out[:, :4], keypoints[..., 0])
    torch.testing.assert_close(out[:, 4:], keypoints[..., 1])


def test_matches_explicit_softmax_reference() -> None:
    torch.manual_seed(2)
    height, width, channels = 5, 4, 3
    ss = SpatialSoftmax(height, width, channels, temperature=0.7)
    features = torch.randn(2, channels, height, width)
    attention = torch.softmax(features.reshape(2, channels, -1) / 0.7, dim=-1).reshape(2, channels, height, width)
    ref_x = (attention * torch.linspace(-1, 1, width)).sum(dim=(2, 3))
    ref_y = (attention * torch.linspace(-1, 1, height)[:, None]).sum(dim=(2, 3))
    torch.testing.assert_close(ss(features), torch.cat([ref_x, ref_y], dim=1), atol=1e-6, rtol=0)


def test_low_temperature_sharpens_high_temperature_centres() -> None:
    features = _peak(1, 1, 9, 9, 1, 7, value=1.0)  # argmax at (x, y) = (0.75, -0.75)
    argmax = torch.tensor([[0.75, -0.75]])
    errors = []
    for temperature in (10.0, 1.0, 0.3, 0.1, 0.01):
        out = SpatialSoftmax(9, 9, 1, temperature=temperature)(features)
        errors.append((out - argmax).norm().item())
    assert all(later < earlier for earlier, later in itertools.pairwise(errors))
    assert errors[-1] < 1e-4
    centre_distances = [SpatialSoftmax(9, 9, 1, temperature=t)(features).norm().item() for t in (0.1, 1.0, 10.0, 1e3)]
    assert all(later < earlier for earlier, later in itertools.pairwise(centre_distances))
    assert centre_distances[-1] < 1e-4  # nearly uniform attention: the centre (0, 0)


def test_learnable_temperature_receives_gradient() -> None:
    ss = SpatialSoftmax(5, 5, 2, temperature=2.0)
    params = dict(ss.named_parameters())
    assert list(params) == ["log_temperature"]
    torch.testing.assert_close(ss.temperature, torch.tensor([2.0]))
    features = torch.randn(3, 2, 5, 5, requires_grad=True)
    ss(features).pow(2).sum().backward()
    assert ss.log_temperature.grad is not None
    assert ss.log_temperature.grad.abs().item() > 0
    assert features.grad is not None
    assert features.grad.abs().sum() > 0


def test_fixed_temperature_is_a_buffer_not_a_parameter() -> None:
    ss = SpatialSoftmax(5, 5, 2, temperature=0.5, learnable_temperature=False)
    assert list(ss.parameters()) == []
    assert "log_temperature" in dict(ss.named_buffers())
    assert "log_temperature" in ss.state_dict()
    torch.testing.assert_close(ss.temperature, torch.tensor([0.5]))


def test_temperature_stays_positive_and_finite() -> None:
    ss = SpatialSoftmax(4, 4, 1)
    with torch.no_grad():
        ss.log_temperature.fill_(-1e4)  # what a diverging optimizer could write
    assert ss.temperature.item() > 0
    out = ss(torch.randn(2, 1, 4, 4))
    assert torch.isfinite(out).all()
    with torch.no_grad():
        ss.log_temperature.fill_(1e4)
    assert torch.isfinite(ss(torch.randn(2, 1, 4, 4))).all()


def test_single_pixel_axis_is_centred() -> None:
    ss = SpatialSoftmax(1, 3, 1, temperature=0.01)
    out = ss(_peak(1, 1, 1, 3, 0, 2, value=1.0))
    torch.testing.assert_close(out, torch.tensor([[1.0, 0.0]]), atol=1e-5, rtol=0)


def test_rejects_mismatched_input() -> None:
    ss = SpatialSoftmax(21, 21, 32)
    with pytest.raises(ValueError, match=r"built for feature maps .*\(B, 32, 21, 21\), got \(4, 16, 21, 21\)"):
        ss(torch.zeros(4, 16, 21, 21))
    with pytest.raises(ValueError, match=r"got \(4, 32, 20, 21\)"):
        ss(torch.zeros(4, 32, 20, 21))
    with pytest.raises(ValueError, match=r"got \(32, 21, 21\)"):
        ss(torch.zeros(32, 21, 21))


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf")])
def test_rejects_bad_temperature(temperature: float) -> None:
    with pytest.raises(ValueError, match="temperature must be a positive finite number"):
        SpatialSoftmax(5, 5, 1, temperature=temperature)


def test_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="positive height, width and num_channels"):
        SpatialSoftmax(0, 5, 1)
