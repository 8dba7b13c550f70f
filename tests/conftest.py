from __future__ import annotations

import pytest
import torch

# Tests use tiny images and batches, for which one intra-op thread is 2-4x faster than two on
# this 2-core class of machine (thread hand-off costs more than the convolutions).
torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
