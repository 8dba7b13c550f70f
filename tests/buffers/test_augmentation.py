from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from pixelrl.buffers.augmentation import RandomShiftAug


def _reference_shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Independent per-sample pad-and-crop with F.pad(mode="replicate") (float only, hence the casts)."""
    _, _, height, width = x.shape
    pad = int(max(dy.abs().max().item(), dx.abs().max().item(), 1))
    out = []
    for b in range(x.shape[0]):
        padded = F.pad(x[b : b + 1].float(), (pad, pad, pad, pad), mode="replicate")
        top, left = pad - int(dy[b]), pad - int(dx[b])
        out.append(padded[:, :, top : top + height, left : left + width])
    return torch.cat(out).to(x.dtype)


def _random_images(dtype: torch.dtype, shape: tuple[int, int, int, int], seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
    return torch.rand(shape, generator=gen, dtype=dtype)


def _ramp(batch: int, channels: int, height: int, width: int) -> torch.Tensor:
    """Every pixel holds a unique value: row * width + col + 1000 * channel."""
    rows = torch.arange(height)[:, None] * width
    cols = torch.arange(width)[None, :]
    channel = 1000 * torch.arange(channels)[:, None, None]
    return (rows + cols + channel).float().expand(batch, channels, height, width).clone()


def _recover_shifts(out: torch.Tensor, height: int, width: int, channel: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Read (dy, dx) back from the centre pixel of a shifted _ramp (far enough from the border not to clamp)."""
    ci, cj = height // 2, width // 2
    source = out[:, channel, ci, cj].long() - 1000 * channel
    src_i, src_j = source // width, source % width
    return ci - src_i, cj - src_j


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("shape", [(16, 3, 12, 12), (9, 2, 7, 13)])
def test_shift_matches_replicate_pad_reference(dtype: torch.dtype, shape: tuple[int, int, int, int]) -> None:
    x = _random_images(dtype, shape)
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        dy = torch.randint(-4, 5, (shape[0],), generator=gen)
        dx = torch.randint(-4, 5, (shape[0],), generator=gen)
        out = RandomShiftAug.shift(x, dy, dx)
        assert torch.equal(out, _reference_shift(x, dy, dx))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_forward_matches_reference_with_its_own_shifts(dtype: torch.dtype) -> None:
    x = _random_images(dtype, (8, 6, 10, 10), seed=3)
    aug = RandomShiftAug(pad=4)
    out = aug(x, generator=torch.Generator().manual_seed(7))
    dy, dx = aug.sample_shifts(8, generator=torch.Generator().manual_seed(7))
    assert torch.equal(out, _reference_shift(x, dy, dx))


def test_shift_handles_shifts_larger_than_the_image() -> None:
    x = _random_images(torch.uint8, (2, 1, 5, 5))
    dy, dx = torch.tensor([9, -7]), torch.tensor([-6, 8])
    assert torch.equal(RandomShiftAug.shift(x, dy, dx), _reference_shift(x, dy, dx))


def test_shift_direction_is_documented_one() -> None:
    x = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4)
    out = RandomShiftAug.shift(x, dy=torch.tensor([1]), dx=torch.tensor([-1]))
    # Content moves one row down (top row replicated) and one column left (right column replicated).
    assert out[0, 0].tolist() == [[1, 2, 3, 3], [1, 2, 3, 3], [5, 6, 7, 7], [9, 10, 11, 11]]


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_constant_image_unchanged(dtype: torch.dtype) -> None:
    x = torch.full((8, 12, 16, 16), 77, dtype=dtype)
    out = RandomShiftAug(pad=4)(x)
    assert torch.equal(out, x)


def test_two_calls_on_same_input_differ() -> None:
    torch.manual_seed(0)
    x = _random_images(torch.uint8, (8, 3, 16, 16))
    aug = RandomShiftAug(pad=4)
    # The outputs coincide only if all 8 samples draw the same (dy, dx) twice: for a
    # random image that is (1/81)^8 ~ 5e-16, so this holds for any seed.
    assert not torch.equal(aug(x), aug(x))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64, torch.int16])
def test_shape_dtype_device_preserved(dtype: torch.dtype) -> None:
    x = _random_images(torch.uint8, (4, 5, 9, 11)).to(dtype)
    out = RandomShiftAug(pad=2)(x)
    assert out.shape == x.shape
    assert out.dtype == dtype
    assert out.device == x.device


def test_non_contiguous_input() -> None:
    x = _random_images(torch.float32, (4, 6, 10, 10))
    strided = x[:, ::2]  # not contiguous
    dy, dx = torch.tensor([1, -2, 3, 0]), torch.tensor([0, 4, -4, 2])
    assert torch.equal(RandomShiftAug.shift(strided, dy, dx), _reference_shift(strided.contiguous(), dy, dx))


def test_sampled_shifts_stay_in_range_and_cover_it() -> None:
    aug = RandomShiftAug(pad=3)
    dy, dx = aug.sample_shifts(2000, generator=torch.Generator().manual_seed(0))
    assert dy.shape == dx.shape == (2000,)
    assert dy.dtype == dx.dtype == torch.int64
    expected = set(range(-3, 4))
    assert set(dy.tolist()) == expected
    assert set(dx.tolist()) == expected


def test_forward_shifts_recovered_from_output_stay_in_range_and_cover_it() -> None:
    torch.manual_seed(0)
    aug = RandomShiftAug(pad=2)
    x = _ramp(400, 1, 11, 11)
    dy, dx = _recover_shifts(aug(x), 11, 11)
    assert set(dy.tolist()) == set(range(-2, 3))
    assert set(dx.tolist()) == set(range(-2, 3))
    # Shifts are independent per sample and per axis, not one shift for the whole batch.
    assert not torch.equal(dy, dx)


def test_channels_of_a_sample_move_together() -> None:
    torch.manual_seed(0)
    x = _ramp(32, 4, 13, 13)
    out = RandomShiftAug(pad=4)(x)
    dy0, dx0 = _recover_shifts(out, 13, 13, channel=0)
    for channel in range(1, 4):
        dy, dx = _recover_shifts(out, 13, 13, channel=channel)
        assert torch.equal(dy, dy0)
        assert torch.equal(dx, dx0)


def test_gradient_flows_for_float_input() -> None:
    x = _random_images(torch.float32, (3, 2, 8, 8)).requires_grad_(True)
    ref_x = x.detach().clone().requires_grad_(True)
    dy, dx = torch.tensor([4, -3, 0]), torch.tensor([-4, 2, 1])
    weights = torch.randn(3, 2, 8, 8)
    (RandomShiftAug.shift(x, dy, dx) * weights).sum().backward()
    (_reference_shift(ref_x, dy, dx) * weights).sum().backward()
    assert x.grad is not None
    assert ref_x.grad is not None
    torch.testing.assert_close(x.grad, ref_x.grad)
    # A replicated border pixel collects the gradient of every output pixel copied from it.
    assert x.grad.abs().sum() > 0


def test_pad_zero_returns_input() -> None:
    x = _random_images(torch.uint8, (2, 3, 8, 8))
    assert RandomShiftAug(pad=0)(x) is x


def test_generator_makes_it_reproducible() -> None:
    x = _random_images(torch.uint8, (8, 3, 12, 12))
    per_call = [RandomShiftAug(pad=4)(x, generator=torch.Generator().manual_seed(5)) for _ in range(2)]
    assert torch.equal(per_call[0], per_call[1])
    at_construction = RandomShiftAug(pad=4, generator=torch.Generator().manual_seed(5))(x)
    assert torch.equal(at_construction, per_call[0])
    # The per-call generator wins over the constructor's.
    aug = RandomShiftAug(pad=4, generator=torch.Generator().manual_seed(123))
    assert torch.equal(aug(x, generator=torch.Generator().manual_seed(5)), per_call[0])


def test_rejects_single_image() -> None:
    with pytest.raises(ValueError, match=r"\(B, C, H, W\).*Add a batch dimension with x.unsqueeze\(0\)"):
        RandomShiftAug()(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match=r"got a tensor of shape \(8, 8\)"):
        RandomShiftAug()(torch.zeros(8, 8))


def test_rejects_bad_shifts_and_pad() -> None:
    x = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"dy as an integer tensor of shape \(2,\)"):
        RandomShiftAug.shift(x, torch.tensor([1.0, 0.0]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match=r"dx as an integer tensor of shape \(2,\)"):
        RandomShiftAug.shift(x, torch.tensor([1, 0]), torch.tensor([0, 0, 0]))
    with pytest.raises(ValueError, match="pad must be a non-negative int"):
        RandomShiftAug(pad=-1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_uint8_with_cpu_generator() -> None:
    x = _random_images(torch.uint8, (8, 3, 12, 12)).cuda()
    out = RandomShiftAug(pad=4)(x, generator=torch.Generator().manual_seed(5))
    assert out.device == x.device
    assert out.dtype == torch.uint8
    dy, dx = RandomShiftAug(pad=4).sample_shifts(8, generator=torch.Generator().manual_seed(5))
    assert torch.equal(out.cpu(), _reference_shift(x.cpu(), dy, dx))
