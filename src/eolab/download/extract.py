"""Safe extraction of catalog archives (.tar, .tar.gz/.tgz, .tar.bz2, .tar.xz, .zip).

Every member is checked before it is written: no absolute paths, no ``..``, no links that leave
the folder, no device files or FIFOs. One bad member refuses the whole archive and nothing is
left behind (extraction goes to a temporary folder renamed into place at the end). macOS junk
(``._*`` AppleDouble files, ``.DS_Store``, ``__MACOSX/``) is skipped; pax headers (xattrs) are
read by tarfile and ignored. tarfile's ``data`` filter runs as a second line of defence.
"""

from __future__ import annotations

import posixpath
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from eolab.core.atomic import atomic_path
from eolab.core.errors import InputError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")
JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
JUNK_DIRS = frozenset({"__MACOSX"})


class UnsafeArchiveError(InputError):
    """An archive member would escape the destination or is a special file."""


@dataclass(frozen=True)
class ExtractStats:
    """What an extraction wrote: files, folders, links, skipped junk members and bytes of files."""

    files: int
    dirs: int
    links: int
    skipped_junk: int
    bytes: int


def is_archive_name(name: str) -> bool:
    """Whether a file name has one of the supported archive suffixes."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def archive_stem(name: str) -> str:
    """``su_sar.tar.gz`` -> ``su_sar``."""
    lower = name.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_junk(name: str) -> bool:
    """macOS/Windows metadata files that are never part of a dataset."""
    parts = PurePosixPath(name).parts
    if any(p in JUNK_DIRS for p in parts):
        return True
    base = parts[-1] if parts else ""
    return base in JUNK_NAMES or base.startswith("._")


def check_member_name(archive: Path, name: str) -> str:
    """The normalised relative name of a member, or `UnsafeArchiveError`."""
    if "\x00" in name:
        raise UnsafeArchiveError(f"{archive}: member {name!r} has a NUL byte in its name")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} climbs out with '..'")
    return posixpath.normpath("/".join(parts)) if parts else "."


def check_link_target(archive: Path, name: str, target: str, hard: bool) -> None:
    """A link must stay inside the extraction folder (targets are resolved lexically)."""
    if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: link {name!r} points at the absolute path {target!r}")
    base = "" if hard else posixpath.dirname(name)
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchiveError(f"{archive}: link {name!r} -> {target!r} leaves the folder")


def check_tar_member(archive: Path, member: tarfile.TarInfo) -> str:
    """Refuse devices, FIFOs, absolute or climbing names and escaping links."""
    name = check_member_name(archive, member.name)
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a device or FIFO")
    if member.issym() or member.islnk():
        check_link_target(archive, name, member.linkname, hard=member.islnk())
    elif not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"{archive}: member {member.name!r} has unsupported type")
    return name


def _symlink_escapes(root: Path, path: Path) -> bool:
    """Whether ``path`` resolves (through symlinks already extracted) outside ``root``."""
    try:
        path.resolve().relative_to(root.resolve())
        return False
    except ValueError:
        return True


def _extract_tar(archive: Path, dest: Path) -> ExtractStats:
    files = dirs = links = junk = size = 0
    try:
        # streaming mode: one pass over the compressed file, members in archive order
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                if is_junk(member.name):
                    junk += 1
                    continue
                name = check_tar_member(archive, member)
                if name == ".":
                    continue
                target = dest / name
                if _symlink_escapes(dest, target.parent):
                    raise UnsafeArchiveError(
                        f"{archive}: member {member.name!r} would be written through a link "
                        "that leaves the folder"
                    )
                member.name = name
                tar.extract(member, dest, filter="data")
                if member.isdir():
                    dirs += 1
                elif member.isfile():
                    files += 1
                    size += member.size
                else:
                    links += 1
    except tarfile.FilterError as exc:
        raise UnsafeArchiveError(f"{archive}: refused by the tar data filter: {exc}") from exc
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, UnsafeArchiveError):
            raise
        raise InputError(f"{archive}: cannot extract: {exc}") from exc
    return ExtractStats(files, dirs, links, junk, size)


def _extract_zip(archive: Path, dest: Path) -> ExtractStats:
    files = dirs = junk = size = 0
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if is_junk(info.filename):
                    junk += 1
                    continue
                name = check_member_name(archive, info.filename)
                mode = (info.external_attr >> 16) & 0o170000
                if mode and mode not in (0o100000, 0o040000):
                    # symlinks (0o120000), devices and FIFOs stored by Unix zip tools
                    raise UnsafeArchiveError(
                        f"{archive}: member {info.filename!r} is a link or special file"
                    )
                target = dest / name
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    dirs += 1
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                files += 1
                size += info.file_size
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{archive}: cannot extract: {exc}") from exc
    return ExtractStats(files, dirs, 0, junk, size)


def extract_archive(archive: Path, dest: Path) -> ExtractStats:
    """Extract ``archive`` into ``dest`` (replaced atomically); refuse unsafe archives whole."""
    archive = Path(archive)
    if not archive.is_file():
        raise InputError(f"archive not found: {archive}")
    with atomic_path(dest) as tmp:
        tmp.mkdir()
        if archive.name.lower().endswith(".zip"):
            stats = _extract_zip(archive, tmp)
        else:
            stats = _extract_tar(archive, tmp)
    return stats
