from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.preprocessing import preprocess_obs

from pixelrl.encoders import ManipulationCNN, ManipulationExtractor, SpatialSoftmax
from pixelrl.encoders.extractor import ImageEncoder


def _space(
    pixels: tuple[int, int, int] = (12, 84, 84), proprio: int = 10, goal: int = 3, pixel_dtype: Any = np.uint8
) -> spaces.Dict:
    high = 255 if pixel_dtype == np.uint8 else 1.0
    return spaces.Dict(
        {
            "pixels": spaces.Box(0, high, pixels, pixel_dtype),
            "proprioception": spaces.Box(-np.inf, np.inf, (proprio,), np.float32),
            "achieved_goal": spaces.Box(-np.inf, np.inf, (goal,), np.float32),
            "desired_goal": spaces.Box(-np.inf, np.inf, (goal,), np.float32),
        }
    )


def _batch(space: spaces.Dict, batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """A preprocessed batch, as SB3 hands it to the features extractor (pixels float in [0, 1])."""
    gen = torch.Generator().manual_seed(seed)
    obs: dict[str, torch.Tensor] = {}
    for key, sub in space.spaces.items():
        assert isinstance(sub, spaces.Box)
        if sub.dtype == np.uint8:
            obs[key] = torch.randint(0, 256, (batch, *sub.shape), generator=gen).float() / 255.0
        else:
            obs[key] = torch.randn((batch, *sub.shape), generator=gen)
    return obs


def test_chapter_features_dim_80_and_77() -> None:
    space = _space()
    extractor = ManipulationExtractor(space)
    assert extractor.features_dim == 80  # 64 keypoints + 10 proprio + 3 + 3
    assert extractor.image_keys == ("pixels",)
    assert extractor.vector_keys == ("achieved_goal", "desired_goal", "proprioception")
    strict = ManipulationExtractor(space, exclude_keys=("achieved_goal",))
    assert strict.features_dim == 77
    assert strict.excluded_keys == ("achieved_goal",)
    assert "achieved_goal" not in strict.extractors


def test_key_order_is_the_space_order() -> None:
    extractor = ManipulationExtractor(_space(pixels=(3, 16, 16)), num_filters=4)
    assert list(extractor.extractors) == list(extractor._observation_space.spaces)  # type: ignore[attr-defined]
    assert extractor.key_slices == {
        "achieved_goal": slice(0, 3),
        "desired_goal": slice(3, 6),
        "pixels": slice(6, 14),
        "proprioception": slice(14, 24),
    }


def test_vector_keys_pass_through_unchanged_at_their_offsets() -> None:
    space = _space(pixels=(6, 16, 16))
    extractor = ManipulationExtractor(space, num_filters=4)
    obs = _batch(space, batch=3)
    with torch.no_grad():
        out = extractor(obs)
        pixels = extractor.image_encoder("pixels")(obs["pixels"])
    assert out.shape == (3, extractor.features_dim)
    for key in ("achieved_goal", "desired_goal", "proprioception"):
        assert torch.equal(out[:, extractor.key_slices[key]], obs[key])
    assert torch.equal(out[:, extractor.key_slices["pixels"]], pixels)


def test_excluded_keys_do_not_influence_the_output() -> None:
    space = _space(pixels=(3, 16, 16))
    extractor = ManipulationExtractor(space, num_filters=4, exclude_keys=("achieved_goal",))
    obs = _batch(space)
    perturbed = dict(obs, achieved_goal=obs["achieved_goal"] + 100.0)
    without = {key: value for key, value in obs.items() if key != "achieved_goal"}
    with torch.no_grad():
        out = extractor(obs)
        assert torch.equal(out, extractor(perturbed))
        assert torch.equal(out, extractor(without))
        # ... while a kept vector key does move it.
        assert not torch.equal(out, extractor(dict(obs, desired_goal=obs["desired_goal"] + 1.0)))


def test_excluding_an_image_key_leaves_a_vector_only_extractor() -> None:
    extractor = ManipulationExtractor(_space(pixels=(3, 16, 16)), exclude_keys=("pixels",))
    assert extractor.image_keys == ()
    assert extractor.features_dim == 16
    assert list(extractor.parameters()) == []


# (encoder, spatial_softmax, image features for num_filters=4, flat 12, nature 20, smallest usable size)
COMBOS = [
    ("manipulation", True, 8, (32, 32)),
    ("manipulation", False, 12, (32, 32)),
    ("nature", False, 20, (36, 36)),
    ("nature", True, 128, (44, 44)),
]


@pytest.mark.parametrize(("encoder", "spatial_softmax", "image_dim", "small"), COMBOS)
@pytest.mark.parametrize("size", ["84x84", "small", "40x52"])
def test_all_combos_build_and_train(
    encoder: Any, spatial_softmax: bool, image_dim: int, small: tuple[int, int], size: str
) -> None:
    torch.manual_seed(0)
    hw = {"84x84": (84, 84), "small": small, "40x52": (40, 52)}[size]
    space = _space(pixels=(3, *hw))
    extractor = ManipulationExtractor(
        space,
        encoder=encoder,
        spatial_softmax=spatial_softmax,
        num_filters=4,
        flat_features_dim=12,
        nature_features_dim=20,
    )
    assert extractor.features_dim == image_dim + 16
    image = extractor.image_encoder("pixels")
    assert (image.spatial_softmax is not None) == spatial_softmax
    out = extractor(_batch(space))
    assert out.shape == (2, image_dim + 16)
    assert torch.isfinite(out).all()
    if encoder == "manipulation" or spatial_softmax:  # LayerNorm -> Tanh heads are bounded
        assert out[:, extractor.key_slices["pixels"]].abs().max() < 1
    # Every parameter is used: no dead head left over from NatureCNN when SpatialSoftmax replaces it.
    out.square().sum().backward()
    for name, param in extractor.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("size", [(32, 32), (21, 13), (5, 5), (1, 7)])
def test_manipulation_accepts_small_images(size: tuple[int, int]) -> None:
    space = _space(pixels=(1, *size))
    for spatial_softmax in (True, False):
        extractor = ManipulationExtractor(space, spatial_softmax=spatial_softmax, num_filters=4, flat_features_dim=7)
        image = extractor.image_encoder("pixels")
        assert image.feature_map_shape == ManipulationCNN(1, 4).output_shape(*size)
        assert extractor(_batch(space)).shape == (2, (8 if spatial_softmax else 7) + 16)


def test_error_keypoints_on_a_1x1_feature_map() -> None:
    with pytest.raises(ValueError, match=r"1x1 feature map.*encoder='manipulation'.*needs H or W >= 5"):
        ManipulationExtractor(_space(pixels=(1, 4, 4)))
    ManipulationExtractor(_space(pixels=(1, 4, 4)), spatial_softmax=False)  # the flat head is fine
    with pytest.raises(ValueError, match=r"1x1 feature map.*encoder='nature'.*needs H or W >= 44"):
        ManipulationExtractor(_space(pixels=(3, 43, 43)), encoder="nature")


def test_image_encoder_exposes_cnn_and_spatial_softmax() -> None:
    extractor = ManipulationExtractor(_space(), num_filters=32)
    image = extractor.image_encoder("pixels")
    assert isinstance(image, ImageEncoder)
    assert isinstance(image.cnn, ManipulationCNN)
    assert isinstance(image.spatial_softmax, SpatialSoftmax)
    assert image.feature_map_shape == (32, 21, 21)
    assert (image.spatial_softmax.height, image.spatial_softmax.width) == (21, 21)
    nature = ManipulationExtractor(_space(), encoder="nature").image_encoder("pixels")
    assert nature.feature_map_shape == (64, 7, 7)
    with pytest.raises(KeyError, match="not an image key"):
        extractor.image_encoder("proprioception")


def test_keypoints_per_image_key_consistent_with_forward() -> None:
    space = spaces.Dict(
        {
            "front": spaces.Box(0, 255, (3, 16, 16), np.uint8),
            "wrist": spaces.Box(0, 255, (3, 12, 20), np.uint8),
            "proprioception": spaces.Box(-1, 1, (2,), np.float32),
        }
    )
    extractor = ManipulationExtractor(space, num_filters=4)
    obs = _batch(space)
    with torch.no_grad():
        keypoints = extractor.keypoints(obs)
        out = extractor(obs)
    assert set(keypoints) == {"front", "wrist"}
    for key, points in keypoints.items():
        assert points.shape == (2, 4, 2)
        assert points.abs().max() <= 1
        # The forward features are head([all x, all y]) of exactly these keypoints.
        flat = torch.cat([points[..., 0], points[..., 1]], dim=1)
        head = extractor.image_encoder(key).head
        torch.testing.assert_close(out[:, extractor.key_slices[key]], head(flat))
    flat_extractor = ManipulationExtractor(space, spatial_softmax=False, num_filters=4)
    with pytest.raises(RuntimeError, match="spatial_softmax=True"):
        flat_extractor.keypoints(obs)


def test_normalized_float_images_accepted_when_asked() -> None:
    space = _space(pixels=(3, 16, 16), pixel_dtype=np.float32)
    extractor = ManipulationExtractor(space, num_filters=4, normalized_image=True)
    assert extractor.image_keys == ("pixels",)
    assert extractor.features_dim == 8 + 16


def test_error_channel_last() -> None:
    with pytest.raises(ValueError, match=r"channel-last.*Expected channel-first \(C, H, W\).*PixelObservationWrapper"):
        ManipulationExtractor(_space(pixels=(84, 84, 12)))


def test_error_float_pixels() -> None:
    with pytest.raises(ValueError, match=r"float pixels.*Box\(0, 255, shape, np.uint8\).*normalized_image=True"):
        ManipulationExtractor(_space(pixels=(12, 84, 84), pixel_dtype=np.float32))


def test_error_uint8_with_wrong_bounds() -> None:
    space = _space(pixels=(3, 16, 16))
    space.spaces["pixels"] = spaces.Box(0, 1, (3, 16, 16), np.uint8)
    with pytest.raises(ValueError, match=r"not a valid image space.*Box\(0, 255, \(C, H, W\), np.uint8\)"):
        ManipulationExtractor(space)


def test_error_not_a_dict() -> None:
    with pytest.raises(TypeError, match=r"expects a gymnasium\.spaces\.Dict observation space, got Box"):
        ManipulationExtractor(spaces.Box(0, 255, (3, 84, 84), np.uint8))  # type: ignore[arg-type]


def test_error_unknown_exclude_key_lists_available() -> None:
    with pytest.raises(
        ValueError, match=r"not in the observation space: \['achieved'\].*Available keys: \['achieved_goal'"
    ):
        ManipulationExtractor(_space(), exclude_keys=("achieved",))


def test_error_exclude_keys_as_string() -> None:
    with pytest.raises(TypeError, match=r"Write exclude_keys=\('achieved_goal',\)"):
        ManipulationExtractor(_space(), exclude_keys="achieved_goal")


def test_error_excluding_everything() -> None:
    space = _space()
    with pytest.raises(ValueError, match="excludes every observation key"):
        ManipulationExtractor(space, exclude_keys=tuple(space.spaces))


def test_error_image_too_small_for_nature() -> None:
    with pytest.raises(ValueError, match=r"'pixels'.*too small for encoder='nature'.*H and W >= 36"):
        ManipulationExtractor(_space(pixels=(3, 32, 32)), encoder="nature")


def test_error_unknown_encoder_and_sizes() -> None:
    with pytest.raises(ValueError, match=r"Unknown encoder 'impala'; expected one of \['manipulation', 'nature'\]"):
        ManipulationExtractor(_space(), encoder="impala")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_filters must be a positive integer"):
        ManipulationExtractor(_space(), num_filters=0)


def test_error_nested_space() -> None:
    space = spaces.Dict({"inner": spaces.Dict({"a": spaces.Box(-1, 1, (2,))})})
    with pytest.raises(ValueError, match="nested Dict space"):
        ManipulationExtractor(space)


def test_error_unpreprocessed_uint8_pixels_and_missing_key() -> None:
    space = _space(pixels=(3, 16, 16))
    extractor = ManipulationExtractor(space, num_filters=4)
    obs = _batch(space)
    with pytest.raises(TypeError, match="preprocess_obs"):
        extractor(dict(obs, pixels=(obs["pixels"] * 255).to(torch.uint8)))
    with pytest.raises(KeyError, match="missing key 'proprioception'"):
        extractor({key: value for key, value in obs.items() if key != "proprioception"})


class TinyPixelEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Random (3 * frames, 16, 16) uint8 pixels, a 4-D proprio vector and 2-D goals; 5-step episodes."""

    def __init__(self, frames: int = 2) -> None:
        self.observation_space = spaces.Dict(
            {
                "pixels": spaces.Box(0, 255, (3 * frames, 16, 16), np.uint8),
                "proprioception": spaces.Box(-1, 1, (4,), np.float32),
                "achieved_goal": spaces.Box(-1, 1, (2,), np.float32),
                "desired_goal": spaces.Box(-1, 1, (2,), np.float32),
            }
        )
        self.action_space = spaces.Box(-1, 1, (2,), np.float32)
        self._t = 0

    def _obs(self) -> dict[str, np.ndarray]:
        rng = self.np_random
        return {
            "pixels": rng.integers(0, 256, (6, 16, 16), dtype=np.uint8),
            "proprioception": rng.uniform(-1, 1, 4).astype(np.float32),
            "achieved_goal": rng.uniform(-1, 1, 2).astype(np.float32),
            "desired_goal": rng.uniform(-1, 1, 2).astype(np.float32),
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        self._t += 1
        return self._obs(), -float(np.abs(action).sum()), False, self._t >= 5, {}


def test_inside_sac_multi_input_policy_and_bridge() -> None:
    kwargs: dict[str, Any] = {"num_filters": 4, "exclude_keys": ("achieved_goal",)}
    model = SAC(
        "MultiInputPolicy",
        TinyPixelEnv(),
        learning_starts=0,
        batch_size=4,
        buffer_size=50,
        policy_kwargs={"features_extractor_class": ManipulationExtractor, "features_extractor_kwargs": kwargs},
        seed=0,
        device="cpu",
    )
    actor_extractor = model.policy.actor.features_extractor
    critic_extractor = model.policy.critic.features_extractor
    assert isinstance(actor_extractor, ManipulationExtractor)
    assert actor_extractor.features_dim == 8 + 4 + 2  # keypoints + proprio + desired_goal
    critic_before = {k: v.clone() for k, v in critic_extractor.state_dict().items()}
    model.learn(total_timesteps=3)
    # SAC's TD loss reaches the critic's encoder (share_features_extractor=False by default).
    changed = [k for k, v in critic_extractor.state_dict().items() if not torch.equal(v, critic_before[k])]
    assert any("cnn" in k for k in changed)

    # Bridge: the extractor alone, fed preprocess_obs output, equals the one inside the policy.
    obs = model.observation_space.sample()
    obs_tensor, _ = model.policy.obs_to_tensor(obs)
    assert isinstance(obs_tensor, dict)
    preprocessed = preprocess_obs(obs_tensor, model.observation_space)
    assert isinstance(preprocessed, dict)
    assert preprocessed["pixels"].dtype == torch.float32
    assert preprocessed["pixels"].max() <= 1.0
    standalone = ManipulationExtractor(model.observation_space, **kwargs)  # type: ignore[arg-type]
    standalone.load_state_dict(actor_extractor.state_dict())
    with torch.no_grad():
        alone = standalone(preprocessed)
        in_policy = actor_extractor(preprocessed)
        via_sb3 = model.policy.actor.extract_features(obs_tensor, actor_extractor)
    assert (alone - in_policy).abs().max().item() < 1e-6
    assert (alone - via_sb3).abs().max().item() < 1e-6


def test_channels_last_stores_weights_nhwc_and_gives_the_same_features():
    space = spaces.Dict(
        {"pixels": spaces.Box(0, 255, (6, 20, 20), np.uint8), "proprioception": spaces.Box(-1, 1, (3,), np.float32)}
    )
    torch.manual_seed(0)
    plain = ManipulationExtractor(space, num_filters=8)
    torch.manual_seed(0)
    fast = ManipulationExtractor(space, num_filters=8, channels_last=True)
    conv = next(fast.image_encoder("pixels").cnn.parameters())
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    obs = {"pixels": torch.rand(5, 6, 20, 20), "proprioception": torch.rand(5, 3)}
    torch.testing.assert_close(fast(obs), plain(obs), atol=1e-4, rtol=0)


def _conv_output_dtypes(extractor: ManipulationExtractor, obs: dict[str, torch.Tensor]) -> list[torch.dtype]:
    dtypes: list[torch.dtype] = []
    convs = [m for m in extractor.image_encoder("pixels").cnn.modules() if isinstance(m, torch.nn.Conv2d)]
    hooks = [conv.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype)) for conv in convs]
    out = extractor(obs)
    out.sum().backward()
    for hook in hooks:
        hook.remove()
    return dtypes


@pytest.mark.parametrize("channels_last", [False, True])
def test_bf16_cnn_computes_convolutions_in_bfloat16_and_returns_float32_features(channels_last: bool) -> None:
    space = _space(pixels=(6, 24, 24), proprio=3)
    torch.manual_seed(0)
    plain = ManipulationExtractor(space, num_filters=8, channels_last=channels_last)
    torch.manual_seed(0)
    half = ManipulationExtractor(space, num_filters=8, channels_last=channels_last, cnn_precision="bf16")
    obs = _batch(space, batch=4)
    assert set(_conv_output_dtypes(plain, obs)) == {torch.float32}
    assert set(_conv_output_dtypes(half, obs)) == {torch.bfloat16}  # every conv, forward
    features = half(obs)
    assert features.dtype == torch.float32
    # The same network up to bfloat16 rounding: close (features are tanh outputs and raw vectors) but not equal.
    reference = plain(obs)
    torch.testing.assert_close(features, reference, atol=0.05, rtol=0)
    assert not torch.equal(features, reference)
    # Weights and their gradients stay float32.
    weight = next(half.image_encoder("pixels").cnn.parameters())
    assert weight.dtype == torch.float32 and weight.grad is not None and weight.grad.dtype == torch.float32
    # Keypoints (for visualisation) come from the same bfloat16 feature map.
    torch.testing.assert_close(
        half.keypoints(obs)["pixels"].transpose(1, 2).reshape(4, -1),
        half.image_encoder("pixels").spatial_softmax(half.image_encoder("pixels").feature_map(obs["pixels"])),
    )


def test_error_unknown_cnn_precision() -> None:
    with pytest.raises(ValueError, match=r"Unknown cnn_precision 'fp16'; expected one of \['fp32', 'bf16'\]"):
        ManipulationExtractor(_space(), cnn_precision="fp16")  # type: ignore[arg-type]
