"""One writer per run: an OS file lock on the run's lock file, released by the kernel however the process ends."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from pixelrl.train.config import ConfigError

__all__ = ["run_lock"]


@contextlib.contextmanager
def run_lock(lock_file: Path, run_name: str) -> Iterator[None]:
    """Hold an exclusive, non-blocking ``flock`` on ``lock_file`` for the duration of the block.

    The kernel releases the lock when the process exits, also after SIGKILL, so a killed run
    never leaves its folder locked. The file itself is kept and never written (unlinking a lock
    file while another process opens it would let two writers in; leaving it untouched keeps a
    refused run from changing anything).

    Args:
        lock_file: The run's lock file (its folder is created).
        run_name: For the message.

    Yields:
        Nothing; the lock is held inside the block.

    Raises:
        ConfigError: If another process holds the lock (exit 2: nothing was changed).
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"Run {run_name} is being written by another process (it holds {lock_file}). Nothing was changed. "
                "Wait for it to finish, stop it, or give this run another --tag or --out-dir."
            ) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
