"""Frame storage behind one interface: a NumPy array in host memory, or a tensor on a torch device.

`FrameRing` (`pixelrl.buffers.frame_ring`) keeps its frames in one of these; the ring
decides which slots to write and gather, the storage only where the bytes live. Gathering
happens where the frames are, so a ring on a GPU sends no batch across the bus.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch as th

__all__ = ["FrameStorage", "NumpyFrameStorage", "TorchFrameStorage", "frame_storage"]

Array = np.ndarray[Any, Any]


class FrameStorage(Protocol):
    """Where a ring's frames live: `(frame_rows, n_envs, c, H, W)` uint8 on some device."""

    @property
    def data(self) -> Any:
        """The frames: a NumPy array or a tensor."""

    @property
    def nbytes(self) -> int:
        """Bytes of the frames."""

    def write(self, slot: int, env: int, frame: Array) -> None:
        """Store one `(c, H, W)` uint8 frame at `(slot, env)`."""

    def gather(self, slots: Array, envs: Array) -> th.Tensor:
        """Frames at broadcast `(slots, envs)` int64 index arrays, `(*shape, c, H, W)` uint8, where they live."""

    def host_rows(self, n_rows: int) -> Array:
        """A host (NumPy) copy of the first `n_rows` rows, `(n_rows, n_envs, c, H, W)`."""

    def load_rows(self, rows: Array) -> None:
        """Overwrite the first `len(rows)` rows with `rows` (host uint8)."""


class NumpyFrameStorage:
    """Frames in a NumPy array in host memory (`np.zeros`: pages are backed once written).

    Args:
        shape: `(frame_rows, n_envs, c, H, W)`.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self._frames: Array = np.zeros(shape, dtype=np.uint8)

    @property
    def data(self) -> Array:
        """The `(frame_rows, n_envs, c, H, W)` uint8 array."""
        return self._frames

    @property
    def nbytes(self) -> int:
        """Bytes of the frames."""
        return int(self._frames.nbytes)

    def write(self, slot: int, env: int, frame: Array) -> None:
        """Store one frame (see `FrameStorage`)."""
        self._frames[slot, env] = frame

    def gather(self, slots: Array, envs: Array) -> th.Tensor:
        """Gather frames (see `FrameStorage`); the tensor shares the gathered array's memory."""
        return th.from_numpy(self._frames[slots, envs])

    def host_rows(self, n_rows: int) -> Array:
        """Copy of the first rows (see `FrameStorage`)."""
        rows: Array = self._frames[:n_rows].copy()
        return rows

    def load_rows(self, rows: Array) -> None:
        """Restore the first rows (see `FrameStorage`)."""
        self._frames[: len(rows)] = rows


class TorchFrameStorage:
    """Frames in a uint8 tensor on a torch device, gathered there so no batch crosses to it.

    Args:
        shape: `(frame_rows, n_envs, c, H, W)`.
        device: Where the tensor lives.

    Raises:
        ValueError: On CUDA, if the frames do not fit in the device's free memory (checked
            before allocating).
    """

    def __init__(self, shape: tuple[int, ...], device: th.device) -> None:
        nbytes = int(np.prod(shape))
        if device.type == "cuda":
            free, _ = th.cuda.mem_get_info(device)
            if nbytes > free:
                raise ValueError(
                    f"The frame ring needs {nbytes / 1e9:.2f} GB on {device} but {free / 1e9:.2f} GB are free "
                    "there. Reduce buffer_size, or pass frames_device=None to keep the frames in host memory."
                )
        self._frames = th.zeros(shape, dtype=th.uint8, device=device)

    @property
    def data(self) -> th.Tensor:
        """The `(frame_rows, n_envs, c, H, W)` uint8 tensor."""
        return self._frames

    @property
    def nbytes(self) -> int:
        """Bytes of the frames."""
        return self._frames.numel()

    def write(self, slot: int, env: int, frame: Array) -> None:
        """Store one frame (see `FrameStorage`): copies only this frame to the device."""
        self._frames[slot, env] = th.from_numpy(np.ascontiguousarray(frame))

    def gather(self, slots: Array, envs: Array) -> th.Tensor:
        """Gather frames (see `FrameStorage`) with one index on the device."""
        flat = slots * self._frames.shape[1] + envs  # broadcast: row index into (frame_rows * n_envs)
        index = th.from_numpy(np.ascontiguousarray(flat)).to(self._frames.device)
        return self._frames.flatten(0, 1)[index.flatten()].reshape(*flat.shape, *self._frames.shape[2:])

    def host_rows(self, n_rows: int) -> Array:
        """Copy of the first rows in host memory (see `FrameStorage`)."""
        return self._frames[:n_rows].cpu().numpy()

    def load_rows(self, rows: Array) -> None:
        """Restore the first rows (see `FrameStorage`): copies only those to the device."""
        self._frames[: len(rows)].copy_(th.from_numpy(np.ascontiguousarray(rows)))


def frame_storage(shape: tuple[int, ...], device: th.device | None) -> FrameStorage:
    """Allocate frames of `shape` uint8: a `NumpyFrameStorage` for `device=None`, else a `TorchFrameStorage`.

    Args:
        shape: `(frame_rows, n_envs, c, H, W)`.
        device: `None` for host memory, else the torch device.

    Returns:
        The storage, all zeros.

    Raises:
        ValueError: If the frames do not fit in a CUDA device's free memory.

    Example:
        >>> storage = frame_storage((4, 2, 1, 1, 1), th.device("cpu"))
        >>> storage.write(1, 0, np.full((1, 1, 1), 9, np.uint8))
        >>> storage.gather(np.array([[1, 0]]), np.array([[0]])).flatten().tolist(), storage.host_rows(2).shape
        ([9, 0], (2, 2, 1, 1, 1))
    """
    if device is None:
        return NumpyFrameStorage(shape)
    return TorchFrameStorage(shape, device)
