"""The layout sweep: one tile-year's SAFE products built into a cube per candidate layout, then
timed on the same random patches.

A layout is named ``reference``, ``reference-sharded`` (the datacube defaults: 20/40/80 dates ×
512/256/128 px, plain or with the default shards) or ``<time>-<px>-<codec>[-sharded]``:

- ``time``: ``year`` = all dates of the tile-year in one chunk, ``ref`` = 20/40/80 dates, or a
  number of dates (every group);
- ``px``: the 10 m chunk side, a multiple of 6; the 20 m and 60 m chunks cover the same ground
  (``px/2``, ``px/6``), so chunk edges coincide in all groups and a patch whose corners lie on
  60 m steps starts on whole pixels of every group;
- ``codec``: ``zstd1``, ``zstd3``, ``zstd9``, ``lz4`` (Blosc, byte shuffle) or ``none`` (Blosc
  level 0: a copy);
- ``-sharded``: shards of the time chunk × the largest square of whole chunks within
  ``shard_bytes`` uncompressed (a shard is written whole, in memory).

The SAFE products are decoded once: the first layout is built from them by the converter
(`eolab.sentinel2.datacube.to_zarr`); every other layout is a copy of that store whose ``data``
arrays are rewritten with its chunks, shards and codec (``rewrite``; the JP2 decode is the same
for every layout, so its conversion time is the compress-and-write time that differs).
``convert_each`` builds every layout from the SAFE products instead.

Per layout the result gives conversion seconds, objects and bytes on disk, load times warm
(the patch read once before) and cold (page cache dropped before, where allowed), the loader
against the two-thread decode bound, read amplification measured and, from chunk geometry
alone, for a realistic tile-year (``GEOMETRY_DATES``) at full size: amplification and data
objects per tile-year. Every layout must return the pixels of the first one for every patch.
"""

from __future__ import annotations

import math
import random
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eolab.core.errors import ConfigError
from eolab.core.provenance import environment
from eolab.lab import amplification
from eolab.lab.amplification import ChunkedArray
from eolab.lab.patchbench import compare, decode_bound, drop_page_cache, measure
from eolab.lab.patchload import GROUPS, Grid, ZarrLoader, random_patches
from eolab.sentinel2 import datacube
from eolab.sentinel2.safe import BAND_GROUPS
from eolab.zarrio.shardview import base_store

SCHEMA_VERSION = 1
#: Dates of a realistic tile-year (35VLH 2024 has ~190) for the geometry-only figures.
GEOMETRY_DATES = 190
#: Pixels of a full-size tile per group.
FULL_PX = {"10m": 10980, "20m": 5490, "60m": 1830}
#: Ground metres of one pixel per group.
RES = {"10m": 10, "20m": 20, "60m": 60}
BANDS = {g: len(BAND_GROUPS[g]) for g in GROUPS}
ITEMSIZE = 2  # uint16
REF_TIME = {"10m": 20, "20m": 40, "60m": 80}
REF_PX = {"10m": 512, "20m": 256, "60m": 128}
CODECS: dict[str, dict[str, Any]] = {
    "zstd1": {"cname": "zstd", "clevel": 1, "shuffle": "shuffle"},
    "zstd3": {"cname": "zstd", "clevel": 3, "shuffle": "shuffle"},
    "zstd9": {"cname": "zstd", "clevel": 9, "shuffle": "shuffle"},
    "lz4": {"cname": "lz4", "clevel": 5, "shuffle": "shuffle"},
    "none": {"cname": "lz4", "clevel": 0, "shuffle": "noshuffle"},
}
#: Upper bound of one shard, uncompressed (written whole, in memory).
SHARD_BYTES = 4 << 30
DEFAULT_LAYOUTS = (
    "reference",
    "reference-sharded",
    "year-480-zstd3",
    "year-240-zstd3",
    "year-120-zstd3",
    "year-60-zstd3",
    "ref-120-zstd3",
    "year-120-zstd1",
    "year-120-zstd9",
    "year-120-lz4",
    "year-120-none",
    "year-120-zstd3-sharded",
    "year-240-zstd3-sharded",
)
_NAME = re.compile(r"^(year|ref|\d+)-(\d+)-(zstd1|zstd3|zstd9|lz4|none)(-sharded)?$")


@dataclass(frozen=True)
class Layout:
    """A candidate layout; ``px`` None = the reference's 512/256/128 px."""

    name: str
    time: str
    px: int | None
    codec: str
    sharded: bool

    def chunks(self, dates: int) -> dict[str, tuple[int, int, int]]:
        """(time, y, x) chunks per group for a tile-year of ``dates`` dates."""
        out = {}
        for g in GROUPS:
            if self.time.isdigit():
                t = int(self.time)
            else:
                t = max(1, dates) if self.time == "year" else REF_TIME[g]
            side = REF_PX[g] if self.px is None else self.px * RES["10m"] // RES[g]
            out[g] = (t, side, side)
        return out

    def shards(
        self, dates: int, shard_bytes: int = SHARD_BYTES, full_px: Mapping[str, int] = FULL_PX
    ) -> dict[str, tuple[int, int, int]] | None:
        """(time, y, x) shards per group, or None when not sharded."""
        if not self.sharded:
            return None
        if self.name == "reference-sharded":
            return dict(datacube.DEFAULT_SHARDS)
        out = {}
        for g, (t, cy, cx) in self.chunks(dates).items():
            chunk_bytes = t * BANDS[g] * cy * cx * ITEMSIZE
            k = max(1, math.isqrt(max(1, shard_bytes // chunk_bytes)))
            k = min(k, math.ceil(full_px[g] / cy))  # no larger than the tile
            out[g] = (t, k * cy, k * cx)
        return out

    def spec(
        self, dates: int, shard_bytes: int = SHARD_BYTES, full_px: Mapping[str, int] = FULL_PX
    ) -> datacube.CubeSpec:
        """The converter's spec; shards no larger than a tile of ``full_px`` pixels (a shard
        index covers every chunk position of the shard, stored or not)."""
        return datacube.CubeSpec(
            chunks=self.chunks(dates),
            shards=self.shards(dates, shard_bytes, full_px),
            compressor=CODECS[self.codec],
        )


def parse_layout(name: str) -> Layout:
    """A layout from its name (see the module docstring)."""
    name = name.strip()
    if name in ("reference", "reference-sharded"):
        return Layout(name, "ref", None, "zstd3", name.endswith("-sharded"))
    m = _NAME.match(name)
    if not m:
        raise ConfigError(
            f"layout {name!r}: expected reference, reference-sharded or "
            "<year|ref|dates>-<px>-<zstd1|zstd3|zstd9|lz4|none>[-sharded], e.g. year-120-zstd3"
        )
    if m.group(1).isdigit() and int(m.group(1)) < 1:
        raise ConfigError(f"layout {name!r}: a time chunk of at least 1 date")
    px = int(m.group(2))
    if px < 6 or px % 6:
        raise ConfigError(f"layout {name!r}: px {px} must be a multiple of 6 (10/20/60 m match)")
    return Layout(name, m.group(1), px, m.group(3), bool(m.group(4)))


# --- geometry only ---------------------------------------------------------------------------


def full_grids(full_px: Mapping[str, int] = FULL_PX) -> dict[str, Grid]:
    """The grids of a tile (upper-left corner at 0, 0) of ``full_px`` pixels per group."""
    return {g: Grid(0.0, 0.0, float(RES[g]), n, n) for g, n in full_px.items()}


def geometry(
    layout: Layout,
    dates: int = GEOMETRY_DATES,
    patches: int = 200,
    seed: int = 42,
    patch_m: float = 5100,
    align_m: float = 60,
    shard_bytes: int = SHARD_BYTES,
) -> dict[str, Any]:
    """Amplification (mean over seeded random patches) and data objects of a full-size
    tile-year of ``dates`` dates, every chunk assumed written; from chunk geometry alone."""
    grids = full_grids()
    chunks = layout.chunks(dates)
    shards = layout.shards(dates, shard_bytes) or chunks
    arrays = {
        g: ChunkedArray((dates, BANDS[g], FULL_PX[g], FULL_PX[g]), (t, BANDS[g], y, x), ITEMSIZE)
        for g, (t, y, x) in chunks.items()
    }
    decoded = returned = 0
    for patch in random_patches(grids, patches, seed, patch_m, align_m):
        for g, arr in arrays.items():
            row, col, size = grids[g].window(patch)
            sel = (slice(None), slice(None), slice(row, row + size), slice(col, col + size))
            decoded += amplification.decoded_bytes(arr, sel)
            returned += amplification.returned_bytes(arr, sel)
    objects = sum(
        math.ceil(dates / t) * math.ceil(FULL_PX[g] / y) * math.ceil(FULL_PX[g] / x)
        for g, (t, y, x) in shards.items()
    )
    return {
        "dates": dates,
        "amplification": decoded / returned,
        "bytes_decoded": decoded / patches,
        "bytes_returned": returned / patches,
        "data_objects": objects,
    }


# --- building --------------------------------------------------------------------------------


def store_stats(store: Path) -> dict[str, int]:
    """Files, data files (chunks or shards of ``data`` arrays) and bytes of a store."""
    files = [p for p in store.rglob("*") if p.is_file()]
    data = [p for p in files if "data" in p.relative_to(store).parts[:-1]]
    return {
        "objects": len(files),
        "data_objects": sum(1 for p in data if "c" in p.relative_to(store).parts),
        "bytes_on_disk": sum(p.stat().st_size for p in files),
    }


def tile_px(safe_path: Path) -> dict[str, int]:
    """The larger side (px) of each group's grid in a SAFE product."""
    from eolab.sentinel2.safe import read_safe

    product = read_safe(safe_path)
    return {g: max(product.geoposition(g).nrows, product.geoposition(g).ncols) for g in GROUPS}


def build(
    layout: Layout,
    safe_paths: Sequence[Path],
    store: Path,
    dates: int,
    shard_bytes: int,
    workers: int | None,
) -> dict[str, Any]:
    """Build ``store`` (replacing one left over) with ``layout``; seconds and disk figures."""
    if store.exists():
        shutil.rmtree(store)
    spec = layout.spec(dates, shard_bytes, tile_px(safe_paths[0]))
    start = time.perf_counter()
    datacube.to_zarr(store, safe_paths, spec, workers=workers, progress=False)
    return _built(spec, time.perf_counter() - start, "safe", store)


def _built(spec: Any, seconds: float, converted_from: str, store: Path) -> dict[str, Any]:
    """A built layout's figures: its chunks, shards and codec, build seconds, disk figures."""
    return {
        "chunks": {g: list(v) for g, v in spec.chunks.items()},
        "shards": {g: list(v) for g, v in spec.shards.items()} if spec.shards else None,
        "compressor": dict(spec.compressor),
        "conversion_s": seconds,
        "converted_from": converted_from,
        **store_stats(store),
    }


def _group_paths(root: Any) -> list[str]:
    """``<tile>/<year>`` of every tile-year in a cube."""
    return [f"{t}/{y}" for t in root.group_keys() for y in root[t].group_keys()]


def _data_chunks(folder: str, names: list[str]) -> list[str]:
    """copytree's ignore: the chunks (or shards) of ``data`` arrays, rewritten anyway."""
    return ["c"] if Path(folder).name == datacube.DATA else []


def rewrite(
    layout: Layout, source: Path, store: Path, dates: int, shard_bytes: int
) -> dict[str, Any]:
    """Copy cube ``source`` to ``store`` with the ``data`` arrays in ``layout`` (labels,
    coordinates and attributes unchanged); seconds and disk figures."""
    import zarr

    if store.exists():
        shutil.rmtree(store)
    src = zarr.open_group(str(source), mode="r")
    first = src[next(p for p in _group_paths(src))]
    sizes = {g: max(first[g][datacube.DATA].shape[2:]) for g in GROUPS}
    spec = layout.spec(dates, shard_bytes, sizes)
    start = time.perf_counter()
    shutil.copytree(source, store, ignore=_data_chunks)
    dst = zarr.open_group(str(store), mode="r+")
    for tile_year in _group_paths(src):
        for group in GROUPS:
            old = src[f"{tile_year}/{group}/{datacube.DATA}"]
            chunks, shards = spec.blocks(group, old.shape[1])
            new = dst[f"{tile_year}/{group}"].create_array(
                datacube.DATA,
                shape=old.shape,
                chunks=chunks,
                shards=shards,
                dtype=old.dtype,
                fill_value=old.fill_value,
                compressors=spec.codec(),
                dimension_names=datacube.DIMS,
                attributes=dict(old.attrs),
                overwrite=True,
            )
            new[...] = old[...]
    datacube.consolidate(store)
    return _built(spec, time.perf_counter() - start, "store", store)


# --- the sweep -------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if values else None


def sweep(
    safe_paths: Sequence[Path],
    tile: str,
    year: int,
    work: Path,
    layouts: Sequence[str] = DEFAULT_LAYOUTS,
    repeats: int = 5,
    seed: int = 42,
    patch_m: float = 5100,
    align_m: float = 60,
    drop_caches: bool = True,
    shard_bytes: int = SHARD_BYTES,
    workers: int | None = None,
    keep: bool = False,
    echo: Callable[[str], None] = print,
    convert_each: bool = False,
) -> dict[str, Any]:
    """Build every layout, time the same patches on each; the result document."""
    chosen = [parse_layout(n) for n in layouts]
    if not chosen:
        raise ConfigError("layouts: none given")
    dates = len(safe_paths)
    work.mkdir(parents=True, exist_ok=True)
    built: dict[str, dict[str, Any]] = {}
    loaders: dict[str, ZarrLoader] = {}
    try:
        first = work / f"{chosen[0].name}.zarr"
        for lay in chosen:
            store = work / f"{lay.name}.zarr"
            if convert_each or store == first:
                built[lay.name] = build(lay, safe_paths, store, dates, shard_bytes, workers)
            else:
                built[lay.name] = rewrite(lay, first, store, dates, shard_bytes)
            echo(f"built {lay.name}: {built[lay.name]['conversion_s']:.1f} s")
            loader = ZarrLoader("zarr", base_store(str(store)), tile, year, "local", str(store))
            loaders[lay.name] = loader.open()
        times = _time_loads(loaders, repeats, seed, patch_m, align_m, drop_caches, echo)
    finally:
        for loader in loaders.values():
            loader.close()
        if not keep:
            for lay in chosen:
                shutil.rmtree(work / f"{lay.name}.zarr", ignore_errors=True)
    results = {}
    for lay in chosen:
        geo = geometry(lay, seed=seed, patch_m=patch_m, align_m=align_m, shard_bytes=shard_bytes)
        results[lay.name] = {**built[lay.name], **times["results"][lay.name], "geometry": geo}
    reference = results.get("reference", {}).get("geometry")
    for r in results.values():
        r["geometry"]["objects_vs_reference"] = (
            reference["data_objects"] / r["geometry"]["data_objects"] if reference else None
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "tile": tile,
        "year": year,
        "dates": dates,
        "geometry_dates": GEOMETRY_DATES,
        "repeats": repeats,
        "warmup": 1,
        "seed": seed,
        "patch_size_m": times["patches"][0][2],
        "patches": times["patches"],
        "shard_bytes": shard_bytes,
        "page_cache": times["page_cache"],
        "layouts": [lay.name for lay in chosen],
        "results": results,
        "recommendation": recommend(results),
        "environment": environment(),
    }


def _time_loads(
    loaders: Mapping[str, ZarrLoader],
    repeats: int,
    seed: int,
    patch_m: float,
    align_m: float,
    drop_caches: bool,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """Warm and (where the cache can be dropped) cold loads of the same patches, shuffled order
    per patch; every layout must return the first one's pixels."""
    names = list(loaders)
    patches = random_patches(loaders[names[0]].grids, repeats + 1, seed, patch_m, align_m)
    cold, reason = drop_page_cache() if drop_caches else (False, "disabled by configuration")
    per: dict[str, dict[str, list[Any]]] = {
        n: {"warm": [], "cold": [], "m": [], "bound": []} for n in names
    }
    rng = random.Random(seed)
    for rep, patch in enumerate(patches):
        order = names[:]
        rng.shuffle(order)
        reference: tuple[str, dict[str, np.ndarray]] | None = None
        for name in order:
            loader = loaders[name]
            if cold:
                drop_page_cache()
                m_cold, _ = measure(loader, patch)
            loader.load(patch)  # warm: the patch's bytes are in the page cache now
            m, arrays = measure(loader, patch)
            if reference is None:
                reference = (name, arrays)
            else:
                compare(reference[1], arrays, f"patch {rep}: layout {name}", reference[0])
            if rep > 0:
                per[name]["warm"].append(m.seconds)
                per[name]["m"].append(m)
                if cold:
                    per[name]["cold"].append(m_cold.seconds)
                    per[name]["m"][-1].nbytes = m_cold.nbytes  # what a cold load read
                per[name]["bound"].append(decode_bound(loader, patch))
            echo(f"patch {rep}: {name:28s} warm {m.seconds:7.3f} s")
    results = {}
    for name, p in per.items():
        entry = amplification_of(p["m"])
        bound = _median([b for b in p["bound"] if b is not None])
        warm = _median(p["warm"])
        results[name] = {
            "warm_s": p["warm"],
            "cold_s": p["cold"] or None,
            "median_warm_s": warm,
            "median_cold_s": _median(p["cold"]),
            "mean_bytes_read": float(np.mean([m.nbytes for m in p["m"]])) if p["m"] else None,
            **entry,
            "decode_bound_s": bound,
            "warm_vs_bound": warm / bound if warm and bound else None,
        }
    page_cache = {"dropped": cold, "reason": reason}
    return {"results": results, "patches": [p.to_json() for p in patches], "page_cache": page_cache}


def amplification_of(ms: Sequence[Any]) -> dict[str, float | None]:
    """Mean bytes decoded and returned per patch and their ratio."""
    if not ms:
        return {"bytes_decoded": None, "bytes_returned": None, "amplification": None}
    decoded = float(np.mean([m.decoded for m in ms]))
    returned = float(np.mean([m.returned for m in ms]))
    return {
        "bytes_decoded": decoded,
        "bytes_returned": returned,
        "amplification": amplification.ratio(decoded, returned),
    }


#: What a recommended layout must meet at ``GEOMETRY_DATES`` dates (issue 19's targets).
MAX_AMPLIFICATION = 3.0
MIN_OBJECT_RATIO = 50.0


def recommend(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The fastest warm layout among those meeting both geometry targets (else the fastest)."""

    def meets(r: Mapping[str, Any]) -> bool:
        geo = r["geometry"]
        ratio = geo.get("objects_vs_reference")
        return geo["amplification"] <= MAX_AMPLIFICATION and (ratio or 0) >= MIN_OBJECT_RATIO

    timed = {n: r for n, r in results.items() if r.get("median_warm_s") is not None}
    ok = {n: r for n, r in timed.items() if meets(r)}
    pool = ok or timed
    best = min(pool, key=lambda n: pool[n]["median_warm_s"])
    r = results[best]
    geo = r["geometry"]
    return {
        "layout": best,
        "meets_targets": bool(ok),
        "reason": (
            f"fastest warm load ({r['median_warm_s']:.3f} s) of the layouts with amplification "
            f"<= {MAX_AMPLIFICATION} and >= {MIN_OBJECT_RATIO}x fewer objects than the reference "
            f"at {geo['dates']} dates"
            if ok
            else "no layout meets both geometry targets: the fastest warm load"
        ),
    }


def format_report(doc: Mapping[str, Any]) -> str:
    """A text table: one line per layout, then the recommendation."""
    lines = [
        f"layout sweep {doc['tile']} {doc['year']}: {doc['dates']} dates, {doc['repeats']} "
        f"patches of {doc['patch_size_m']:.0f} m, page cache dropped: "
        f"{doc['page_cache']['dropped']}; geometry at {doc['geometry_dates']} dates",
        f"  {'layout':26s} {'warm s':>7s} {'cold s':>7s} {'bound s':>7s} {'ampl':>5s} "
        f"{'objs':>6s} {'MB':>8s} {'conv s':>7s} | {'ampl@':>5s} {'objs@':>6s} {'fewer':>6s}",
    ]

    def num(v: float | None, fmt: str) -> str:
        return "n/a" if v is None else format(v, fmt)

    for name, r in doc["results"].items():
        geo = r["geometry"]
        lines.append(
            f"  {name:26s} {num(r['median_warm_s'], '7.3f')} {num(r['median_cold_s'], '>7.3f')} "
            f"{num(r['decode_bound_s'], '7.3f')} {num(r['amplification'], '5.1f')} "
            f"{r['data_objects']:6d} {r['bytes_on_disk'] / 1e6:8.1f} {r['conversion_s']:7.1f} | "
            f"{geo['amplification']:5.2f} {geo['data_objects']:6d} "
            f"{num(geo['objects_vs_reference'], '6.1f')}"
        )
    rec = doc["recommendation"]
    lines.append(f"recommendation: {rec['layout']} ({rec['reason']})")
    return "\n".join(lines)
