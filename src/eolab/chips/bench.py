"""``eolab bench chips``: index one full-size Sentinel-2 tile, eolab against stacchip 0.1.38.

Inputs are synthetic full-size masks on the real 35VLH grid (10980 px at 10 m, 256 px chips →
42 × 42 chips), written as files so every contender pays for its own read:

* L2A: an SCL GeoTIFF at 20 m (5490 px) with patchy clouds and a nodata strip. Contenders:
  eolab's L2A hook (read + vectorised reduction); stacchip's ``Sentinel2Indexer.create_index``
  (run in its own venv: stacchip pins numpy < 2, so it is never a dependency of eolab); and the
  same per-chip Python loop re-implemented here (the baseline when stacchip cannot run).
* L1C: ``MSK_CLASSI_B00`` (3 layers at 60 m) plus a 60 m band for nodata (stacchip has no L1C
  indexer): eolab against the per-chip loop.

The limit measured beside them is reading the mask files alone (decode, no statistics). Results
of the contenders are compared (same chips kept, same fractions) before any ratio is reported.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.enums import Resampling

from eolab.chips.index import index_item
from eolab.chips.rasterio_io import gdal_env, read_raster
from eolab.chips.sensors import Sentinel2L1CStatistics, Sentinel2L2AStatistics
from eolab.core.atomic import write_json
from eolab.core.progress import bar as progress_bar
from eolab.core.provenance import environment

TILE = "35VLH"
CRS = "EPSG:32635"
ULX, ULY = 300000.0, 6800040.0
FULL = 10980
CHIP = 256
STACCHIP = "stacchip==0.1.38"
# stacchip 0.1.38 requires numpy < 2; newer pyarrow/pandas/shapely wheels need numpy 2.
STACCHIP_PINS = ("pyarrow<19", "pandas<3", "shapely<2.1")
WHEN = "2024-06-21T09:50:29.024Z"


def default_stacchip_venv() -> Path:
    """Where the stacchip venv goes unless given: under ``$XDG_CACHE_HOME`` (else ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "eolab" / "stacchip-0.1.38-venv"


def patchy(n: int, values: np.ndarray, rng: np.random.Generator, blob: int) -> np.ndarray:
    """A class map in square patches of ``blob`` pixels (masks are patchy, not pixel noise)."""
    coarse = rng.choice(values, size=(n // blob + 1, n // blob + 1))
    return np.repeat(np.repeat(coarse, blob, 0), blob, 1)[:n, :n]


def patchy_mask(n: int, fraction: float, rng: np.random.Generator, blob: int) -> np.ndarray:
    """Cloud-like blobs covering about ``fraction`` of the tile."""
    return patchy(n, np.arange(1000), rng, blob) < 1000 * fraction


def write_raster(path: Path, data: np.ndarray, res: float) -> str:
    """Write ``data`` (2-D, or bands first) as a tiled, deflate-compressed GeoTIFF on the tile's
    grid at ``res`` m; returns its path."""
    data = data if data.ndim == 3 else data[None]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs=CRS,
        transform=Affine(res, 0, ULX, 0, -res, ULY),
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
    ) as dst:
        dst.write(data)
    return str(path)


def make_inputs(workdir: Path, seed: int) -> dict[str, Any]:
    """Write the synthetic SCL, MSK_CLASSI_B00 and 60 m band, and STAC items for both tools."""
    rng = np.random.default_rng(seed)
    n20, n60 = FULL // 2, FULL // 6
    scl = patchy(n20, np.array([4, 5, 6, 7, 11], np.uint8), rng, 7)
    scl[patchy_mask(n20, 0.3, rng, 150)] = 9
    scl[patchy_mask(n20, 0.1, rng, 90)] = 3
    scl[:, : n20 // 5] = 0  # a nodata strip: the western fifth of the tile
    classi = np.stack([patchy_mask(n60, f, rng, 50) for f in (0.3, 0.1, 0.05)]).astype(np.uint8)
    band60 = rng.integers(1000, 4000, size=(1, n60, n60), dtype=np.uint16)
    band60[:, :, : n60 // 5] = 0
    paths = {
        "scl": write_raster(workdir / "SCL_20m.tif", scl, 20),
        "classi": write_raster(workdir / "MSK_CLASSI_B00.tif", classi, 60),
        "band60": write_raster(workdir / "B01_60m.tif", band60, 60),
    }
    base = {
        "proj:shape": [FULL, FULL],
        "proj:transform": [10.0, 0.0, ULX, 0.0, -10.0, ULY],
        "constellation": "sentinel-2",
        "platform": "sentinel-2b",
    }
    ext = ["https://stac-extensions.github.io/projection/v1.1.0/schema.json"]
    l2a = pystac.Item(
        f"S2B_MSIL2A_20240621T095029_N0510_R079_T{TILE}_20240621T103945",
        shapely.geometry.mapping(shapely.box(0, 0, 1, 1)),
        [0, 0, 1, 1],
        pystac.utils.str_to_datetime(WHEN),
        properties={**base, "proj:epsg": 32635, "proj:code": CRS, "processing:level": "L2A"},
        stac_extensions=ext,
    )
    l2a.add_asset("scl", pystac.Asset(paths["scl"], roles=["data"]))
    l1c = l2a.clone()
    l1c.id = l2a.id.replace("MSIL2A", "MSIL1C")
    l1c.properties["processing:level"] = "L1C"
    l1c.assets = {}
    l1c.add_asset("MSK_CLASSI_B00", pystac.Asset(paths["classi"], roles=["cloud"]))
    l1c.add_asset("60m", pystac.Asset(paths["band60"], roles=["data"]))
    item_path = workdir / "item_l2a.json"
    item_path.write_text(json.dumps(l2a.to_dict(include_self_link=False)), encoding="utf-8")
    return {"paths": paths, "l2a": l2a, "l1c": l1c, "l2a_json": str(item_path)}


def loop_index(
    item_id: str, cloud: np.ndarray, nodata: np.ndarray, max_nodata: float = 0.5
) -> dict[str, Any]:
    """stacchip's algorithm re-implemented: one Python iteration per chip over full-resolution
    masks (slice, count, box, reproject with shapely.ops.transform). The baseline."""
    from shapely.ops import transform

    project = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform
    n = FULL // CHIP
    rows = []
    # The baseline keeps stacchip's call, deprecated since shapely 2.1: ignore that warning for
    # the loop (as outside pytest) rather than record one per chip.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for y in range(n):
            for x in range(n):
                window = np.s_[y * CHIP : (y + 1) * CHIP, x * CHIP : (x + 1) * CHIP]
                cloud_pct = int(cloud[window].sum()) / CHIP**2
                nodata_pct = int(nodata[window].sum()) / CHIP**2
                box = shapely.box(
                    ULX + x * 10 * CHIP,
                    ULY - (y + 1) * 10 * CHIP,
                    ULX + (x + 1) * 10 * CHIP,
                    ULY - y * 10 * CHIP,
                )
                geom = transform(project, box)
                if nodata_pct <= max_nodata:
                    rows.append((f"{item_id}-{x}-{y}", cloud_pct, nodata_pct, geom.wkt))
    return {"chips": len(rows), "rows": rows}


def read_upsampled(href: str, bands: list[int]) -> np.ndarray:
    """A mask band read to the 10 m grid by nearest neighbour, as stacchip does for SCL."""
    with rasterio.open(href) as src:
        return src.read(bands, out_shape=(len(bands), FULL, FULL), resampling=Resampling.nearest)


def loop_l2a(item: pystac.Item) -> dict[str, Any]:
    """The per-chip loop on L2A: SCL read at 10 m; cloud = classes 1, 3, 8, 9, 10 (saturated,
    shadow, medium/high probability cloud, cirrus), nodata = 0."""
    scl = read_upsampled(item.assets["scl"].href, [1])[0]
    return loop_index(item.id, np.isin(scl, [1, 3, 8, 9, 10]), scl == 0)


def loop_l1c(item: pystac.Item) -> dict[str, Any]:
    """The per-chip loop on L1C: cloud = opaque or cirrus in MSK_CLASSI_B00 (layers 1 and 2),
    nodata = 0 in the 60 m band; both read at 10 m."""
    classi = read_upsampled(item.assets["MSK_CLASSI_B00"].href, [1, 2])
    band = read_upsampled(item.assets["60m"].href, [1])[0]
    return loop_index(item.id, (classi[0] > 0) | (classi[1] > 0), band == 0)


def timed(func: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Wall times of ``repeats`` calls and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return times, result


def summary(times: list[float]) -> dict[str, Any]:
    """Every repeat's wall time (to the microsecond), their median and their minimum."""
    return {
        "repeats_s": [round(t, 6) for t in times],
        "median_s": statistics.median(times),
        "min_s": min(times),
    }


STACCHIP_SCRIPT = """
import json, sys, time
from pystac import Item
from stacchip.indexer import Sentinel2Indexer
import stacchip, numpy
item = Item.from_file(sys.argv[1])
# stacchip 0.1.38 reads proj:epsg, which pystac >= 1.12 migrates to proj:code on load.
code = item.properties.get("proj:code", "")
if "proj:epsg" not in item.properties and code.startswith("EPSG:"):
    item.properties["proj:epsg"] = int(code.split(":")[1])
times, reads = [], []
for _ in range(int(sys.argv[3])):
    start = time.perf_counter()
    indexer = Sentinel2Indexer(item)
    indexer.scl  # the cached read of the SCL band (nearest-upsampled to 10 m)
    read = time.perf_counter()
    table = indexer.create_index()
    times.append(time.perf_counter() - start)
    reads.append(read - start)
import pyarrow.parquet as pq
pq.write_table(table.drop(["geometry"]), sys.argv[2])
print(json.dumps({"times": times, "reads": reads, "chips": table.num_rows}))
"""


def ensure_stacchip(venv: Path, log: Path) -> Path:
    """A venv with stacchip 0.1.38 (created on first use); returns its python."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import stacchip.indexer"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    with open(log, "ab") as fh:
        subprocess.run(
            [sys.executable, "-m", "venv", str(venv)],
            check=True,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                STACCHIP,
                *STACCHIP_PINS,
            ],
            check=True,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    result = subprocess.run(check, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"stacchip installed but does not import: {result.stderr[-500:]}")
    return python


def run_stacchip(python: Path, item_json: str, out: Path, repeats: int) -> dict[str, Any]:
    """Run stacchip's indexer ``repeats`` times on the item JSON in its venv; its last index goes
    to ``out`` (parquet, without geometry). Returns its wall times, the SCL read time within
    each, and the chip count."""
    script = out.with_name("run_stacchip_index.py")  # not stacchip.py: it would shadow it
    script.write_text(STACCHIP_SCRIPT, encoding="utf-8")
    result = subprocess.run(
        [str(python), str(script), item_json, str(out), str(repeats)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"stacchip failed: {result.stderr[-800:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def stacchip_versions(python: Path) -> dict[str, str]:
    """Versions of stacchip and the packages it runs with, as installed in its venv."""
    code = (
        "import json, importlib.metadata as m; print(json.dumps({n: m.version(n) for n in "
        "('stacchip','numpy','rasterio','pyarrow','shapely','pandas','pystac')}))"
    )
    return json.loads(
        subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout
    )


def agreement(eolab_table, ids: list[str], cloud: np.ndarray, nodata: np.ndarray) -> dict:
    """Same chips kept and the largest fraction differences between eolab and a contender."""
    mine = eolab_table.set_index("chipid")
    same = sorted(ids) == sorted(mine.index)
    if not same:
        return {"same_chips": False, "eolab_chips": len(mine), "other_chips": len(ids)}
    ours = mine.loc[ids]
    return {
        "same_chips": True,
        "max_abs_diff_cloud": float(np.abs(ours.cloud_cover_percentage.to_numpy() - cloud).max()),
        "max_abs_diff_nodata": float(np.abs(ours.nodata_percentage.to_numpy() - nodata).max()),
    }


def measure_eolab(item: pystac.Item, hook, hrefs: list[str], repeats: int) -> tuple[dict, Any]:
    """eolab's index of one item end to end, and reading its mask files alone (the limit)."""
    with gdal_env():  # as `eolab chips index` runs
        t_total, table = timed(lambda: index_item(item, CHIP, 0.5, hook), repeats)
        t_read, _ = timed(lambda: [read_raster(h) for h in hrefs], repeats)
    case = {
        "chips_total": (FULL // CHIP) ** 2,
        "chips_kept": len(table),
        "eolab": summary(t_total),
        "read_files_only": summary(t_read),
        "eolab_beyond_read_s": statistics.median(t_total) - statistics.median(t_read),
    }
    return case, table


def add_loop(case: dict, table, loop: Callable[[], dict], repeats: int) -> None:
    """Time the per-chip Python loop baseline and check it agrees with eolab."""
    t_loop, result = timed(loop, repeats)
    rows = result["rows"]
    case["python_loop"] = summary(t_loop)
    case["agreement_python_loop"] = agreement(
        table, [r[0] for r in rows], np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    )
    case["ratio_python_loop"] = statistics.median(t_loop) / case["eolab"]["median_s"]


def add_stacchip(case: dict, table, python: Path, item_json: str, work: Path, repeats: int):
    """Time stacchip's Sentinel2Indexer on the same item and check it agrees with eolab."""
    import pyarrow.parquet as pq

    result = run_stacchip(python, item_json, work / "stacchip.parquet", repeats)
    theirs = pq.read_table(work / "stacchip.parquet").to_pandas()
    loop_only = [t - r for t, r in zip(result["times"], result["reads"], strict=True)]
    case["stacchip"] = summary(result["times"])
    case["stacchip"] |= {
        "chips_kept": result["chips"],
        "read_scl_upsampled_s": result["reads"],
        "per_chip_loop_s": loop_only,
    }
    case["agreement_stacchip"] = agreement(
        table,
        theirs.chipid.tolist(),
        theirs.cloud_cover_percentage.to_numpy(),
        theirs.nodata_percentage.to_numpy(),
    )
    case["ratio_stacchip"] = case["stacchip"]["median_s"] / case["eolab"]["median_s"]
    case["ratio_stacchip_beyond_read"] = statistics.median(loop_only) / max(
        case["eolab_beyond_read_s"], 1e-6
    )
    case["ratio_stacchip_limit"] = (
        case["stacchip"]["median_s"] / case["read_files_only"]["median_s"]
    )


def run(
    out: Path,
    repeats: int = 3,
    loop_repeats: int = 1,
    seed: int = 42,
    stacchip_venv: Path | None = None,
    use_stacchip: bool = True,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Run the benchmark, write ``out`` (JSON) and return the result."""
    tmp = tempfile.TemporaryDirectory(prefix="eolab-bench-chips-", dir=workdir)
    work = Path(tmp.name)
    try:
        inputs = make_inputs(work, seed)
        paths = inputs["paths"]
        steps = progress_bar(total=5, desc="bench chips", unit="step")
        l2a, table = measure_eolab(inputs["l2a"], Sentinel2L2AStatistics(), [paths["scl"]], repeats)
        steps.update(1)
        add_loop(l2a, table, lambda: loop_l2a(inputs["l2a"]), loop_repeats)
        steps.update(1)
        stacchip_env: dict[str, Any] = {"used": False, "reason": "--no-stacchip"}
        if use_stacchip:
            venv = stacchip_venv or default_stacchip_venv()
            try:
                python = ensure_stacchip(venv, work / "stacchip-install.log")
                add_stacchip(l2a, table, python, inputs["l2a_json"], work, repeats)
                stacchip_env = {
                    "used": True,
                    "venv": str(venv),
                    "pins": [STACCHIP, *STACCHIP_PINS],
                    "versions": stacchip_versions(python),
                }
            except (subprocess.SubprocessError, RuntimeError, OSError) as exc:
                log = work / "stacchip-install.log"
                tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
                stacchip_env = {"used": False, "error": str(exc), "install_log_tail": tail}
        steps.update(1)
        l1c, table1 = measure_eolab(
            inputs["l1c"],
            Sentinel2L1CStatistics(),
            [paths["classi"], paths["band60"]],
            repeats,
        )
        steps.update(1)
        add_loop(l1c, table1, lambda: loop_l1c(inputs["l1c"]), loop_repeats)
        steps.update(1)
        steps.close()
        result = {
            "benchmark": "chips",
            "what": "index one full-size Sentinel-2 tile (10980 px, 256 px chips) from its masks",
            "tile": TILE,
            "chip_size": CHIP,
            "seed": seed,
            "repeats": repeats,
            "target": "eolab >= 50x faster than stacchip 0.1.38",
            "cases": {"l2a_scl": l2a, "l1c_msk_classi": l1c},
            "stacchip": stacchip_env,
            "environment": environment(),
        }
        write_json(out, result)
        return result
    finally:
        tmp.cleanup()
