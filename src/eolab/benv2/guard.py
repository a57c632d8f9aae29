"""Disk guard: pause when free space runs low, give up cleanly after a bounded wait.

The free-space function and the sleep are injectable, so tests drive the guard without filling
a disk or waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from eolab.core.disk import free_bytes
from eolab.core.errors import DiskSpaceError

GB = 1e9


def free_gb_on(path: Path) -> float:
    """Free space (GB, 10^9 bytes) on the filesystem holding ``path``."""
    return free_bytes(path) / GB


class DiskGuard:
    """Check free space before each patch; wait (bounded) below ``min_free_gb``.

    ``on_low`` is called before each wait so the caller can free space it controls (finish
    pending source deletions); ``notify`` receives the human-readable pause/resume messages.
    """

    def __init__(
        self,
        path: Path,
        *,
        min_free_gb: float = 0.0,
        max_wait_s: float = 600.0,
        poll_s: float = 10.0,
        free_gb: Callable[[Path], float] = free_gb_on,
        sleep: Callable[[float], None] = time.sleep,
        notify: Callable[[str], None] = print,
    ):
        self.path = Path(path)
        self.min_free_gb = float(min_free_gb)
        self.max_wait_s = float(max_wait_s)
        self.poll_s = max(float(poll_s), 1e-3)
        self._free_gb = free_gb
        self._sleep = sleep
        self._notify = notify
        self.pauses = 0
        self.waited_s = 0.0

    def free(self) -> float:
        return float(self._free_gb(self.path))

    def ensure_space(self, on_low: Callable[[], None] | None = None) -> float:
        """Return the free GB once it is at least ``min_free_gb``; raise DiskSpaceError after
        ``max_wait_s`` of waiting."""
        free = self.free()
        if free >= self.min_free_gb:
            return free
        if on_low is not None:
            on_low()
            free = self.free()
            if free >= self.min_free_gb:
                return free
        self.pauses += 1
        self._notify(
            f"disk guard: {free:.2f} GB free on {self.path} < --min_free_gb {self.min_free_gb:g};"
            f" pausing (checking every {self.poll_s:g} s, giving up after {self.max_wait_s:g} s)"
        )
        waited = 0.0
        while waited < self.max_wait_s:
            step = min(self.poll_s, self.max_wait_s - waited)
            self._sleep(step)
            waited += step
            self.waited_s += step
            free = self.free()
            if free >= self.min_free_gb:
                self._notify(f"disk guard: {free:.2f} GB free again; resuming after {waited:g} s")
                return free
        raise DiskSpaceError(
            f"{self.path}: free space stayed below --min_free_gb {self.min_free_gb:g} GB "
            f"({free:.2f} GB) for {waited:g} s; stopped cleanly, rerun to resume"
        )
