"""``eolab bench convert``: SAFE -> Zarr and SAFE -> COG timed against decoding alone.

Decoding the JPEG2000 bands is the physical limit of any conversion from SAFE, so the baseline
is ``decode.decode_bands`` on the same product with the same threads (all CPUs by default),
and each conversion is reported as a ratio to it (target: Zarr within 1.3x). Every step runs in
a fresh process, so its peak RSS is its own (the memory bound: about one product), and the JP2
files are read once beforehand so every step starts from the same warm page cache.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from eolab.core import atomic
from eolab.core.provenance import environment
from eolab.sentinel2 import safe

#: decode: the limit. zarr / zarr_sharded: the per-date cost of a tile-year conversion, i.e.
#: whole chunks/shards in time (time extent 1 here, because the product is one date; in a
#: tile-year every block of 20/40/80 dates is written whole). zarr_one_date: the configured
#: 20/40/80-deep chunks holding this single date, which zarr pads to full chunks (the cost of
#: a partly filled last block). cog: three COGs.
STEPS = ("decode", "zarr", "zarr_sharded", "zarr_one_date", "cog")
BASELINE = "decode"
TARGET_ZARR_RATIO = 1.3
FIXTURE_YEAR = 2024


def fixture_product(out: Path, tile: str, scale: int, seed: int) -> Path:
    """One generated product at ``scale`` (1 = full size), reused when already there."""
    from eolab.fixtures.sentinel2 import generate_tile_year
    from eolab.sentinel2.products import product_paths

    root = out / "fixture" / f"{tile}_scale{scale}_seed{seed}"
    manifest = root / f"{tile}_{FIXTURE_YEAR}.json"
    if not manifest.is_file():
        generate_tile_year(
            root, tile=tile, year=FIXTURE_YEAR, dates=1, scale=scale, seed=seed, manifest=manifest
        )
    return product_paths(manifest)[0]


def _warm(product: safe.SafeProduct) -> int:
    """Read every band file once (same page-cache state for every step); returns bytes."""
    total = 0
    for band in safe.BANDS:
        with open(product.band_path(band), "rb") as fh:
            while chunk := fh.read(1 << 24):
                total += len(chunk)
    return total


def _step(
    name: str, safe_path: str, work: str, workers: int | None, compressor: dict | None
) -> dict[str, Any]:
    """Run one step in this (fresh) process: seconds and peak RSS."""
    import pyproj  # noqa: F401 - imported lazily by the steps; not part of the timing
    import rio_cogeo.cogeo  # noqa: F401
    import tqdm  # noqa: F401

    from eolab.sentinel2 import cog, datacube, decode

    work_dir = Path(work)
    product = safe.read_safe(safe_path)
    start = time.perf_counter()
    if name == "decode":
        arrays = decode.decode_bands(product, decode.GROUPS, workers=workers)
        nbytes = sum(a.nbytes for a in arrays.values())
        del arrays
    elif name.startswith("zarr"):
        spec = _spec(name, compressor)
        datacube.to_zarr(
            work_dir / f"{name}.zarr", [safe_path], spec, workers=workers, progress=False
        )
        nbytes = _size(work_dir / f"{name}.zarr")
    else:
        cog.product_to_cog(safe_path, work_dir / "cog", workers=workers)
        nbytes = _size(work_dir / "cog")
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_rss_mib": peak_kib / 1024, "bytes": nbytes}


def _spec(name: str, compressor: dict[str, Any] | None):
    """The cube layout of a zarr step (see STEPS)."""
    from eolab.sentinel2 import datacube

    chunks = dict(datacube.DEFAULT_CHUNKS)
    shards = None
    if name != "zarr_one_date":
        chunks = {g: (1, y, x) for g, (_, y, x) in chunks.items()}
    if name == "zarr_sharded":
        shards = {g: (1, y, x) for g, (_, y, x) in datacube.DEFAULT_SHARDS.items()}
    return datacube.CubeSpec(
        chunks=chunks, shards=shards, compressor=compressor or datacube.DEFAULT_COMPRESSOR
    )


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _run_isolated(
    name: str, safe_path: Path, work: Path, workers: int | None, compressor: dict | None
) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        args = (name, str(safe_path), str(work), workers, compressor)
        return pool.submit(_step, *args).result()


def run_benchmark(
    out: str | os.PathLike,
    *,
    safe_path: str | os.PathLike | None = None,
    scale: int = 1,
    tile: str = "35VLH",
    seed: int = 42,
    repeats: int = 1,
    workers: int | None = None,
    json_path: str | os.PathLike | None = None,
    compressor: dict[str, Any] | None = None,
    steps: tuple[str, ...] = STEPS,
) -> dict[str, Any]:
    """Time the steps ``repeats`` times, interleaved (so load changes hit every step alike);
    write and return the result with ratios to decode."""
    from eolab.sentinel2 import datacube, decode

    out = Path(out)
    path = Path(safe_path) if safe_path else fixture_product(out, tile, scale, seed)
    product = safe.read_safe(path)
    jp2_bytes = _warm(product)
    steps = tuple(dict.fromkeys((BASELINE, *steps)))
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in steps}
    for r in range(repeats):
        for name in steps:
            work = out / "work" / f"{name}-{r}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            runs[name].append(_run_isolated(name, path, work, workers, compressor))
            shutil.rmtree(work, ignore_errors=True)
    median = {s: statistics.median(r["seconds"] for r in runs[s]) for s in steps}
    decoded = sum(decode.group_nbytes(product, g) for g in decode.GROUPS)
    summary = {
        "product": product.id,
        "decoded_mib": round(decoded / 2**20, 1),
        "jp2_mib": round(jp2_bytes / 2**20, 1),
        "workers": workers or decode.default_workers(),
        "seconds": {s: round(v, 3) for s, v in median.items()},
        "ratio_to_decode": {s: round(median[s] / median[BASELINE], 3) for s in steps},
        "decode_mib_per_s": round(decoded / 2**20 / median[BASELINE], 1),
        "peak_rss_mib": {s: round(max(r["peak_rss_mib"] for r in runs[s]), 1) for s in steps},
        "output_mib": {s: round(runs[s][-1]["bytes"] / 2**20, 1) for s in steps[1:]},
        "compressor": compressor or datacube.DEFAULT_COMPRESSOR,
        "zarr_target_ratio": TARGET_ZARR_RATIO,
    }
    if "zarr" in median:
        summary["zarr_within_target"] = median["zarr"] / median[BASELINE] <= TARGET_ZARR_RATIO
    result = {
        "benchmark": "convert",
        "what": "SAFE -> Zarr (plain, sharded) and SAFE -> COG vs decoding the JP2s alone",
        "safe": str(path),
        "scale": None if safe_path else scale,
        "repeats": repeats,
        "runs": runs,
        "summary": summary,
        "environment": environment(),
    }
    atomic.write_json(Path(json_path) if json_path else out / "convert.json", result)
    return result
