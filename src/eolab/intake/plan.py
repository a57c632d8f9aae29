"""From a CDSE STAC item and an S3 listing to the list of files to fetch and how to check each.

Pure functions: no I/O. The SAFE folder's S3 prefix comes from the item's ``enclosure`` link,
else from any asset (or alternate) href inside ``….SAFE/``. The file set is the S3 listing;
``manifest.safe`` must agree with it (every listed file present, same sizes).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from eolab.core.errors import InputError
from eolab.core.hashing import Checksum
from eolab.intake.verify import item_checksum, manifest_checksum

MANIFEST = "manifest.safe"


@dataclass(frozen=True)
class RemoteFile:
    """One object of a SAFE folder: path inside the folder, size, and the checksum to verify."""

    rel: str
    size: int
    checksum: Checksum | None


def _s3_hrefs(item: dict[str, Any]) -> list[str]:
    """Every s3:// href of an item: the enclosure link first, then assets and alternates."""
    hrefs = [
        link["href"]
        for link in item.get("links", [])
        if link.get("rel") == "enclosure" and str(link.get("href", "")).startswith("s3://")
    ]
    for asset in item.get("assets", {}).values():
        hrefs.append(asset.get("href", ""))
        hrefs += [alt.get("href", "") for alt in (asset.get("alternate") or {}).values()]
    return [h for h in hrefs if h.startswith("s3://")]


def safe_prefix(item: dict[str, Any]) -> tuple[str, str]:
    """(bucket, key prefix ending in ``.SAFE/``) of the item's SAFE folder on S3."""
    for href in _s3_hrefs(item):
        url = urlparse(href)
        path = url.path.lstrip("/")
        cut = path.find(".SAFE/") if not path.endswith(".SAFE") else len(path) - 5
        if cut < 0:
            continue
        prefix = path[: cut + len(".SAFE")] + "/"
        _check_key(prefix, item)
        return url.netloc, prefix
    raise InputError(f"STAC item {item.get('id')}: no s3:// href of a .SAFE folder (enclosure)")


def _check_key(prefix: str, item: dict[str, Any]) -> None:
    parts = prefix.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts) or posixpath.isabs(prefix):
        raise InputError(f"STAC item {item.get('id')}: unsafe S3 prefix {prefix!r}")


def asset_checksums(item: dict[str, Any], bucket: str, prefix: str) -> dict[str, Checksum]:
    """{path inside the SAFE: checksum} from assets whose (alternate) s3 href is in the folder."""
    root = f"s3://{bucket}/{prefix}"
    out: dict[str, Checksum] = {}
    for asset in item.get("assets", {}).values():
        checksum = item_checksum(asset.get("file:checksum"))
        if checksum is None:
            continue
        hrefs = [asset.get("href", "")]
        hrefs += [alt.get("href", "") for alt in (asset.get("alternate") or {}).values()]
        for href in hrefs:
            if href.startswith(root) and len(href) > len(root):
                out[href[len(root) :]] = checksum
    return out


def plan_files(
    listing: dict[str, int],
    manifest: list[Any] | None,
    item_sums: dict[str, Checksum],
) -> tuple[list[RemoteFile], list[str]]:
    """The files to have locally, each with its best checksum, and any inconsistencies.

    ``manifest`` holds entries with ``href``, ``size``, ``sha3_256`` (from
    `eolab.sentinel2.safe`); a file it lists that S3 lacks, or lists with another size, is a
    problem (the product cannot be verified). Checksum order: manifest.safe SHA3-256, then the
    item's ``file:checksum``.
    """
    problems = []
    by_href = {}
    for entry in manifest or []:
        href = posixpath.normpath(entry.href)
        by_href[href] = entry
        if href not in listing:
            problems.append(f"{href} is in manifest.safe but not on S3")
        elif listing[href] != entry.size:
            problems.append(
                f"{href}: manifest.safe says {entry.size} bytes, S3 has {listing[href]}"
            )
    files = []
    for rel, size in sorted(listing.items()):
        entry = by_href.get(rel)
        checksum = manifest_checksum(entry.sha3_256) if entry else None
        files.append(RemoteFile(rel, size, checksum or item_sums.get(rel)))
    return files, problems
