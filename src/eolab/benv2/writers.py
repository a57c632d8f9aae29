"""Per-patch outputs: one ``.npz`` (the reference's array names) and one ``.json`` sidecar.

Files are written under a temporary name in the target folder and renamed, so a kill leaves
either no file or a complete one. When sources are deleted the data are also fsynced before the
rename (by the workers, in parallel) and the folders once per group commit before the batch is
journaled (see ``journal.py``); without deletion nothing is fsynced (a lost file is redone).
"""

from __future__ import annotations

import functools
import io
import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

TMP_SUFFIX = ".tmp"


def write_atomic(path: Path, data: bytes | memoryview, durable: bool = False) -> None:
    """Write ``data`` under a temporary name beside ``path``, then rename it onto ``path``.

    ``durable`` fsyncs the data before the rename (the folder is fsynced by the caller, once
    per group commit).
    """
    tmp = path.parent / f".{path.name}.{os.getpid()}{TMP_SUFFIX}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def encode_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """The bytes of an uncompressed ``.npz`` (a STORED zip of ``.npy`` members).

    Equivalent to ``np.savez`` (``np.load`` and ``zipfile`` read it; tested) but built in one
    pass: per-member ``.npy`` headers are cached by dtype and shape, and the only work per byte
    is one CRC-32 and one copy. ``np.savez`` costs several times more on 16 small members.
    """
    parts: list[bytes | memoryview] = []
    central: list[bytes] = []
    offset = 0
    for name, value in arrays.items():
        arr = np.asarray(value)
        if not arr.flags.c_contiguous:
            arr = arr.copy(order="C")
        header = _npy_header_bytes(arr.dtype.str, arr.shape)
        data = arr.reshape(-1).view(np.uint8).data if arr.size else b""
        crc = zlib.crc32(data, zlib.crc32(header))
        size = len(header) + len(data)
        fname = f"{name}.npy".encode()
        local = struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, crc, size, size, len(fname), 0
        )
        parts += [local, fname, header, data]
        central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                0,
                0,
                0x21,
                crc,
                size,
                size,
                len(fname),
                0,
                0,
                0,
                0,
                0o100644 << 16,
                offset,
            )  # fmt: skip
            + fname
        )
        offset += len(local) + len(fname) + size
    directory = b"".join(central)
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), len(directory), offset, 0
    )
    return b"".join([*parts, directory, end])


@functools.lru_cache(maxsize=64)
def _npy_header_bytes(descr: str, shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` magic and header (format 1.0) of a C-ordered array."""
    fh = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        fh, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return fh.getvalue()


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> tuple[int, int]:
    """Atomically write an uncompressed npz; returns (bytes, crc32) of what was written."""
    data = encode_npz(arrays)
    write_atomic(path, data)
    return len(data), zlib.crc32(data)


def write_sidecar(path: Path, obj: dict[str, Any], durable: bool = False) -> int:
    """Atomically write a JSON sidecar (one line: the C encoder); returns its size."""
    data = (json.dumps(obj, sort_keys=True) + "\n").encode()
    write_atomic(path, data, durable)
    return len(data)


def decode_npz(data: bytes) -> dict[str, np.ndarray]:
    """Arrays of an uncompressed npz held in memory, as zero-copy views of ``data``.

    Reads the zip directory with ``zipfile`` and each member's ``.npy`` header with numpy's
    format module (parsed headers are cached: every band has the same one); several times
    cheaper than ``np.load`` on 16 small members. Compressed members fall back to ``np.load``.
    """
    import zipfile

    out = {}
    view = memoryview(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
    if any(i.compress_type != zipfile.ZIP_STORED for i in infos):
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    for info in infos:
        pos = info.header_offset
        name_len, extra_len = struct.unpack_from("<HH", data, pos + 26)
        start = pos + 30 + name_len + extra_len
        major = data[start + 6]
        hlen_size = 2 if major == 1 else 4
        hlen = int.from_bytes(data[start + 8 : start + 8 + hlen_size], "little")
        header_end = start + 8 + hlen_size + hlen
        shape, fortran, dtype = _npy_header(bytes(data[start:header_end]))
        count = int(np.prod(shape)) if shape else 1
        arr = np.frombuffer(view, dtype=dtype, count=count, offset=header_end)
        out[info.filename.removesuffix(".npy")] = arr.reshape(shape, order="F" if fortran else "C")
    return out


@functools.lru_cache(maxsize=64)
def _npy_header(raw: bytes) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of a ``.npy`` header."""
    fh = io.BytesIO(raw)
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    return np.lib.format.read_array_header_2_0(fh)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an npz, loaded into memory."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def npz_index_crc(data: bytes) -> int:
    """CRC-32 of a zip's central directory and end record.

    The directory holds every member's CRC-32 and size, so this identifies the content without
    a second pass over the data; ``check_npz_file`` re-checks the members themselves.
    """
    directory = struct.unpack_from("<I", data, len(data) - 22 + 16)[0]
    return zlib.crc32(memoryview(data)[directory:])


def check_npz_file(path: Path, size: int, index_crc: int) -> str | None:
    """None when the npz on disk still has its size, index and member CRCs; else the reason."""
    import zipfile

    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"unreadable ({exc})"
    if len(data) != size:
        return f"size {len(data)} != {size}"
    if npz_index_crc(data) != index_crc:
        return "zip index changed"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            bad = zf.testzip()
    except zipfile.BadZipFile as exc:
        return f"not a zip ({exc})"
    return f"member {bad} fails its CRC-32" if bad else None


def remove_stale_tmp(root: Path) -> int:
    """Delete temporary files a killed run left under ``root``; returns how many."""
    n = 0
    if root.is_dir():
        for path in root.rglob(f".*{TMP_SUFFIX}"):
            if path.is_file():
                path.unlink(missing_ok=True)
                n += 1
    return n
