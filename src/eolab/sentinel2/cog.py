"""SAFE -> Cloud Optimized GeoTIFFs: one COG per resolution group, product metadata beside.

Layout (the contract the staging and benchmark stages read)::

    <outdir>/<product_id>/10m.tif   B02 B03 B04 B08
                          20m.tif   B05 B06 B07 B8A B11 B12
                          60m.tif   B01 B09 B10
                          MTD_MSIL1C.xml  MTD_TL.xml  product.json

Each COG holds the raw uint16 DN of the JP2s (no rescaling), nodata 0, band descriptions = band
names, ``wavelength_nm`` band tags, and per band ``scale = 1/QUANTIFICATION_VALUE`` and
``offset = RADIO_ADD_OFFSET/QUANTIFICATION_VALUE`` (so ``DN * scale + offset`` = reflectance).
Pixel interleaved, 512 px tiles, DEFLATE with horizontal predictor (ZSTD optional), overviews
by ``average`` (reflectance-like data: an overview pixel is the mean of the valid pixels it
covers; nodata 0 is excluded; ``nearest`` is the option that keeps exact source values).

The bands decode in parallel into a raw file that a small VRT describes (georeferencing,
nodata, descriptions, scales, offsets, tags), and rio-cogeo writes the COG from that VRT; so
each pixel is decoded once, and the JP2 decoding, not the copy, sets the pace. A product's
folder is written under a temporary name and renamed when complete; a rerun skips products
already converted with the same options. One writer per output folder (a lock beside it); the
temporary folders a killed run left are removed by the next one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import rasterio

from eolab.core import atomic, lock
from eolab.core.disk import disk_full_error
from eolab.core.errors import ConfigError, EolabError
from eolab.sentinel2 import decode, rawfile, safe
from eolab.sentinel2.listing import PRODUCT_JSON, write_listing

log = logging.getLogger(__name__)

# --- layout ------------------------------------------------------------------------------------
GROUPS: tuple[str, ...] = decode.GROUPS
METADATA_FILES = (safe.PRODUCT_METADATA, safe.TILE_METADATA)
COMPRESSIONS = ("deflate", "zstd")
RESAMPLINGS = ("average", "nearest")
BLOCKSIZE = 512


def cog_path(outdir: str | os.PathLike, product_id: str, group: str) -> Path:
    """``<outdir>/<product_id>/<group>.tif``."""
    return Path(outdir) / product_id / f"{group}.tif"


@dataclass(frozen=True)
class CogOptions:
    """How the COGs are written (recorded in ``product.json``; a change triggers a rewrite)."""

    compress: str = "deflate"
    blocksize: int = BLOCKSIZE
    overview_resampling: str = "average"

    def __post_init__(self) -> None:
        if self.compress not in COMPRESSIONS:
            raise ConfigError(f"COG compression {self.compress!r}: expected one of {COMPRESSIONS}")
        if self.overview_resampling not in RESAMPLINGS:
            raise ConfigError(
                f"overview resampling {self.overview_resampling!r}: expected one of {RESAMPLINGS}"
            )
        if self.blocksize < 16 or self.blocksize % 16:
            raise ConfigError(f"COG block size {self.blocksize}: expected a multiple of 16")

    def profile(self, threads: int = 1) -> dict[str, Any]:
        """rio-cogeo output profile: tiled, pixel interleaved, predictor 2 for integers."""
        from rio_cogeo.profiles import cog_profiles

        with warnings.catch_warnings():  # "non-standard compression schema: zstd" is known
            warnings.simplefilter("ignore", UserWarning)
            profile = dict(cog_profiles.get(self.compress))
        profile.update(
            blockxsize=self.blocksize,
            blockysize=self.blocksize,
            predictor=2,
            interleave="pixel",
            num_threads=str(threads),
        )
        return profile


def band_vrt(raw: Path, offset: int, product: safe.SafeProduct, group: str) -> str:
    """A VRT over a raw (bands, rows, cols) uint16 file, with everything the COG should carry."""
    info = decode.product_info(product)
    bands = safe.BAND_GROUPS[group]
    geo = product.geoposition(group)
    scales, offsets = info.scales(bands), info.offsets(bands)
    plane = geo.nrows * geo.ncols * decode.DTYPE.itemsize
    parts = []
    for i, band in enumerate(bands):
        parts.append(
            f'<VRTRasterBand dataType="UInt16" band="{i + 1}" subClass="VRTRawRasterBand">'
            f"<Description>{band}</Description><NoDataValue>{safe.NODATA}</NoDataValue>"
            f"<Offset>{offsets[i]!r}</Offset><Scale>{scales[i]!r}</Scale>"
            f'<Metadata><MDI key="wavelength_nm">{safe.WAVELENGTH_NM[band]}</MDI>'
            f'<MDI key="band">{band}</MDI>'
            f'<MDI key="radio_add_offset">{info.radio_offsets.get(band, 0)}</MDI></Metadata>'
            f'<SourceFilename relativeToVRT="0">{escape(str(raw))}</SourceFilename>'
            f"<ImageOffset>{offset + i * plane}</ImageOffset><PixelOffset>2</PixelOffset>"
            f"<LineOffset>{geo.ncols * 2}</LineOffset><ByteOrder>LSB</ByteOrder>"
            "</VRTRasterBand>"
        )
    t = geo.transform
    return (
        f'<VRTDataset rasterXSize="{geo.ncols}" rasterYSize="{geo.nrows}">'
        f"<SRS>EPSG:{product.epsg}</SRS>"
        f"<GeoTransform>{t.c!r}, {t.a!r}, {t.b!r}, {t.f!r}, {t.d!r}, {t.e!r}</GeoTransform>"
        + "".join(parts)
        + "</VRTDataset>"
    )


def check_cog(path: Path, blocksize: int) -> None:
    """rio-cogeo validation, plus tiles and overviews on rasters larger than one tile (a tiny
    striped GeoTIFF passes ``cog_validate`` too)."""
    from rio_cogeo.cogeo import cog_validate

    valid, errors, _ = cog_validate(str(path), quiet=True)
    if not valid:
        raise EolabError(f"{path}: not a valid COG ({'; '.join(errors)})")
    with rasterio.open(path) as src:
        if max(src.width, src.height) > blocksize:
            if set(src.block_shapes) != {(blocksize, blocksize)}:
                raise EolabError(f"{path}: blocks {src.block_shapes}, expected {blocksize} tiles")
            if not src.overviews(1):
                raise EolabError(f"{path}: no overviews on a {src.width}x{src.height} raster")


def _write_group_cog(
    product: safe.SafeProduct,
    group: str,
    raw: Path,
    offset: int,
    dest: Path,
    options: CogOptions,
    threads: int,
) -> None:
    from rio_cogeo.cogeo import cog_translate

    vrt = raw.with_suffix(".vrt")
    vrt.write_text(band_vrt(raw, offset, product, group), encoding="utf-8")
    cog_translate(
        str(vrt),
        str(dest),
        options.profile(threads),
        overview_resampling=options.overview_resampling,
        forward_band_tags=True,
        in_memory=False,
        quiet=True,
        config={
            "GDAL_NUM_THREADS": str(threads),
            "GDAL_TIFF_OVR_BLOCKSIZE": str(options.blocksize),
            "GDAL_PAM_ENABLED": "NO",
        },
        additional_cog_metadata={"PRODUCT_ID": product.id, "GROUP": group},
    )
    vrt.unlink()
    check_cog(dest, options.blocksize)


def _done(dest: Path, options: CogOptions) -> dict[str, Any] | None:
    """The ``product.json`` of a product already converted with these options, else None."""
    try:
        doc = json.loads((dest / PRODUCT_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    complete = all((dest / f"{g}.tif").is_file() for g in GROUPS)
    return doc if complete and doc.get("cog") == asdict(options) else None


def product_to_cog(
    safe_path: str | os.PathLike,
    outdir: str | os.PathLike,
    options: CogOptions | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Convert one SAFE product to ``<outdir>/<id>/{10m,20m,60m}.tif``; returns product.json."""
    options = options or CogOptions()
    product = safe.read_safe(safe_path)
    info = decode.product_info(product)
    dest = Path(outdir) / info.id
    done = _done(dest, options)
    if done is not None:
        return done
    with atomic.atomic_path(dest) as tmp:
        tmp.mkdir()
        raws, maps = {}, {}
        for g in GROUPS:
            raws[g] = tmp / f".{g}.raw.npy"
            maps[g] = rawfile.allocate_npy(raws[g], decode.DTYPE, decode.group_shape(product, g))
        decode.decode_bands(product, GROUPS, out=maps.__getitem__, workers=workers)
        offsets = {g: int(maps[g].offset) for g in GROUPS}
        for g in GROUPS:
            maps[g].flush()
        maps.clear()
        for g in GROUPS:
            threads = workers or decode.default_workers()
            _write_group_cog(product, g, raws[g], offsets[g], tmp / f"{g}.tif", options, threads)
            raws[g].unlink()
        for name, src in (
            (safe.PRODUCT_METADATA, product.metadata_path),
            (safe.TILE_METADATA, product.tile_metadata_path),
        ):
            shutil.copyfile(src, tmp / name)
        doc = {
            **info.as_json(),
            "bands": {g: list(safe.BAND_GROUPS[g]) for g in GROUPS},
            "files": {g: f"{g}.tif" for g in GROUPS},
            "cog": asdict(options),
        }
        atomic.write_json(tmp / PRODUCT_JSON, doc)
    return doc


def products_to_cog(
    safe_paths: Iterable[str | os.PathLike],
    outdir: str | os.PathLike,
    options: CogOptions | None = None,
    listing: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
    tile: str | None = None,
    year: int | None = None,
) -> list[dict[str, Any]]:
    """Convert many products; optionally write a listing JSON (paths relative to its folder)."""
    from eolab.core.progress import bar as progress_bar

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    with lock.exclusive(outdir):
        for tmp in atomic.remove_temps(outdir):
            log.warning("%s: removed the temporary folder of an interrupted run", tmp)
        full = disk_full_error(
            lambda exc: (
                f"{exc.filename or outdir}: disk full while writing COGs under {outdir} "
                "(free some space and rerun: finished products are kept)"
            )
        )
        with full:
            docs = [
                product_to_cog(p, outdir, options, workers)
                for p in progress_bar(
                    list(safe_paths), desc="cog", unit="product", disable=not progress
                )
            ]
        docs.sort(key=lambda d: (d["datetime"], d["id"]))
        if listing is not None:
            write_listing(listing, outdir, docs, tile=tile, year=year)
    return docs
