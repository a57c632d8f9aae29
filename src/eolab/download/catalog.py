"""Walk a static STAC catalog (local folder, http(s) or s3://) and yield its items, streaming.

Catalog and collection documents are read with ijson, so a collection listing a million item
links never becomes a million Python objects; items are read one at a time (in parallel over a
bounded window for remote catalogs). Only ``child`` and ``item`` links are followed.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

import ijson

from eolab.core.errors import InputError
from eolab.core.redact import redact_url
from eolab.download.fetch import bounded_map, local_path
from eolab.download.filters import item_interval

REMOTE_SCHEMES = ("http", "https", "s3")


@dataclass(frozen=True)
class AssetRecord:
    """One asset of an item: its key, absolute href, and the STAC type, size, checksum and roles."""

    key: str
    href: str
    media_type: str | None = None
    size: int | None = None
    checksum: str | None = None
    roles: tuple[str, ...] = ()


@dataclass
class ItemRecord:
    """What the asset database keeps of one STAC item."""

    collection: str
    id: str
    href: str
    interval: tuple[float, float] | None
    bbox: tuple[float, float, float, float] | None
    geometry: str | None
    assets: list[AssetRecord] = field(default_factory=list)


def is_remote(href: str) -> bool:
    """Whether ``href`` is fetched over the network (http, https or s3), not read from disk."""
    return urllib.parse.urlsplit(href).scheme in REMOTE_SCHEMES


def resolve_href(base: str, href: str) -> str:
    """``href`` made absolute against the document at ``base`` (path or URL)."""
    parts = urllib.parse.urlsplit(href)
    if parts.scheme in REMOTE_SCHEMES or parts.scheme == "file":
        return href
    if len(parts.scheme) == 1:  # a Windows drive letter, not a scheme
        return href
    base_parts = urllib.parse.urlsplit(base)
    if base_parts.scheme in ("http", "https"):
        return urllib.parse.urljoin(base, href)
    if base_parts.scheme in ("s3", "file"):
        path = posixpath.normpath(posixpath.join(posixpath.dirname(base_parts.path), href))
        return urllib.parse.urlunsplit((base_parts.scheme, base_parts.netloc, path, "", ""))
    if os.path.isabs(href):
        return href
    return os.path.normpath(os.path.join(os.path.dirname(local_path(base)), href))


def _bbox_of(item: dict[str, Any]) -> tuple[float, float, float, float] | None:
    bbox = item.get("bbox")
    if isinstance(bbox, list) and len(bbox) in (4, 6):
        if len(bbox) == 6:
            return (float(bbox[0]), float(bbox[1]), float(bbox[3]), float(bbox[4]))
        return tuple(float(v) for v in bbox)  # type: ignore[return-value]
    geometry = item.get("geometry")
    if geometry:
        import shapely.geometry

        return tuple(shapely.geometry.shape(geometry).bounds)  # type: ignore[return-value]
    return None


def item_record(item: dict[str, Any], href: str, parent_collection: str | None) -> ItemRecord:
    """Reduce an item document to the fields the downloader needs (hrefs made absolute)."""
    if item.get("type") != "Feature" or "id" not in item:
        raise InputError(f"{redact_url(href)}: not a STAC item (type={item.get('type')!r})")
    collection = item.get("collection") or parent_collection or "_items"
    try:
        interval = item_interval(item.get("properties") or {})
    except InputError as exc:
        raise InputError(f"{redact_url(href)}: {exc}") from exc
    geometry = item.get("geometry")
    assets = []
    for key, asset in (item.get("assets") or {}).items():
        if not isinstance(asset, dict) or not asset.get("href"):
            continue
        size = asset.get("file:size")
        assets.append(
            AssetRecord(
                key=str(key),
                href=resolve_href(href, asset["href"]),
                media_type=asset.get("type"),
                size=int(size) if isinstance(size, int | float) else None,
                checksum=asset.get("file:checksum"),
                roles=tuple(asset.get("roles") or ()),
            )
        )
    return ItemRecord(
        collection=str(collection),
        id=str(item["id"]),
        href=href,
        interval=interval,
        bbox=_bbox_of(item),
        geometry=json.dumps(geometry, separators=(",", ":")) if geometry else None,
        assets=assets,
    )


STAC_TYPES = frozenset({"Catalog", "Collection", "Feature"})


class CatalogWalker:
    """Iterate the items of a static catalog rooted at ``root`` (a path or URL)."""

    def __init__(
        self,
        root: str,
        read_bytes: Callable[[str], bytes] | None = None,
        workers: int = 16,
    ):
        self.root = root
        self.read_bytes = read_bytes
        self.workers = workers
        self.documents = 0

    def _open(self, href: str) -> IO[bytes]:
        if is_remote(href):
            if self.read_bytes is None:
                raise InputError(f"{redact_url(href)}: remote catalog but no fetcher given")
            return io.BytesIO(self.read_bytes(href))
        try:
            return open(local_path(href), "rb")
        except OSError as exc:
            raise InputError(f"cannot open catalog document {href}: {exc.strerror}") from exc

    def header(self, href: str) -> tuple[str | None, str | None]:
        """(type, id) of a catalog, collection or item document, streamed."""
        with self._open(href) as fh:
            return _header(fh, href)

    def _item_hrefs(self) -> Iterator[tuple[str, str | None]]:
        """(item href, parent collection id) in catalog order, depth first."""
        stack: list[tuple[str, str | None]] = [(self.root, None)]
        seen: set[str] = set()
        while stack:
            href, parent_collection = stack.pop()
            if href in seen:
                continue
            seen.add(href)
            self.documents += 1
            with self._open(href) as fh:
                kind, doc_id = _header(fh, href)
                if kind not in STAC_TYPES:
                    raise InputError(
                        f"{redact_url(href)}: not a STAC catalog, collection or item "
                        f"(type={kind!r}; give the catalog.json or collection.json of a STAC "
                        "dataset)"
                    )
                if kind == "Feature":
                    yield href, parent_collection
                    continue
                collection = doc_id if kind == "Collection" else parent_collection
                fh.seek(0)
                children = []
                for rel, target in _links(fh, href):
                    if rel == "item":
                        yield target, collection
                    elif rel == "child":
                        children.append((target, collection))
            stack.extend(reversed(children))

    def _load_item(self, task: tuple[str, str | None]) -> ItemRecord:
        href, collection = task
        with self._open(href) as fh:
            try:
                doc = json.load(fh)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"{redact_url(href)}: invalid JSON: {exc}") from exc
        return item_record(doc, href, collection)

    def items(self) -> Iterator[ItemRecord]:
        """Every item, each read once; remote items in parallel over a bounded window."""
        if not is_remote(self.root) or self.workers <= 1:
            for task in self._item_hrefs():
                yield self._load_item(task)
            return
        with ThreadPoolExecutor(self.workers, thread_name_prefix="stac-walk") as pool:
            for _task, fut in bounded_map(
                pool, self._load_item, self._item_hrefs(), self.workers * 4
            ):
                yield fut.result()


def _header(fh: IO[bytes], href: str) -> tuple[str | None, str | None]:
    """Top-level ``type`` and ``id`` of a JSON document, without loading it."""
    found: dict[str, str] = {}
    try:
        for prefix, event, value in ijson.parse(fh):
            if prefix in ("type", "id") and event == "string":
                found[prefix] = value
                if len(found) == 2:
                    break
    except ijson.JSONError as exc:
        raise InputError(f"{redact_url(href)}: invalid JSON: {exc}") from exc
    return found.get("type"), found.get("id")


def _links(fh: IO[bytes], href: str) -> Iterator[tuple[str, str]]:
    """(rel, absolute href) of the document's top-level links, streamed."""
    try:
        for link in ijson.items(fh, "links.item"):
            if isinstance(link, dict) and link.get("href"):
                yield str(link.get("rel", "")), resolve_href(href, link["href"])
    except ijson.JSONError as exc:
        raise InputError(f"{redact_url(href)}: invalid JSON: {exc}") from exc
