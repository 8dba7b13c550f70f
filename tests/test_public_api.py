from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = [
    "pixelrl",
    "pixelrl.wrappers",
    "pixelrl.encoders",
    "pixelrl.buffers",
    "pixelrl.policies",
    "pixelrl.algos",
    "pixelrl.diagnostics",
    "pixelrl.envs",
    "pixelrl.host_memory",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_name_in_all_is_importable_and_documented(name):
    module = importlib.import_module(name)
    assert module.__doc__, f"{name} has no module docstring"
    for attr in module.__all__:
        obj = getattr(module, attr)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert getattr(obj, "__doc__", None), f"{name}.{attr} has no docstring"


def test_top_level_exports_the_chapter_components():
    import pixelrl

    chapter = {
        "render_and_resize",
        "PixelObservationWrapper",
        "PixelReplayBuffer",
        "NatureCNN",
        "ManipulationCNN",
        "SpatialSoftmax",
        "ManipulationExtractor",
        "RandomShiftAug",
        "DrQDictReplayBuffer",
        "HerDrQDictReplayBuffer",
        "CriticEncoderCritic",
        "CriticEncoderActor",
        "DrQv2SACPolicy",
    }
    assert chapter <= set(pixelrl.__all__)
