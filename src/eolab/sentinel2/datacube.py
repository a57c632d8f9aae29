"""SAFE -> Zarr v3 datacube: one group per tile, year and resolution, arrays (time, band, y, x).

Layout (the contract the staging, benchmark and chips stages read; constants below)::

    <store>/<tile>/<year>/<10m|20m|60m>/
        data                 (time, band, y, x) uint16 raw DN as in the JP2, 0 = nodata
        time                 (time) int64 ms since 1970-01-01 UTC (CF: xarray decodes datetime64)
        band                 (band) label codes; center_wavelength (band) float64 nm
        x, y                 pixel centres in metres (the tile's UTM CRS)
        spatial_ref          () CF grid mapping: crs_wkt, spatial_ref, GeoTransform, proj:code
        product_id, orbit_direction, processing_baseline   (time) label codes
        reflectance_scale, reflectance_offset              (time, band) float64

String labels (``band``, ``product_id``, ``orbit_direction``, ``processing_baseline``) are
uint16 codes with the CF ``flag_values``/``flag_meanings`` attributes (the labels, space
separated): tensorstore 0.1.86 (and so xarray-tensorstore) reads none of zarr-python's string
types (``string``, ``fixed_length_utf32``, ``null_terminated_bytes``), and a code is also what a
training loop wants. ``open_dataset`` and ``read_labels`` give the strings back; stores written
before (variable-length strings) still read and append. The group and ``data`` also carry
GeoZarr-style ``proj:code`` and ``spatial:*`` attributes beside the CF grid mapping.

``reflectance = data * reflectance_scale + reflectance_offset`` where ``data != 0``. The offset
depends on the date (0 before processing baseline 04.00, -0.1 after), so it is a (time, band)
coordinate and not CF ``scale_factor``/``add_offset`` attributes, which xarray would apply as one
scalar to every band and date (and which it cannot decode as per-band lists). ``data`` carries
``_FillValue: 0`` (xarray masks nodata to NaN by default; ``mask_and_scale=False`` keeps raw
uint16) and ``band_scale_factor``/``band_add_offset`` lists when every date agrees (else null).

Appending is incremental, idempotent and crash-safe. Writes happen in whole time blocks (the
time extent of a chunk, or of a shard when sharded) so no chunk or shard is ever read back and
rewritten product by product: decoded products wait as raw ``.npy`` files in a staging folder
until a block is full. A group's committed length lives in its ``eolab:cube`` attribute and is
written last (after the data and the labels); on open, arrays longer than it are cut back. When
new dates fall before already-stored ones (or into a partly filled last block), the stored dates
from that block on are first copied to staging files (fsynced), recorded in the attribute as
``staged`` and the arrays truncated; they are then written back in order with the new dates. A
crash at any point therefore leaves a store the next run repairs and completes, even when it is
given different products. A new group's ``eolab:cube`` attribute is written after all its arrays,
so a group without it was only half created and is rebuilt. One writer per store (a lock file
beside it); staging files are preallocated, so a full disk is an error and not a SIGBUS. Two
products of one sensing time keep one date: the newer processing baseline (`newest`).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from eolab.core import atomic, disk, lock
from eolab.core.atomic import fsync_dir
from eolab.core.errors import ConfigError, InputError
from eolab.sentinel2 import decode, rawfile, safe

log = logging.getLogger(__name__)

# --- layout ----------------------------------------------------------------------------------
GROUPS: tuple[str, ...] = decode.GROUPS
DATA = "data"
DIMS = ("time", "band", "y", "x")
TIME = "time"
BAND = "band"
WAVELENGTH = "center_wavelength"
SPATIAL_REF = "spatial_ref"
#: Per-date string labels (time,) and per-date-and-band radiometry (time, band).
STR_LABELS = ("product_id", "orbit_direction", "processing_baseline")
BAND_LABELS = ("reflectance_scale", "reflectance_offset")
#: Every array indexed by time; ``time`` itself is written last when a block is committed.
TIME_ARRAYS = (DATA, *STR_LABELS, *BAND_LABELS, TIME)
TIME_UNITS = "milliseconds since 1970-01-01T00:00:00"
CALENDAR = "proleptic_gregorian"
#: String labels are stored as codes of this type into their ``flag_meanings``.
LABEL_DTYPE = "uint16"
#: Chunk length of the time-label arrays (one chunk covers a tile-year).
LABEL_CHUNK = 1024
STATE_ATTR = "eolab:cube"
FORMAT_VERSION = 1
#: (time, y, x) chunks per group; the band axis is always whole. The reference's choice.
DEFAULT_CHUNKS: dict[str, tuple[int, int, int]] = {
    "10m": (20, 512, 512),
    "20m": (40, 256, 256),
    "60m": (80, 128, 128),
}
#: (time, y, x) shards: a tile-year of 192 dates is ~550 data objects instead of ~7500.
DEFAULT_SHARDS: dict[str, tuple[int, int, int]] = {
    "10m": (20, 2048, 2048),
    "20m": (40, 1024, 1024),
    "60m": (80, 1024, 1024),
}
DEFAULT_COMPRESSOR = {"cname": "zstd", "clevel": 3, "shuffle": "shuffle"}
#: Upper bound of one uncompressed write block of a plain (unsharded) store.
WRITE_BLOCK_BYTES = 256 << 20
NPY = ".npy"


def group_path(tile: str, year: int, group: str) -> str:
    """``<tile>/<year>/<group>``: where one resolution of a tile-year lives in a store."""
    return f"{tile}/{int(year)}/{group}"


def staging_dir(store: str | os.PathLike, scratch: str | os.PathLike | None = None) -> Path:
    """The staging folder of a store: beside it by default (a rename never crosses devices),
    else one folder per store under ``scratch`` (stores of the same name, e.g. plain and
    sharded, must never share staging files: each run removes files it does not know)."""
    store = Path(store)
    if scratch is None:
        return store.with_name(store.name + ".staging")
    key = hashlib.sha256(str(store.resolve()).encode()).hexdigest()[:12]
    return Path(scratch) / f"{store.name}-{key}.staging"


@dataclass(frozen=True)
class CubeSpec:
    """Chunking, sharding and compression of a new store (an existing store keeps its own)."""

    chunks: Mapping[str, tuple[int, int, int]] = field(default_factory=lambda: DEFAULT_CHUNKS)
    shards: Mapping[str, tuple[int, int, int]] | None = None
    compressor: Mapping[str, Any] = field(default_factory=lambda: DEFAULT_COMPRESSOR)
    #: Upper bound of one write of a plain store (a sharded store writes whole shards).
    write_block_bytes: int = WRITE_BLOCK_BYTES

    def __post_init__(self) -> None:
        for g in GROUPS:
            chunk = self.chunks.get(g)
            if chunk is None or len(chunk) != 3 or min(chunk) < 1:
                raise ConfigError(f"chunks for {g}: expected (time, y, x) >= 1, got {chunk!r}")
            if self.shards is not None:
                shard = self.shards.get(g)
                if (
                    shard is None
                    or len(shard) != 3
                    or any(s % c for s, c in zip(shard, chunk, strict=True))
                ):
                    raise ConfigError(
                        f"shards for {g}: expected (time, y, x) multiples of chunks {chunk}, "
                        f"got {shard!r}"
                    )
        self.codec()

    def blocks(self, group: str, bands: int) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
        """(chunks, shards or None) of a group's ``(time, band, y, x)`` data array."""
        ct, cy, cx = self.chunks[group]
        shards = None
        if self.shards is not None:
            st, sy, sx = self.shards[group]
            shards = (st, bands, sy, sx)
        return (ct, bands, cy, cx), shards

    def codec(self) -> BloscCodec:
        """The Blosc compressor (typesize 2: shuffle groups the bytes of uint16 values)."""
        clevel = self.compressor.get("clevel", 5)
        if not isinstance(clevel, int) or not 0 <= clevel <= 9:
            # Blosc accepts it here and fails at the first write, half-way into a new store
            raise ConfigError(f"compressor {dict(self.compressor)!r}: clevel must be 0..9")
        try:
            return BloscCodec(typesize=2, **dict(self.compressor))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"compressor {dict(self.compressor)!r}: {exc}") from exc


def parse_blocks(text: str, what: str = "chunks") -> dict[str, tuple[int, int, int]]:
    """``10m:20x512x512,20m:40x256x256,60m:80x128x128`` -> {group: (time, y, x)}."""
    blocks = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        group, _, dims = part.partition(":")
        try:
            values = tuple(int(v) for v in dims.lower().split("x"))
        except ValueError:
            values = ()
        if group not in GROUPS or len(values) != 3:
            raise ConfigError(f"{what} {part!r}: expected <10m|20m|60m>:<time>x<y>x<x>")
        blocks[group] = values
    missing = [g for g in GROUPS if g not in blocks]
    if missing:
        raise ConfigError(f"{what} {text!r}: missing {', '.join(missing)}")
    return blocks


def format_blocks(blocks: Mapping[str, Sequence[int]]) -> str:
    """The inverse of ``parse_blocks`` (used by the rules to pass config to the CLI)."""
    return ",".join(f"{g}:{'x'.join(str(int(v)) for v in blocks[g])}" for g in GROUPS)


def parse_compressor(text: str) -> dict[str, Any]:
    """``zstd:3:shuffle`` -> Blosc settings (cname, clevel, shuffle)."""
    parts = text.split(":")
    try:
        cname, clevel, shuffle = parts[0], int(parts[1]), parts[2]
    except (IndexError, ValueError) as exc:
        raise ConfigError(f"compressor {text!r}: expected cname:clevel:shuffle") from exc
    return {"cname": cname, "clevel": clevel, "shuffle": shuffle}


# --- labels of one time step -------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """The labels of one date in one group (everything but the pixels)."""

    product_id: str
    time_ms: int
    orbit_direction: str
    baseline: str
    scales: tuple[float, ...]
    offsets: tuple[float, ...]

    @property
    def key(self) -> tuple[int, str]:
        """Sort key of the time axis: sensing time, then product id."""
        return (self.time_ms, self.product_id)

    @classmethod
    def from_info(cls, info: decode.ProductInfo, group: str) -> Entry:
        bands = safe.BAND_GROUPS[group]
        return cls(
            product_id=info.id,
            time_ms=info.time_ms,
            orbit_direction=info.orbit_direction,
            baseline=info.baseline,
            scales=tuple(info.scales(bands)),
            offsets=tuple(info.offsets(bands)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "time_ms": self.time_ms,
            "orbit_direction": self.orbit_direction,
            "baseline": self.baseline,
            "scales": list(self.scales),
            "offsets": list(self.offsets),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Entry:
        return cls(
            product_id=doc["product_id"],
            time_ms=int(doc["time_ms"]),
            orbit_direction=doc["orbit_direction"],
            baseline=doc["baseline"],
            scales=tuple(float(v) for v in doc["scales"]),
            offsets=tuple(float(v) for v in doc["offsets"]),
        )


@dataclass(frozen=True)
class Pending:
    """A date waiting to be written: its labels and, if already decoded, its staging file."""

    entry: Entry
    file: Path | None = None


def _baseline_key(baseline: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in baseline.split("."))
    except ValueError:
        return ()


def newest(a: Entry, b: Entry) -> Entry:
    """Of two products with one sensing time, the one the cube keeps: the newer processing
    baseline, then the later product id (its last field is the generation time)."""
    return max(a, b, key=lambda e: (_baseline_key(e.baseline), e.product_id))


@dataclass
class Plan:
    """An append to one group, before anything changes (see `CubeGroup.plan`)."""

    cube: CubeGroup
    #: New and staged dates to write, by product id.
    pending: dict[str, Pending]
    #: Stored dates from this index on are staged and rewritten (== length: none).
    cut: int
    #: The stored dates from ``cut`` on that stay (a replaced duplicate is left out).
    tail: list[Entry]
    #: Staged dates replaced by a newer product of the same sensing time.
    stale: list[Pending]
    #: (dropped, kept) pairs of products with the same sensing time.
    duplicates: list[tuple[Entry, Entry]]

    def staging_bytes(self) -> int:
        """Peak staging space: the restaged tail plus one write block of new dates."""
        fresh = sum(p.file is None for p in self.pending.values())
        return (len(self.tail) + min(fresh, self.cube.block_time)) * self.cube.date_bytes()

    @property
    def work(self) -> bool:
        return bool(self.pending or self.stale or self.cut < self.cube.length)


# --- one group -----------------------------------------------------------------------------------
class CubeGroup:
    """One ``<tile>/<year>/<group>`` of a store: committed length, repair, staging, writes."""

    def __init__(
        self,
        zgroup: zarr.Group,
        group: str,
        staging: Path,
        write_block_bytes: int = WRITE_BLOCK_BYTES,
    ):
        self.z = zgroup
        self.write_block_bytes = write_block_bytes
        self.group = group
        self.bands = list(safe.BAND_GROUPS[group])
        self.staging = staging / zgroup.path
        self.data = zgroup[DATA]

    def _array(self, name: str) -> zarr.Array:
        """A time-indexed array (``data`` through its one handle, so its shape stays current)."""
        return self.data if name == DATA else self.z[name]

    # state ---------------------------------------------------------------------------------
    @property
    def state(self) -> dict[str, Any]:
        state = self.z.attrs.get(STATE_ATTR)
        if not isinstance(state, dict) or "length" not in state:
            raise InputError(f"{self.z.store_path}: not an eolab cube group (no {STATE_ATTR})")
        return state

    @property
    def length(self) -> int:
        return int(self.state["length"])

    @property
    def block_time(self) -> int:
        """Dates per write block: the time extent of a shard (sharded) or of a chunk."""
        return int((self.data.shards or self.data.chunks)[0])

    def staged(self) -> list[Pending]:
        return [Pending(Entry.from_json(s), Path(s["file"])) for s in self.state.get("staged", [])]

    def _write_state(self, length: int, staged: Sequence[Pending]) -> None:
        """The commit point: one atomic rewrite of the group's ``zarr.json``."""
        doc = {
            "version": FORMAT_VERSION,
            "length": int(length),
            "staged": [{**p.entry.to_json(), "file": str(p.file)} for p in staged],
        }
        self.z.attrs[STATE_ATTR] = doc

    def entries(self) -> list[Entry]:
        """The committed dates, in time order."""
        n = self.length
        if n == 0:
            return []
        z = self.z
        cols = {name: read_labels(z[name], n) for name in STR_LABELS}
        cols |= {name: z[name][:n] for name in (*BAND_LABELS, TIME)}
        return [
            Entry(
                product_id=str(cols["product_id"][i]),
                time_ms=int(cols[TIME][i]),
                orbit_direction=str(cols["orbit_direction"][i]),
                baseline=str(cols["processing_baseline"][i]),
                scales=tuple(float(v) for v in cols["reflectance_scale"][i]),
                offsets=tuple(float(v) for v in cols["reflectance_offset"][i]),
            )
            for i in range(n)
        ]

    # repair ----------------------------------------------------------------------------------
    def repair(self) -> bool:
        """Cut arrays back to the committed length and drop orphan staging files.

        Returns True if anything was half-written (a previous run crashed)."""
        n = self.length
        changed = False
        for name in TIME_ARRAYS:
            arr = self._array(name)
            if arr.shape[0] != n:
                arr.resize((n, *arr.shape[1:]))
                changed = True
        if changed:
            _remove_partials(Path(str(self.z.store.root)) / self.z.path)
            self._update_data_attrs(self.entries())
        keep = {p.file for p in self.staged()}
        for p in keep:
            if not p.is_file():
                raise InputError(
                    f"{p}: staged data of {self.z.path} is missing; the store cannot be "
                    "completed (rebuild it)"
                )
        if self.staging.is_dir():
            for f in self.staging.glob("*" + NPY):
                if f not in keep:
                    f.unlink()
        return changed

    def check_product(self, info: decode.ProductInfo) -> None:
        """A product must share the group's grid (CRS, corner, pixel size, raster size)."""
        geo = info.grids[self.group]
        ref = self.z[SPATIAL_REF].attrs
        expected = _geotransform(geo)
        if ref.get("proj:code") != f"EPSG:{info.epsg}" or ref.get("GeoTransform") != expected:
            raise InputError(
                f"{info.tile_metadata_path}: grid EPSG:{info.epsg} {expected} differs from "
                f"the store's {ref.get('proj:code')} {ref.get('GeoTransform')} ({self.z.path})"
            )
        if self.data.shape[2:] != geo.shape:
            raise InputError(
                f"{info.tile_metadata_path}: {self.group} is {geo.shape}, "
                f"the store's {self.z.path} is {self.data.shape[2:]}"
            )

    # planning --------------------------------------------------------------------------------
    def plan(self, infos: Iterable[decode.ProductInfo]) -> Plan:
        """What to write (new dates plus staged ones) and from where; changes nothing.

        Two products with one sensing time (a reprocessing) keep one date: `newest` decides,
        also against a stored date, which is then replaced."""
        committed = self.entries()
        done = {e.product_id for e in committed}
        staged = self.staged()
        pending = {p.entry.product_id: p for p in staged}
        new = [Entry.from_info(i, self.group) for i in infos]
        new = [e for e in new if e.product_id not in done and e.product_id not in pending]
        by_time = {e.time_ms: e for e in [*committed, *(p.entry for p in staged)]}
        duplicates: list[tuple[Entry, Entry]] = []  # (dropped, kept)
        for e in sorted(new, key=lambda e: e.key):
            other = by_time.get(e.time_ms)
            if other is not None:
                kept = newest(other, e)
                duplicates.append((other if kept is e else e, kept))
                if kept is not e:
                    continue
            by_time[e.time_ms] = e
        dropped = {d.product_id for d, _ in duplicates}
        for e in new:
            if e.product_id not in dropped:
                pending[e.product_id] = Pending(e)
        stale = [p for p in staged if p.entry.product_id in dropped]
        for p in stale:
            del pending[p.entry.product_id]
        replaced = [e for e in committed if e.product_id in dropped]
        cut = len(committed)
        if pending or replaced:
            first = min([p.entry.key for p in pending.values()] + [e.key for e in replaced])
            cut = bisect.bisect_left([e.key for e in committed], first)
            cut -= cut % self.block_time
        tail = [e for e in committed[cut:] if e.product_id not in dropped]
        return Plan(self, pending, cut, tail, stale, duplicates)

    def restage(self, plan: Plan) -> dict[str, Pending]:
        """Carry out a plan's staging: stored dates from its cut on go to staging files and the
        arrays are cut back; returns the dates to write in time order."""
        pending = dict(plan.pending)
        if plan.stale:  # staged dates superseded by a newer baseline
            self._write_state(self.length, [p for p in self.staged() if p not in plan.stale])
            for p in plan.stale:
                if p.file is not None:
                    p.file.unlink(missing_ok=True)
        if plan.cut < self.length:
            tail = self._stage_from_store(plan.tail, plan.cut)
            self._write_state(plan.cut, [*self.staged(), *tail])
            for name in TIME_ARRAYS:
                arr = self._array(name)
                arr.resize((plan.cut, *arr.shape[1:]))
            pending.update({p.entry.product_id: p for p in tail})
        order = sorted(pending.values(), key=lambda p: p.entry.key)
        return {p.entry.product_id: p for p in order}

    def date_bytes(self) -> int:
        """Bytes of one date of this group in a staging file."""
        return int(np.prod(self.data.shape[1:])) * decode.DTYPE.itemsize

    def _stage_from_store(self, tail: Sequence[Entry], start: int) -> list[Pending]:
        """Copy the stored dates ``tail`` (from index ``start`` on; dates left out of ``tail``
        are dropped) to fsynced staging files, reading each chunk once."""
        self.staging.mkdir(parents=True, exist_ok=True)
        shape = self.data.shape[1:]
        stored = self.entries()[start:]
        keep = {e.product_id for e in tail}
        rows = [k for k, e in enumerate(stored) if e.product_id in keep]
        files = [self.staging / f"{stored[k].product_id}{NPY}" for k in rows]
        maps = [rawfile.allocate_npy(f, decode.DTYPE, shape) for f in files]
        end = start + len(stored)
        for ys, xs in self.write_blocks(len(stored)):
            block = self.data[start:end, :, ys, xs]
            for k, mm in zip(rows, maps, strict=True):
                mm[:, ys, xs] = block[k]
        for f, mm in zip(files, maps, strict=True):
            mm.flush()
            del mm
            _fsync(f)
        fsync_dir(self.staging)
        return [Pending(stored[k], f) for k, f in zip(rows, files, strict=True)]

    def new_staging_file(self, product_id: str) -> tuple[Path, np.ndarray]:
        """A fresh staging file for a decoded product (not durable: an orphan after a crash)."""
        self.staging.mkdir(parents=True, exist_ok=True)
        path = self.staging / f"{product_id}{NPY}"
        return path, rawfile.allocate_npy(path, decode.DTYPE, self.data.shape[1:])

    # writing ---------------------------------------------------------------------------------
    def write_blocks(self, ntime: int) -> list[tuple[slice, slice]]:
        """Spatial (y, x) regions written at once: a shard, or whole chunks within a budget."""
        _, nband, ny, nx = self.data.shape
        if self.data.shards:
            by, bx = self.data.shards[2:]
        else:
            cy, cx = self.data.chunks[2:]
            per_chunk = max(1, ntime) * nband * cy * cx * decode.DTYPE.itemsize
            k = max(1, int((self.write_block_bytes / per_chunk) ** 0.5))
            by, bx = cy * k, cx * k
        return [
            (slice(y, min(y + by, ny)), slice(x, min(x + bx, nx)))
            for y in range(0, ny, by)
            for x in range(0, nx, bx)
        ]

    def write_block(self, items: Sequence[Pending]) -> None:
        """Write dates ``length…length+n`` (pixels, then labels), then commit the new length."""
        start = self.length
        end = start + len(items)
        _, nband, ny, nx = self.data.shape
        self.data.resize((end, nband, ny, nx))
        maps = [_open_staged(p.file, (nband, ny, nx)) for p in items]
        for ys, xs in self.write_blocks(len(items)):
            block = np.empty((len(items), nband, ys.stop - ys.start, xs.stop - xs.start), "u2")
            for k, mm in enumerate(maps):
                block[k] = mm[:, ys, xs]
            self.data[start:end, :, ys, xs] = block
        del maps
        entries = [p.entry for p in items]
        self._write_labels(start, entries)
        committed = {e.product_id for e in entries}
        staged = [p for p in self.staged() if p.entry.product_id not in committed]
        self._update_data_attrs([*self.entries()[:start], *entries])
        self._write_state(end, staged)

    def _write_labels(self, start: int, entries: Sequence[Entry]) -> None:
        end = start + len(entries)
        strings = {
            "product_id": [e.product_id for e in entries],
            "orbit_direction": [e.orbit_direction for e in entries],
            "processing_baseline": [e.baseline for e in entries],
        }
        values = {name: self._label_values(name, v) for name, v in strings.items()}
        values |= {
            "reflectance_scale": np.array([e.scales for e in entries], dtype="f8"),
            "reflectance_offset": np.array([e.offsets for e in entries], dtype="f8"),
            TIME: np.array([e.time_ms for e in entries], dtype="i8"),
        }
        for name in (*STR_LABELS, *BAND_LABELS, TIME):  # time last
            arr = self.z[name]
            if arr.shape[0] != end:
                arr.resize((end, *arr.shape[1:]))
            arr[start:end] = values[name]

    def _label_values(self, name: str, strings: list[str]) -> np.ndarray:
        """Codes for a label array (its vocabulary extended first), or the strings themselves
        in a store written before labels were codes."""
        arr = self.z[name]
        if not np.issubdtype(arr.dtype, np.integer):
            return np.array(strings, dtype=object)
        codes, attrs = encode_labels(strings, label_vocabulary(arr.attrs))
        if attrs != {k: arr.attrs.get(k) for k in attrs}:
            arr.attrs.update(attrs)  # before the codes: a crash leaves unused labels only
        return codes

    def _update_data_attrs(self, entries: Sequence[Entry]) -> None:
        """Per-band scale/offset lists on ``data`` when all dates agree (else null)."""
        scales = {e.scales for e in entries}
        offsets = {e.offsets for e in entries}
        attrs = {
            "band_scale_factor": list(scales.pop()) if len(scales) == 1 else None,
            "band_add_offset": list(offsets.pop()) if len(offsets) == 1 else None,
        }
        if any(self.data.attrs.get(k) != v for k, v in attrs.items()):
            self.data.attrs.update(attrs)


def _open_staged(path: Path | None, shape: tuple[int, ...]) -> np.ndarray:
    if path is None:
        raise ValueError("pending date has no staging file")
    try:
        mm = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable staging file ({exc})") from exc
    if mm.shape != shape or mm.dtype != decode.DTYPE:
        raise InputError(f"{path}: staging file is {mm.shape} {mm.dtype}, expected {shape} u2")
    return mm


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _remove_partials(folder: Path, chunks: bool = True) -> None:
    """Drop the temporary files (``*.partial``) a kill left inside zarr's atomic writes under
    ``folder``. ``chunks=False`` skips chunk folders (``c``; a store can hold millions of chunks)
    and so drops only metadata ones (``zarr.<uuid>.partial``), which zarr warns about on every
    listing of their group; ``repair`` drops a group's chunk ones."""
    for parent, dirs, files in os.walk(folder):
        if not chunks:
            dirs[:] = [d for d in dirs if d != "c"]
        for name in files:
            if name.endswith(".partial"):
                (Path(parent) / name).unlink(missing_ok=True)


# --- creating a group --------------------------------------------------------------------------
def _geotransform(geo: safe.Geoposition) -> str:
    """GDAL GeoTransform string (corner of the upper-left pixel)."""
    return f"{geo.ulx!r} {geo.xdim!r} 0.0 {geo.uly!r} 0.0 {geo.ydim!r}"


def spatial_ref_attrs(epsg: int, geo: safe.Geoposition) -> dict[str, Any]:
    """CF grid mapping (pyproj ``to_cf``) plus GDAL's ``spatial_ref``/``GeoTransform`` and
    STAC-style ``proj:code``/``proj:transform``/``proj:shape``."""
    from pyproj import CRS

    crs = CRS.from_epsg(epsg)
    attrs = json.loads(json.dumps(crs.to_cf(), default=float))
    attrs.update(
        {
            "crs_wkt": crs.to_wkt(),
            "spatial_ref": crs.to_wkt(),
            "GeoTransform": _geotransform(geo),
            "proj:code": f"EPSG:{epsg}",
            "proj:transform": list(geo.transform)[:6],
            "proj:shape": [geo.nrows, geo.ncols],
        }
    )
    return attrs


def geozarr_attrs(epsg: int, geo: safe.Geoposition) -> dict[str, Any]:
    """GeoZarr-style ``proj:code`` and ``spatial:*`` (dimensions, affine of the pixel corners,
    shape, bbox) for readers that do not read the CF grid mapping."""
    t = geo.transform
    x0, y0 = t.c, t.f
    x1, y1 = t.c + t.a * geo.ncols, t.f + t.e * geo.nrows
    return {
        "proj:code": f"EPSG:{epsg}",
        "spatial:dimensions": ["y", "x"],
        "spatial:transform": list(t)[:6],
        "spatial:shape": [geo.nrows, geo.ncols],
        "spatial:bbox": [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)],
        "spatial:registration": "pixel",
    }


def encode_labels(
    values: Sequence[str], known: Sequence[str] = ()
) -> tuple[np.ndarray, dict[str, Any]]:
    """Codes of ``values`` in the vocabulary ``known`` (extended by new labels, in order) and
    the CF ``flag_values``/``flag_meanings`` attributes that decode them."""
    vocabulary = list(known)
    index = {label: i for i, label in enumerate(vocabulary)}
    codes = []
    for value in values:
        if not value or any(c.isspace() for c in value):
            raise InputError(f"label {value!r}: empty or with white space (CF flag_meanings)")
        if value not in index:
            index[value] = len(vocabulary)
            vocabulary.append(value)
        codes.append(index[value])
    if len(vocabulary) > np.iinfo(LABEL_DTYPE).max:
        raise InputError(f"{len(vocabulary)} labels do not fit {LABEL_DTYPE} codes")
    attrs = {"flag_values": list(range(len(vocabulary))), "flag_meanings": " ".join(vocabulary)}
    return np.array(codes, dtype=LABEL_DTYPE), attrs


def label_vocabulary(attrs: Mapping[str, Any]) -> list[str]:
    """The labels of a CF flag variable in code order (its ``flag_meanings``)."""
    return str(attrs.get("flag_meanings") or "").split()


def read_labels(arr: zarr.Array, n: int | None = None) -> np.ndarray:
    """The strings of a label array (codes decoded; string arrays of older stores as they are)."""
    values = arr[:n] if n is not None else arr[:]
    if not np.issubdtype(values.dtype, np.integer):
        return np.array(np.asarray(values).tolist(), dtype=str)  # StringDType needs no width
    return np.array(label_vocabulary(arr.attrs), dtype=str)[values]


def decode_label_variables(ds):
    """An xarray Dataset with every CF flag variable (label codes) replaced by its strings."""
    import xarray as xr

    for name in list(ds.variables):
        var = ds.variables[name]
        if {"flag_values", "flag_meanings"} <= set(var.attrs):
            vocab = np.array(label_vocabulary(var.attrs), dtype=str)
            attrs = {k: v for k, v in var.attrs.items() if not k.startswith("flag_")}
            decoded = xr.Variable(var.dims, vocab[var.values], attrs)
            if name in ds.coords:
                ds = ds.assign_coords({name: decoded})
            else:
                ds = ds.assign({name: decoded})
    return ds


def _layout_differences(z: zarr.Group, group: str, spec: CubeSpec) -> str:
    """How a group's data array differs from ``spec`` in chunks, shards, compressor ("" if not)."""
    data = z[DATA]
    chunks, shards = spec.blocks(group, data.shape[1])
    want = {"chunks": chunks, "shards": shards, "compressor": spec.codec().to_dict()}
    compressors = data.compressors
    have = {
        "chunks": tuple(data.chunks),
        "shards": tuple(data.shards) if data.shards else None,
        "compressor": compressors[0].to_dict() if compressors else None,
    }
    differ = [k for k in want if want[k] != have[k]]
    return "; ".join(f"{k} {have[k]} in the store, {want[k]} asked" for k in differ)


def _same_layout(z: zarr.Group, group: str, spec: CubeSpec) -> bool:
    return not _layout_differences(z, group, spec)


def check_layout(z: zarr.Group, group: str, spec: CubeSpec) -> None:
    """An existing group's data array must have the chunks, shards and compressor of ``spec``:
    appending would silently keep the old layout. ConfigError naming both otherwise."""
    detail = _layout_differences(z, group, spec)
    if detail:
        raise ConfigError(
            f"{z.store_path}: group {z.path} was written with another layout ({detail}); "
            "delete the store (and its .summary.json in the workflow) to rebuild it"
        )


def create_group(
    root: zarr.Group, path: str, info: decode.ProductInfo, group: str, spec: CubeSpec
) -> zarr.Group:
    """Create an empty cube group (zero dates) on the product's grid."""
    geo = info.grids[group]
    if geo.nrows < 1 or geo.ncols < 1:
        raise InputError(
            f"{info.tile_metadata_path}: {group} grid is {geo.nrows}x{geo.ncols} pixels "
            "(NROWS/NCOLS must be positive; the tile metadata is corrupt)"
        )
    bands = list(safe.BAND_GROUPS[group])
    nb = len(bands)
    chunks, shards = spec.blocks(group, nb)
    z = root.require_group(path)
    z.attrs.update(
        {
            "tile": info.tile,
            "year": int(path.split("/")[1]),
            "resolution_m": safe.RESOLUTION[group],
            **geozarr_attrs(info.epsg, geo),
        }
    )
    coords = " ".join([*STR_LABELS, *BAND_LABELS, WAVELENGTH, SPATIAL_REF])
    z.create_array(
        DATA,
        shape=(0, nb, geo.nrows, geo.ncols),
        chunks=chunks,
        shards=shards,
        dtype="uint16",
        fill_value=0,
        compressors=spec.codec(),
        dimension_names=DIMS,
        attributes={
            "long_name": "Sentinel-2 L1C top-of-atmosphere digital number",
            "_FillValue": safe.NODATA,
            "saturated_value": safe.SATURATED,
            "grid_mapping": SPATIAL_REF,
            "coordinates": coords,
            "reflectance": "data * reflectance_scale + reflectance_offset where data != 0",
            "band_scale_factor": None,
            "band_add_offset": None,
            **geozarr_attrs(info.epsg, geo),
        },
    )
    label = {"chunks": (LABEL_CHUNK,), "dimension_names": ("time",)}
    z.create_array(
        TIME,
        shape=(0,),
        dtype="int64",
        fill_value=0,
        attributes={
            "units": TIME_UNITS,
            "calendar": CALENDAR,
            "standard_name": "time",
            "long_name": "tile sensing time (MTD_TL.xml SENSING_TIME, UTC)",
            "axis": "T",
        },
        **label,
    )
    for name in STR_LABELS:
        z.create_array(
            name, shape=(0,), dtype=LABEL_DTYPE, attributes=encode_labels([])[1], **label
        )
    for name in BAND_LABELS:
        z.create_array(
            name,
            shape=(0, nb),
            chunks=(LABEL_CHUNK, nb),
            dtype="float64",
            fill_value=0.0,
            dimension_names=("time", BAND),
        )
    codes, attrs = encode_labels(bands)
    _static(z, BAND, codes, (BAND,), attrs=attrs)
    _static(
        z,
        WAVELENGTH,
        np.array([safe.WAVELENGTH_NM[b] for b in bands]),
        (BAND,),
        attrs={"units": "nm", "long_name": "central wavelength"},
    )
    xs = geo.ulx + (np.arange(geo.ncols) + 0.5) * geo.xdim
    ys = geo.uly + (np.arange(geo.nrows) + 0.5) * geo.ydim
    for name, values in (("x", xs), ("y", ys)):
        _static(
            z,
            name,
            values,
            (name,),
            attrs={
                "standard_name": f"projection_{name}_coordinate",
                "long_name": f"{name} coordinate of projection (pixel centre)",
                "units": "m",
                "axis": name.upper(),
            },
        )
    ref = z.create_array(
        SPATIAL_REF,
        shape=(),
        dtype="int64",
        fill_value=0,
        dimension_names=(),
        attributes=spatial_ref_attrs(info.epsg, geo),
    )
    ref[...] = 0
    # Written last: a group without it is half-created and is rebuilt (`ensure_group`).
    z.attrs[STATE_ATTR] = {"version": FORMAT_VERSION, "length": 0, "staged": []}
    return z


#: Every array of a complete group (a crash while creating one leaves some missing).
GROUP_ARRAYS = (*TIME_ARRAYS, BAND, WAVELENGTH, "x", "y", SPATIAL_REF)


def half_created(z: zarr.Group) -> bool:
    """Whether a group's creation was interrupted: no committed state yet, or an array missing.

    Raises InputError for a group that has committed dates but lost arrays (not a crash of
    ours: a rebuild would drop data, so the user decides)."""
    state = z.attrs.get(STATE_ATTR)
    missing = [a for a in GROUP_ARRAYS if a not in set(z.array_keys())]
    if not isinstance(state, dict) or "length" not in state:
        return True
    if not missing:
        return False
    if int(state["length"]) == 0 and not state.get("staged"):
        return True  # stores of earlier versions wrote the state first
    raise InputError(
        f"{z.store_path}: group {z.path} has {state['length']} dates but no "
        f"{', '.join(missing)} array; delete the store (and its .summary.json) to rebuild it"
    )


def ensure_group(
    root: zarr.Group, store: Path, path: str, info: decode.ProductInfo, group: str, spec: CubeSpec
) -> zarr.Group:
    """The cube group at ``path``: created when absent, rebuilt when a crash (or an error such as
    a bad header) interrupted its creation: it holds no dates then, so nothing is lost."""
    if path in root:
        z = root[path]
        if half_created(z):
            log.warning("%s: group %s was only half created (interrupted run); creating it again",
                        store, path)  # fmt: skip
        elif _empty(z) and not _same_layout(z, group, spec):
            log.warning("%s: group %s holds no dates yet; creating it with the asked layout",
                        store, path)  # fmt: skip
        else:
            return z
        shutil.rmtree(store / path)
    return create_group(root, path, info, group, spec)


def _empty(z: zarr.Group) -> bool:
    """A complete group that holds no date, committed or staged (it can be rebuilt freely)."""
    state = z.attrs[STATE_ATTR]
    return int(state["length"]) == 0 and not state.get("staged") and z[DATA].shape[0] == 0


def _static(z, name, values, dims, dtype=None, attrs=None) -> None:
    arr = z.create_array(
        name,
        shape=values.shape,
        chunks=values.shape,
        dtype=dtype or values.dtype,
        dimension_names=dims,
        attributes=attrs or {},
    )
    arr[:] = values


# --- the store -----------------------------------------------------------------------------------
def _open_root(store: Path) -> zarr.Group:
    """Open (or create) the store for writing, never through consolidated metadata."""
    if (store / "zarr.json").is_file():
        return zarr.open_group(store, mode="r+", use_consolidated=False)
    if store.exists() and any(store.iterdir()):
        raise InputError(f"{store}: exists and is not a Zarr v3 store")
    return zarr.open_group(
        store,
        mode="w",
        zarr_format=3,
        attributes={
            "title": "Sentinel-2 L1C datacube (eolab)",
            "Conventions": "CF-1.10",
            "layout": "<tile>/<year>/<10m|20m|60m>: data(time, band, y, x)",
        },
    )


def _drop_consolidated(store: Path) -> None:
    """Remove the root's consolidated metadata before changing anything, so no reader (and no
    later writer) sees a stale view while the store changes; ``consolidate`` restores it."""
    path = store / "zarr.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable store metadata ({exc})") from exc
    if doc.pop("consolidated_metadata", None) is not None:
        atomic.write_json(path, doc)


def _is_consolidated(store: Path) -> bool:
    try:
        doc = json.loads((store / "zarr.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return doc.get("consolidated_metadata") is not None


def consolidate(store: str | os.PathLike) -> None:
    """Write consolidated metadata at the root (one read opens every group, also in a zip)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(str(store))


def to_zarr(
    store: str | os.PathLike,
    safe_paths: Iterable[str | os.PathLike],
    spec: CubeSpec | None = None,
    *,
    scratch: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Append SAFE products to a datacube store (created if absent); returns a summary.

    Products already in the store are skipped, so a rerun writes nothing. Peak memory is about
    one product: bands decode into staging files and one write block is assembled at a time.
    One writer at a time: a second one gets a `LockedError` naming the first.
    """
    spec = spec or CubeSpec()
    store = Path(store)
    infos: dict[str, decode.ProductInfo] = {}
    for path in safe_paths:  # parse each product once; keep only its small summary
        info = decode.product_info(safe.read_safe(path))
        infos.setdefault(info.id, info)
    store.parent.mkdir(parents=True, exist_ok=True)
    full = disk.disk_full_error(
        lambda exc: (
            f"{exc.filename or store}: disk full while writing {store} (free some space "
            "and rerun: the store resumes where it stopped)"
        )
    )
    with full, lock.exclusive(store):
        return _to_zarr_locked(store, infos, spec, scratch, workers, progress)


def _to_zarr_locked(
    store: Path,
    infos: Mapping[str, decode.ProductInfo],
    spec: CubeSpec,
    scratch: str | os.PathLike | None,
    workers: int | None,
    progress: bool,
) -> dict[str, Any]:
    staging = staging_dir(store, scratch or None).resolve()
    created = not (store / "zarr.json").is_file()
    _remove_partials(store, chunks=False)
    root = _open_root(store)
    summary: dict[str, Any] = {"store": str(store), "groups": {}, "decoded": 0, "duplicates": []}
    changed = created
    for tile, year in sorted({(i.tile, i.year) for i in infos.values()}):
        batch = {pid: i for pid, i in infos.items() if (i.tile, i.year) == (tile, year)}
        for group in GROUPS:  # before anything changes, and even when nothing is to append
            path = group_path(tile, year, group)
            if path in root and not half_created(root[path]) and not _empty(root[path]):
                check_layout(root[path], group, spec)
        if not _needs_work(root, batch):
            for group in GROUPS:
                cube = CubeGroup(root[group_path(tile, year, group)], group, staging)
                summary["groups"][cube.z.path] = {"length": cube.length, "written": 0}
            continue
        if not changed:
            _drop_consolidated(store)
            changed = True
        _append_tile_year(root, store, batch, spec, staging, workers, progress, summary)
    if changed or not _is_consolidated(store):  # also a store from before consolidation
        consolidate(store)
    _cleanup(staging)
    summary["changed"] = changed
    return summary


def _needs_work(root: zarr.Group, batch: Mapping[str, decode.ProductInfo]) -> bool:
    """Whether a tile-year needs any write: a missing or half-created group, a half-written
    step, new dates."""
    info = next(iter(batch.values()))
    for group in GROUPS:
        path = group_path(info.tile, info.year, group)
        if path not in root or half_created(root[path]):
            return True
        z = root[path]
        cube = CubeGroup(z, group, Path())
        n = cube.length
        if any(z[name].shape[0] != n for name in TIME_ARRAYS) or cube.staged():
            return True
        if cube.plan(batch.values()).work:
            return True
    return False


def _append_tile_year(
    root: zarr.Group,
    store: Path,
    batch: Mapping[str, decode.ProductInfo],
    spec: CubeSpec,
    staging: Path,
    workers: int | None,
    progress: bool,
    summary: dict[str, Any],
) -> None:
    """Repair, plan and write the three groups of one tile-year, decoding each product once."""
    from eolab.core.progress import bar as progress_bar

    first = next(iter(batch.values()))
    cubes: dict[str, CubeGroup] = {}
    group_plans: dict[str, Plan] = {}
    for group in GROUPS:
        path = group_path(first.tile, first.year, group)
        z = ensure_group(root, store, path, first, group, spec)
        cube = CubeGroup(z, group, staging, spec.write_block_bytes)
        cube.repair()
        for info in batch.values():
            cube.check_product(info)
        group_plans[group] = cube.plan(batch.values())
        cubes[group] = cube
    _report_duplicates(group_plans[GROUPS[0]], summary)
    need = sum(p.staging_bytes() for p in group_plans.values())
    disk.check_free_space(
        staging,
        need,
        what=f"staging {first.tile} {first.year} for {store}",
        hint="free some space, or give --scratch on a larger disk",
    )
    plans = {g: cubes[g].restage(p) for g, p in group_plans.items()}
    order = sorted({p.entry.key for plan in plans.values() for p in plan.values()})
    blocks: dict[str, list[Pending]] = {g: [] for g in GROUPS}
    label = f"zarr {first.tile} {first.year}"
    for _, pid in progress_bar(order, desc=label, unit="date", disable=not progress):
        todo = [g for g in GROUPS if pid in plans[g] and plans[g][pid].file is None]
        files = _decode_to_staging(batch[pid], todo, cubes, workers) if todo else {}
        summary["decoded"] += bool(todo)
        for g in GROUPS:
            if pid in plans[g]:
                item = plans[g][pid]
                blocks[g].append(Pending(item.entry, item.file or files[g]))
                if len(blocks[g]) == cubes[g].block_time:
                    _flush(cubes[g], blocks[g])
    for g in GROUPS:
        if blocks[g]:
            _flush(cubes[g], blocks[g])
    for g, cube in cubes.items():
        summary["groups"][cube.z.path] = {"length": cube.length, "written": len(plans[g])}


def _report_duplicates(plan: Plan, summary: dict[str, Any]) -> None:
    """One warning per product left out for another of the same sensing time."""
    for dropped, kept in plan.duplicates:
        when = np.datetime64(dropped.time_ms, "ms").astype(str)
        log.warning(
            "%s: same sensing time %s as %s; keeping %s (processing baseline %s, newest wins)",
            dropped.product_id, when, kept.product_id, kept.product_id, kept.baseline,
        )  # fmt: skip
        summary["duplicates"].append(
            {"time": when, "kept": kept.product_id, "dropped": dropped.product_id}
        )


def _decode_to_staging(
    info: decode.ProductInfo,
    groups: Sequence[str],
    cubes: Mapping[str, CubeGroup],
    workers: int | None,
) -> dict[str, Path]:
    """Decode a product's bands of ``groups`` straight into new staging files (the SAFE is
    parsed again here, so no product's XML stays in memory longer than its decoding)."""
    product = safe.read_safe(info.safe_path)
    files, maps = {}, {}
    for g in groups:
        files[g], maps[g] = cubes[g].new_staging_file(info.id)
    decode.decode_bands(product, groups, out=maps.__getitem__, workers=workers)
    for mm in maps.values():
        mm.flush()
    return files


def _flush(cube: CubeGroup, block: list[Pending]) -> None:
    """Write and commit one block, then delete its staging files."""
    cube.write_block(block)
    for p in block:
        if p.file is not None:
            p.file.unlink(missing_ok=True)
    block.clear()


def _cleanup(staging: Path) -> None:
    """Remove empty staging folders (staged data of an unfinished run stays)."""
    if not staging.is_dir():
        return
    for folder in sorted((p for p in staging.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    if not any(staging.iterdir()):
        staging.rmdir()


def unfinished(store: str | os.PathLike) -> str:
    """Why a store's cube groups are not in a committed state ("" when they all are).

    Reads only ``zarr.json`` files: a group whose arrays are longer than its committed length,
    or that still has staged dates, is the trace of an interrupted append."""
    store = Path(store)
    for meta in sorted(store.rglob("zarr.json")):
        try:
            doc = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{meta}: unreadable metadata ({exc})") from exc
        state = (doc.get("attributes") or {}).get(STATE_ATTR)
        if doc.get("node_type") != "group" or not isinstance(state, dict):
            continue
        where = meta.parent.relative_to(store).as_posix()
        if state.get("staged"):
            return f"{where}: {len(state['staged'])} staged dates"
        for name in TIME_ARRAYS:
            try:
                shape = json.loads((meta.parent / name / "zarr.json").read_text())["shape"]
            except (OSError, ValueError, KeyError) as exc:
                raise InputError(f"{meta.parent / name}: unreadable array metadata") from exc
            if shape[0] != state["length"]:
                return f"{where}/{name}: {shape[0]} dates, {state['length']} committed"
    return ""


def summary_problem(store: str | os.PathLike, summary: str | os.PathLike) -> str:
    """Why the store behind a to-zarr summary is not the one the summary describes ("" when
    it is): missing, unfinished, or missing a group or dates it lists. The workflow removes
    such a summary so the conversion runs again."""
    store = Path(store)
    if not (store / "zarr.json").is_file():
        return f"{store} is missing"
    try:
        problem = unfinished(store)
    except InputError as exc:
        return str(exc)
    if problem:
        return f"{store} is unfinished ({problem})"
    try:
        groups = json.loads(Path(summary).read_text(encoding="utf-8")).get("groups", {})
    except (OSError, ValueError) as exc:
        return f"unreadable summary ({exc})"
    for path, info in groups.items():
        try:
            doc = json.loads((store / path / "zarr.json").read_text(encoding="utf-8"))
            length = int(doc["attributes"][STATE_ATTR]["length"])
        except (OSError, ValueError, KeyError, TypeError):
            return f"{store}: group {path} is missing or half created"
        if length < int(info.get("length", 0)):
            return f"{store}: group {path} has {length} dates, the summary {info['length']}"
    return ""


def forget_incomplete_summaries(
    pairs: Iterable[tuple[str | os.PathLike, str | os.PathLike]],
) -> list[tuple[Path, str]]:
    """Remove each existing ``(store, summary)`` pair's summary whose store has a
    `summary_problem`; returns (summary, problem) of those removed (the workflow warns)."""
    removed = []
    for store, summary in pairs:
        summary = Path(summary)
        if summary.is_file():
            problem = summary_problem(store, summary)
            if problem:
                summary.unlink()
                removed.append((summary, problem))
    return removed


def open_dataset(store: str | os.PathLike, tile: str, year: int, group: str, **kwargs):
    """The xarray view of one cube group (lazy; ``mask_and_scale=False`` for raw uint16 DN),
    with label codes decoded to strings."""
    import xarray as xr

    return decode_label_variables(
        xr.open_zarr(store, group=group_path(tile, year, group), **kwargs)
    )
