"""SampleAugmentation and the augmentation options every pixel buffer accepts (both spellings)."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.type_aliases import DictReplayBufferSamples

from pixelrl.buffers import (
    CompactHerReplayBuffer,
    DrQDictReplayBuffer,
    HerDrQDictReplayBuffer,
    RandomShiftAug,
    SampleAugmentation,
)
from tests.buffers.test_compact import assert_same_batch, coded_vec_env, drive

BUFFERS = [DrQDictReplayBuffer, HerDrQDictReplayBuffer, CompactHerReplayBuffer]


class Invert(th.nn.Module):
    def forward(self, x: th.Tensor) -> th.Tensor:
        return 255 - x


class Counter:
    """An augmentation that records each call and adds its call number, so calls can be told apart."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: th.Tensor) -> th.Tensor:
        self.calls += 1
        return x + self.calls


def make(cls, vec_env, **kwargs):
    her = {} if cls is DrQDictReplayBuffer else {"env": vec_env}
    return cls(60, vec_env.observation_space, vec_env.action_space, n_envs=vec_env.num_envs, **her, **kwargs)


def filled(cls, **kwargs):
    vec_env = coded_vec_env(2, [[3, 4]], frame_stack=2)
    buffer = make(cls, vec_env, **kwargs)
    drive(vec_env, [buffer], 12)
    return buffer


def seeded(buffer, batch_size: int = 16):
    np.random.seed(0)
    return buffer.sample(batch_size)


def test_sample_augmentation_augments_obs_and_next_obs_images_by_separate_calls_only():
    pixels = th.zeros(2, 3, 4, 4, dtype=th.uint8)
    obs = {"pixels": pixels, "desired_goal": th.ones(2, 3)}
    next_obs = {"pixels": pixels, "desired_goal": th.ones(2, 3)}
    batch = DictReplayBufferSamples(obs, th.ones(2, 1), next_obs, th.zeros(2, 1), th.full((2, 1), -1.0))
    counter = Counter()
    out = SampleAugmentation(["pixels"], counter)(batch)
    assert counter.calls == 2
    assert (out.observations["pixels"] == 1).all()
    assert (out.next_observations["pixels"] == 2).all()
    for key in ("desired_goal",):
        assert out.observations[key] is obs[key]
        assert out.next_observations[key] is next_obs[key]
    assert out.actions is batch.actions
    assert out.rewards is batch.rewards
    assert out.dones is batch.dones
    assert (batch.observations["pixels"] == 0).all()  # the input batch is not modified
    assert SampleAugmentation(["pixels"], None)(batch) is batch


@pytest.mark.parametrize("cls", BUFFERS)
def test_every_pixel_buffer_accepts_aug_fn_and_image_key_as_the_same_options(cls):
    plain = filled(cls, pad=0)
    by_name = filled(cls, augmentation=Invert(), image_keys=["pixels"])
    other_spelling = filled(cls, aug_fn=Invert(), image_key="pixels")
    assert isinstance(other_spelling.sample_augmentation, SampleAugmentation)
    assert isinstance(other_spelling.augmentation, Invert)
    assert other_spelling.image_keys == by_name.image_keys == ("pixels",)
    reference, a, b = seeded(plain), seeded(by_name), seeded(other_spelling)
    assert_same_batch(a, b)
    assert th.equal(a.observations["pixels"], 255 - reference.observations["pixels"])
    assert th.equal(a.next_observations["pixels"], 255 - reference.next_observations["pixels"])
    assert th.equal(a.observations["desired_goal"], reference.observations["desired_goal"])


@pytest.mark.parametrize("cls", BUFFERS)
def test_giving_both_spellings_of_an_option_is_an_error(cls):
    vec_env = coded_vec_env(1, [[3]], frame_stack=2)
    with pytest.raises(TypeError, match="both augmentation= and aug_fn="):
        make(cls, vec_env, augmentation=Invert(), aug_fn=Invert())
    with pytest.raises(TypeError, match=r"both image_keys=\['pixels'\] and image_key='pixels'"):
        make(cls, vec_env, image_keys=["pixels"], image_key="pixels")
    with pytest.raises(TypeError, match=r"image_key takes one key \(a str\)"):
        make(cls, vec_env, image_key=["pixels"])
    with pytest.raises(ValueError, match=r"image_keys \['rgb'\] are not in the observation space"):
        make(cls, vec_env, image_key="rgb")


def test_the_book_spelling_of_the_drq_her_buffer_works():
    vec_env = coded_vec_env(1, [[3]], frame_stack=2)
    buffer = HerDrQDictReplayBuffer(
        60, vec_env.observation_space, vec_env.action_space, vec_env, aug_fn=RandomShiftAug(pad=4), image_key="pixels"
    )
    assert buffer.augmentation.pad == 4
    assert buffer.image_keys == ("pixels",)


def test_pad_defaults_differ_on_purpose():
    vec_env = coded_vec_env(1, [[3]], frame_stack=2)
    # The compact buffer is a drop-in for SB3's HerReplayBuffer: no augmentation unless asked.
    assert make(CompactHerReplayBuffer, vec_env).augmentation is None
    for cls in (DrQDictReplayBuffer, HerDrQDictReplayBuffer):
        augmentation = make(cls, vec_env).augmentation
        assert isinstance(augmentation, RandomShiftAug)
        assert augmentation.pad == 4
