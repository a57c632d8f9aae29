"""The asset database: every item and asset of a catalog, and the state of every file.

One sqlite file per dataset (``<out>/<dataset>/_assets.sqlite``, WAL journal), filled in one
streaming pass over the catalog with batched inserts, and kept across runs: when the catalog's
fingerprint is unchanged a rerun skips the walk and only selects and downloads what is missing.
Filters become SQL (an R*Tree for boxes, an index for collections); ``intersects`` is checked
with shapely on the bbox candidates only.

Destinations follow ``<collection>/<item>/<asset_key><ext>``; assets shared by several items of a
collection (or named documentation/readme/*_split) go once to ``<collection>/_common/``.
"""

from __future__ import annotations

import hashlib
import math
import posixpath
import re
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eolab.download.catalog import ItemRecord
from eolab.download.filters import Filters, bbox_parts

SCHEMA_VERSION = "1"
BIG = 1e300  # stands for an open end of a time interval
COMMON_DIR = "_common"
COMMON_KEYS = frozenset({"documentation", "readme", "license"})
COMPRESSION_SUFFIXES = frozenset({".gz", ".bz2", ".xz", ".zst", ".lz4"})
MEDIA_EXTENSIONS = {
    "image/tiff": ".tif",
    "image/jp2": ".jp2",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "application/geo+json": ".geojson",
    "application/json": ".json",
    "application/pdf": ".pdf",
    "text/csv": ".csv",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/markdown": ".md",
    "application/zip": ".zip",
    "application/x-parquet": ".parquet",
    "application/vnd.apache.parquet": ".parquet",
    "application/x-netcdf": ".nc",
    "application/x-hdf5": ".h5",
    "application/xml": ".xml",
    "application/vnd+zarr": ".zarr",
}
_UNSAFE = re.compile(r"[\x00-\x1f/\\:*?\"<>|]")
_EXT_OK = re.compile(r"^(\.[A-Za-z0-9_-]{1,10}){1,2}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS items (
    pk INTEGER PRIMARY KEY, collection TEXT NOT NULL, id TEXT NOT NULL, href TEXT,
    dt_start REAL, dt_end REAL, geometry TEXT, UNIQUE (collection, id));
CREATE INDEX IF NOT EXISTS items_dt ON items (dt_start, dt_end);
CREATE TABLE IF NOT EXISTS item_boxes (
    id INTEGER PRIMARY KEY, item_pk INTEGER NOT NULL,
    minx REAL NOT NULL, miny REAL NOT NULL, maxx REAL NOT NULL, maxy REAL NOT NULL);
CREATE INDEX IF NOT EXISTS item_boxes_item ON item_boxes (item_pk);
CREATE VIRTUAL TABLE IF NOT EXISTS items_rtree USING rtree (id, minx, maxx, miny, maxy);
CREATE TABLE IF NOT EXISTS assets (
    item_pk INTEGER NOT NULL, key TEXT NOT NULL, href TEXT NOT NULL, media_type TEXT,
    size INTEGER, checksum TEXT, dest TEXT NOT NULL, PRIMARY KEY (item_pk, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS assets_href ON assets (href);
CREATE INDEX IF NOT EXISTS assets_dest ON assets (dest);
CREATE TABLE IF NOT EXISTS files (
    pk INTEGER PRIMARY KEY, dest TEXT NOT NULL UNIQUE, href TEXT NOT NULL, size INTEGER,
    checksum TEXT, status TEXT NOT NULL DEFAULT 'pending', bytes INTEGER, sha256 TEXT,
    verified TEXT, attempts INTEGER NOT NULL DEFAULT 0, http_status INTEGER, error TEXT,
    updated REAL);
"""


def safe_component(text: str) -> str:
    """A single path component made from untrusted catalog text (ids, asset keys)."""
    clean = _UNSAFE.sub("_", text).strip().strip(".") or "_"
    if clean in (".", ".."):
        clean = "_"
    if len(clean.encode()) > 150:
        digest = hashlib.sha1(text.encode()).hexdigest()[:10]
        clean = clean.encode()[:130].decode("utf-8", "ignore") + "-" + digest
    return clean


def asset_extension(href: str, media_type: str | None = None) -> str:
    """The file extension of an asset: from the href path, else from its media type."""
    name = posixpath.basename(urllib.parse.urlsplit(href).path)
    # not pathlib: PurePath interns every name it parses, which grows with the catalog
    stem = name.lstrip(".")
    suffixes = [] if stem.endswith(".") else ["." + s.lower() for s in stem.split(".")[1:]]
    ext = ""
    if suffixes:
        ext = suffixes[-1]
        if ext in COMPRESSION_SUFFIXES and len(suffixes) >= 2:
            ext = suffixes[-2] + ext
    if ext and _EXT_OK.match(ext):
        return ext
    if media_type:
        base = media_type.split(";")[0].strip().lower()
        return MEDIA_EXTENSIONS.get(base, "")
    return ""


def item_dest(record: ItemRecord, key: str, href: str, media_type: str | None) -> str:
    """``<collection>/<item>/<asset_key><ext>`` (POSIX, relative to the dataset folder)."""
    return "/".join(
        (
            safe_component(record.collection),
            safe_component(record.id),
            safe_component(key) + asset_extension(href, media_type),
        )
    )


def is_common_key(key: str) -> bool:
    """Whether an asset key names a collection-wide file (documentation, readme, license,
    ``*_split``) that goes once to ``_common/``."""
    return key.lower() in COMMON_KEYS or key.lower().endswith("_split")


def split_item_bbox(
    bbox: tuple[float, float, float, float],
) -> list[tuple[float, float, float, float]]:
    """Boxes that never cross the antimeridian (an item box with minx > maxx becomes two)."""
    return bbox_parts(bbox)


@dataclass
class Selection:
    """What `AssetDB.select` kept: files, their total size where known, and the requested
    collections the catalog does not have."""

    files: int
    bytes_known: int
    unknown_collections: list[str]


def _clamp(t: float) -> float:
    return max(-BIG, min(BIG, t)) if math.isinf(t) else t


class AssetDB:
    """The sqlite asset database of one dataset (use as a context manager)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        # temp_store stays on disk: GROUP BY sorters and the selection table spill instead of
        # growing with the catalog
        self.conn.executescript(SCHEMA)
        self._next_pk = 1

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> AssetDB:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- meta ----------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, **values: Any) -> None:
        self.conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [(k, None if v is None else str(v)) for k, v in values.items()],
        )

    def is_indexed(self, fingerprint: str) -> bool:
        """Whether a complete index of exactly this catalog is already here."""
        return (
            self.get_meta("index_complete") == "1"
            and self.get_meta("fingerprint") == fingerprint
            and self.get_meta("schema_version") == SCHEMA_VERSION
        )

    # --- indexing ------------------------------------------------------------------------
    def begin_index(self) -> None:
        """Forget the previous index (file states are kept: they are matched by destination)."""
        with self.conn:
            self.conn.execute("BEGIN")
            self.set_meta(index_complete="0")
            for table in ("items", "item_boxes", "items_rtree", "assets"):
                self.conn.execute(f"DELETE FROM {table}")
        self._next_pk = 1

    def add_items(self, records: Iterable[ItemRecord]) -> int:
        """Insert a batch of items and their assets in one transaction; returns the count."""
        items, boxes, assets = [], [], []
        for rec in records:
            pk = self._next_pk
            self._next_pk += 1
            start, end = rec.interval if rec.interval else (None, None)
            items.append(
                (
                    pk,
                    rec.collection,
                    rec.id,
                    rec.href,
                    _clamp(start) if start is not None else None,
                    _clamp(end) if end is not None else None,
                    rec.geometry,
                )
            )
            if rec.bbox:
                for part in split_item_bbox(rec.bbox):
                    boxes.append((pk, *part))
            for a in rec.assets:
                dest = item_dest(rec, a.key, a.href, a.media_type)
                assets.append((pk, a.key, a.href, a.media_type, a.size, a.checksum, dest))
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.executemany(
                "INSERT OR IGNORE INTO items (pk, collection, id, href, dt_start, dt_end, geometry)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                items,
            )
            cur = self.conn.executemany(
                "INSERT INTO item_boxes (item_pk, minx, miny, maxx, maxy) VALUES (?, ?, ?, ?, ?)",
                boxes,
            )
            self.conn.executemany(
                "INSERT OR IGNORE INTO assets (item_pk, key, href, media_type, size, checksum, "
                "dest) VALUES (?, ?, ?, ?, ?, ?, ?)",
                assets,
            )
            del cur
        return len(items)

    def finish_index(self, fingerprint: str, common_min_items: int = 2, **meta: Any) -> dict:
        """Drop duplicates, build the R*Tree, place shared assets in ``_common``, register files."""
        with self.conn:
            self.conn.execute("BEGIN")
            # items that lost to an earlier duplicate (same collection and id) keep no assets
            self.conn.execute("DELETE FROM assets WHERE item_pk NOT IN (SELECT pk FROM items)")
            self.conn.execute("DELETE FROM item_boxes WHERE item_pk NOT IN (SELECT pk FROM items)")
            self.conn.execute(
                "INSERT INTO items_rtree (id, minx, maxx, miny, maxy) "
                "SELECT id, minx, maxx, miny, maxy FROM item_boxes"
            )
            common = self._place_common(common_min_items)
            self.conn.execute(
                """
                INSERT INTO files (dest, href, size, checksum)
                SELECT dest, MIN(href), MAX(size), MAX(checksum) FROM assets WHERE true
                GROUP BY dest
                ON CONFLICT (dest) DO UPDATE SET
                    status = CASE WHEN files.href = excluded.href AND files.size IS excluded.size
                                   AND files.checksum IS excluded.checksum
                              THEN files.status ELSE 'stale' END,
                    href = excluded.href, size = excluded.size, checksum = excluded.checksum
                """
            )
            counts = self.counts()
            self.set_meta(
                fingerprint=fingerprint,
                schema_version=SCHEMA_VERSION,
                index_complete="1",
                indexed_at=time.time(),
                common_files=common,
                **counts,
                **meta,
            )
        return {**counts, "common_files": common}

    def _place_common(self, min_items: int) -> int:
        """Point assets shared by ``min_items`` items of a collection (or with a common key) at
        ``<collection>/_common/<key><ext>``; returns how many shared files there are."""
        rows = self.conn.execute(
            """
            SELECT i.collection, a.href, MIN(a.key), MAX(a.media_type), COUNT(*) AS n,
                   MAX(lower(a.key) IN ('documentation', 'readme', 'license')
                       OR lower(a.key) LIKE '%\\_split' ESCAPE '\\') AS named
            FROM assets a JOIN items i ON i.pk = a.item_pk
            GROUP BY i.collection, a.href
            HAVING n >= ? OR named
            ORDER BY i.collection, a.href
            """,
            (min_items,),
        )
        taken: set[str] = set()
        updates = []
        for collection, href, key, media_type, _n, _named in rows:
            ext = asset_extension(href, media_type)
            base = f"{safe_component(collection)}/{COMMON_DIR}/{safe_component(key)}"
            dest = base + ext
            if dest in taken:
                dest = f"{base}-{hashlib.sha1(href.encode()).hexdigest()[:8]}{ext}"
            taken.add(dest)
            updates.append((dest, href, collection))
        self.conn.executemany(
            "UPDATE assets SET dest = ? WHERE href = ? AND item_pk IN "
            "(SELECT pk FROM items WHERE collection = ?)",
            updates,
        )
        return len(updates)

    def counts(self) -> dict[str, int]:
        one = self.conn.execute
        return {
            "items": one("SELECT COUNT(*) FROM items").fetchone()[0],
            "assets": one("SELECT COUNT(*) FROM assets").fetchone()[0],
            "files": one("SELECT COUNT(DISTINCT dest) FROM assets").fetchone()[0],
            "collections": one("SELECT COUNT(DISTINCT collection) FROM items").fetchone()[0],
        }

    def collections(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT collection FROM items")]

    # --- selection -----------------------------------------------------------------------
    def select(self, filters: Filters) -> Selection:
        """Fill the temporary ``selection`` table with the files that the filters keep."""
        c = self.conn
        c.execute("DROP TABLE IF EXISTS temp.selection")
        c.execute("CREATE TEMP TABLE selection (file_pk INTEGER PRIMARY KEY)")
        item_where, item_params = item_conditions(filters)
        if filters.intersects is not None:
            self._select_intersecting(filters, item_where, item_params)
            item_where = ["i.pk IN (SELECT pk FROM temp.hits)"]
            item_params = []
        asset_where, asset_params = asset_conditions(filters)
        where = " AND ".join(item_where + asset_where) or "1"
        with c:
            c.execute("BEGIN")
            c.execute(
                "INSERT OR IGNORE INTO temp.selection (file_pk) SELECT f.pk FROM assets a "
                "JOIN items i ON i.pk = a.item_pk JOIN files f ON f.dest = a.dest "
                f"WHERE {where}",
                item_params + asset_params,
            )
        files, known = c.execute(
            "SELECT COUNT(*), COALESCE(SUM(f.size), 0) FROM temp.selection s "
            "JOIN files f ON f.pk = s.file_pk"
        ).fetchone()
        existing = set(self.collections())
        unknown = sorted(set(filters.collections) - existing)
        return Selection(files, known, unknown)

    def _select_intersecting(self, filters: Filters, where: list[str], params: list) -> None:
        """Items whose true geometry intersects ``filters.intersects`` -> ``temp.hits``."""
        import numpy as np
        import shapely

        geom = shapely.geometry.shape(filters.intersects)
        shapely.prepare(geom)
        box_where, box_params = bbox_condition(geom.bounds)
        c = self.conn
        c.execute("DROP TABLE IF EXISTS temp.hits")
        c.execute("CREATE TEMP TABLE hits (pk INTEGER PRIMARY KEY)")
        sql = (
            "SELECT i.pk, i.geometry, b.minx, b.miny, b.maxx, b.maxy FROM items i "
            "JOIN item_boxes b ON b.item_pk = i.pk WHERE " + " AND ".join([*where, box_where])
        )
        cur = c.execute(sql, params + box_params)
        with c:
            c.execute("BEGIN")
            while rows := cur.fetchmany(2000):
                shapes = []
                for _pk, geometry, minx, miny, maxx, maxy in rows:
                    if geometry:
                        shapes.append(shapely.from_geojson(geometry))
                    else:
                        shapes.append(shapely.box(minx, miny, maxx, maxy))
                hit = shapely.intersects(geom, np.array(shapes, dtype=object))
                c.executemany(
                    "INSERT OR IGNORE INTO temp.hits (pk) VALUES (?)",
                    [(row[0],) for row, ok in zip(rows, hit, strict=True) if ok],
                )

    def iter_selected(self, page: int = 1000) -> Iterator[tuple]:
        """(pk, dest, href, size, checksum, status, bytes) of the selection, by pages (keyset
        pagination: the cursor never stays open while results are written)."""
        last = 0
        while True:
            rows = self.conn.execute(
                "SELECT f.pk, f.dest, f.href, f.size, f.checksum, f.status, f.bytes "
                "FROM temp.selection s JOIN files f ON f.pk = s.file_pk "
                "WHERE s.file_pk > ? ORDER BY s.file_pk LIMIT ?",
                (last, page),
            ).fetchall()
            if not rows:
                return
            yield from rows
            last = rows[-1][0]

    def record(self, results: list[tuple]) -> None:
        """Store a batch of (status, bytes, sha256, verified, attempts, http_status, error, pk)."""
        now = time.time()
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.executemany(
                "UPDATE files SET status = ?, bytes = ?, sha256 = ?, verified = ?, attempts = ?, "
                f"http_status = ?, error = ?, updated = {now} WHERE pk = ?",
                results,
            )

    def selected_pending_bytes(self) -> int:
        """Known bytes (file:size) of the selected files that are not downloaded yet."""
        return self.conn.execute(
            "SELECT COALESCE(SUM(f.size), 0) FROM temp.selection s JOIN files f "
            "ON f.pk = s.file_pk WHERE f.status != 'done'"
        ).fetchone()[0]

    def failed_selected(self) -> list[tuple]:
        return self.conn.execute(
            "SELECT f.dest, f.href, f.error, f.http_status, f.attempts FROM temp.selection s "
            "JOIN files f ON f.pk = s.file_pk WHERE f.status = 'failed' ORDER BY f.dest"
        ).fetchall()

    def selected_status_counts(self) -> dict[str, int]:
        return dict(
            self.conn.execute(
                "SELECT f.status, COUNT(*) FROM temp.selection s JOIN files f "
                "ON f.pk = s.file_pk GROUP BY f.status"
            ).fetchall()
        )


def bbox_condition(bbox: tuple[float, float, float, float]) -> tuple[str, list[float]]:
    """SQL on ``item_boxes b`` (R*Tree first, then exact) for one filter box, antimeridian
    boxes split in two."""
    clauses, params = [], []
    for minx, miny, maxx, maxy in bbox_parts(bbox):
        clauses.append(
            "(b.id IN (SELECT id FROM items_rtree WHERE minx <= ? AND maxx >= ? AND miny <= ? "
            "AND maxy >= ?) AND b.minx <= ? AND b.maxx >= ? AND b.miny <= ? AND b.maxy >= ?)"
        )
        params += [maxx, minx, maxy, miny] * 2
    return "(" + " OR ".join(clauses) + ")", params


def item_conditions(filters: Filters) -> tuple[list[str], list[Any]]:
    """SQL conditions on ``items i`` for the datetime and bbox filters."""
    where: list[str] = []
    params: list[Any] = []
    if filters.datetime is not None:
        start, end = filters.datetime
        where.append("i.dt_start <= ? AND i.dt_end >= ?")
        params += [_clamp(end), _clamp(start)]
    if filters.bbox is not None:
        sql, box_params = bbox_condition(filters.bbox)
        where.append(f"i.pk IN (SELECT b.item_pk FROM item_boxes b WHERE {sql})")
        params += box_params
    return where, params


def asset_conditions(filters: Filters) -> tuple[list[str], list[Any]]:
    """SQL conditions on ``items i``/``assets a`` for collections and asset-key allow-lists."""
    params: list[Any] = []
    if filters.collections:
        ors = []
        for name, keys in sorted(filters.collections.items()):
            allowed = keys if keys is not None else filters.assets
            if allowed is None:
                ors.append("i.collection = ?")
                params.append(name)
            else:
                marks = ", ".join("?" * len(allowed))
                ors.append(f"(i.collection = ? AND a.key IN ({marks}))")
                params += [name, *sorted(allowed)]
        return ["(" + " OR ".join(ors) + ")"], params
    if filters.assets is not None:
        marks = ", ".join("?" * len(filters.assets))
        return [f"a.key IN ({marks})"], sorted(filters.assets)
    return [], []
