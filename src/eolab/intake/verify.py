"""Which checksum proves a SAFE file complete, and checking a local copy against it.

The checksum comes from ``manifest.safe`` (SHA3-256, computed by ESA) first, then from the STAC
item's ``file:checksum`` multihash; a file listed by neither is checked by size alone. Multihash
decoding and file hashing live in `eolab.core.hashing` (shared with the STAC dataset downloader).
"""

from __future__ import annotations

from pathlib import Path

from eolab.core.hashing import Checksum, ChecksumFormatError, file_digest, parse_multihash


def item_checksum(text: str | None) -> Checksum | None:
    """A usable checksum from an item's ``file:checksum``, or None.

    CDSE writes 32-byte digests under the MD5 code for some metadata files: such a value cannot
    be checked, so it is ignored (manifest.safe's SHA3-256 covers those files anyway).
    """
    if not text:
        return None
    try:
        return parse_multihash(text)
    except ChecksumFormatError:
        return None


def manifest_checksum(hexdigest: str | None) -> Checksum | None:
    """A SHA3-256 checksum as written in manifest.safe (hex, mixed case), or None if absent."""
    if not hexdigest:
        return None
    return Checksum("sha3_256", bytes.fromhex(hexdigest.strip()), "manifest.safe")


def local_file_ok(path: Path, size: int, checksum: Checksum | None) -> bool:
    """True when ``path`` has ``size`` bytes and, where one is known, the expected checksum."""
    try:
        if path.stat().st_size != size:
            return False
    except FileNotFoundError:
        return False
    return checksum is None or file_digest(path, checksum.algorithm) == checksum.digest
