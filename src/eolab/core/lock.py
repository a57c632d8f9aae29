"""One writer per output: an exclusive lock file that names its holder and dies with it.

``fcntl.flock`` is released by the kernel when the process dies (kill -9 included), so a lock
file left behind by a dead writer is simply taken over (the empty file stays between runs). The
file records ``pid`` and ``host`` so the second writer's error says who holds it. Where the
filesystem refuses ``flock`` (some network mounts), the lock falls back to an exclusive create,
and a lock of a dead process on this host is detected as stale and removed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from eolab.core.errors import LockedError


def lock_path_for(target: Path) -> Path:
    """The lock file of ``target`` (a store folder, a zip, an output folder): beside it."""
    target = Path(target)
    return target.parent / f".{target.name}.lock"


def _holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _locked_error(target: Path, lock: Path) -> LockedError:
    info = _holder(lock)
    who = f"pid {info.get('pid', '?')} on host {info.get('host', '?')}"
    return LockedError(
        f"{target}: is being written by {who}; wait for it to finish, or remove the stale lock "
        f"{lock} if that process is gone"
    )


def _alive_here(info: dict) -> bool:
    if info.get("host") != socket.gethostname():
        return True  # cannot tell for another host: assume alive
    try:
        os.kill(int(info.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


@contextlib.contextmanager
def exclusive(target: Path) -> Iterator[Path]:
    """Hold the exclusive write lock of ``target`` for the ``with`` block.

    A second writer gets a `LockedError` at once (no waiting: on a cluster a retried job should
    fail clearly rather than queue behind a live one).
    """
    import fcntl

    target = Path(target)
    lock = lock_path_for(target)
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    fh = open(lock, "a+")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _locked_error(target, lock) from None
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            fh.close()
            with _exclusive_create(target, lock, me):
                yield lock
            return
        fh.seek(0)
        fh.truncate()
        fh.write(me)
        fh.flush()
        try:
            yield lock
        finally:
            # Emptied, not removed: unlinking a flock'ed file lets two later writers lock two
            # different inodes of the same name.
            with contextlib.suppress(OSError):
                fh.truncate(0)
    finally:
        fh.close()


@contextlib.contextmanager
def _exclusive_create(target: Path, lock: Path, me: str) -> Iterator[None]:
    """Fallback without flock: O_EXCL create; a dead same-host holder's lock is removed."""
    with contextlib.suppress(OSError):
        if lock.stat().st_size == 0 or not _alive_here(_holder(lock)):
            lock.unlink()
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise _locked_error(target, lock) from None
    with os.fdopen(fd, "w") as out:
        out.write(me)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()
