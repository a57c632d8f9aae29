"""Checksums: file digests, STAC ``file:checksum`` multihashes, ``Content-MD5`` headers, S3 ETags.

The one place eolab hashes a whole file (`file_digest`, `file_hexdigest`, `file_multihash`) and
decodes an expected digest (`parse_multihash`, `parse_content_md5`, `parse_s3_etag`).

A multihash is ``<varint algorithm code><varint digest length><digest>`` in lowercase hex. Real
catalogs get the length byte wrong (e.g. ``d50120`` before a 16-byte md5), so the algorithm code
decides the digest size and the length byte is skipped, not trusted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path

#: Bytes read at once when hashing a file.
CHUNK = 1 << 22

# multihash code -> (hashlib name, digest size in bytes)
MULTIHASH_CODES: dict[int, tuple[str, int]] = {
    0x11: ("sha1", 20),
    0x12: ("sha256", 32),
    0x13: ("sha512", 64),
    0x14: ("sha3_512", 64),
    0x16: ("sha3_256", 32),
    0xD5: ("md5", 16),
}


class ChecksumFormatError(ValueError):
    """A checksum string that cannot be decoded (bad hex, unknown algorithm, wrong size)."""


@dataclass(frozen=True)
class Checksum:
    """An expected digest: hashlib algorithm name, raw digest and where it came from."""

    algorithm: str
    digest: bytes
    source: str

    @property
    def hexdigest(self) -> str:
        return self.digest.hex()

    def describe(self) -> str:
        return f"{self.source} {self.algorithm} {self.hexdigest}"


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode an unsigned LEB128 varint at ``pos``; return (value, next position)."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ChecksumFormatError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ChecksumFormatError("varint too long")


def parse_multihash(text: str) -> Checksum:
    """Decode a hex multihash (``1220…`` sha2-256, ``1620…`` sha3-256, ``d501…`` md5)."""
    try:
        data = bytes.fromhex(text.strip())
    except ValueError as exc:
        raise ChecksumFormatError(f"not hexadecimal: {text!r}") from exc
    code, pos = _read_varint(data, 0)
    if code not in MULTIHASH_CODES:
        raise ChecksumFormatError(f"unsupported multihash algorithm 0x{code:x} in {text!r}")
    algorithm, size = MULTIHASH_CODES[code]
    _declared_length, pos = _read_varint(data, pos)  # not trusted: real catalogs get it wrong
    digest = data[pos:]
    if len(digest) != size:
        raise ChecksumFormatError(
            f"{algorithm} digest of {len(digest)} bytes in {text!r}, expected {size}"
        )
    return Checksum(algorithm, digest, "file:checksum")


def multihash_hex(algorithm: str, digest: bytes) -> str:
    """Encode a digest as a hex multihash (the inverse of `parse_multihash`)."""
    codes = {name: code for code, (name, _size) in MULTIHASH_CODES.items()}
    code = codes[algorithm]
    varint = bytearray()
    while True:
        byte = code & 0x7F
        code >>= 7
        varint.append(byte | (0x80 if code else 0))
        if not code:
            break
    return (bytes(varint) + bytes([len(digest)]) + digest).hex()


def parse_content_md5(header: str) -> Checksum:
    """Decode a ``Content-MD5`` header (base64 of the 16-byte md5 digest)."""
    try:
        digest = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ChecksumFormatError(f"Content-MD5 is not base64: {header!r}") from exc
    if len(digest) != 16:
        raise ChecksumFormatError(f"Content-MD5 of {len(digest)} bytes: {header!r}")
    return Checksum("md5", digest, "Content-MD5")


def parse_s3_etag(etag: str) -> Checksum | None:
    """The md5 of an S3 object from its ETag, or None for multipart ETags (``…-N``)."""
    value = etag.strip().strip('"')
    if len(value) != 32 or "-" in value:
        return None
    try:
        return Checksum("md5", bytes.fromhex(value), "S3 ETag")
    except ValueError:
        return None


class MultiHasher:
    """Feed bytes once to several hashlib algorithms."""

    def __init__(self, algorithms: set[str] | frozenset[str]):
        self.algorithms = frozenset(algorithms)
        self.reset()

    def reset(self) -> None:
        self._hashes = {name: hashlib.new(name) for name in self.algorithms}

    def update(self, data: bytes | memoryview) -> None:
        for h in self._hashes.values():
            h.update(data)

    def digest(self, algorithm: str) -> bytes:
        return self._hashes[algorithm].digest()

    def hexdigest(self, algorithm: str) -> str:
        return self._hashes[algorithm].hexdigest()


def file_digest(path: str | Path, algorithm: str, chunk: int = CHUNK) -> bytes:
    """Raw ``algorithm`` digest (a hashlib name) of a whole file, read ``chunk`` bytes at a time."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.digest()


def file_hexdigest(path: str | Path, algorithm: str, chunk: int = CHUNK) -> str:
    """Lowercase hex ``algorithm`` digest of a whole file."""
    return file_digest(path, algorithm, chunk).hex()


def file_multihash(path: str | Path, algorithm: str = "sha256") -> str:
    """STAC ``file:checksum`` of a file: hex multihash (``1220…`` for sha2-256)."""
    return multihash_hex(algorithm, file_digest(path, algorithm))
