"""STAC items for the products eolab converts, in a static catalog under ``results/chips/stac``.

One item per SAFE product (id = product name), as CDSE describes the source (STAC 1.1,
``grid:code``, ``processing:level``, ``sat:*``) but with the converted COGs as assets: one asset
per resolution group (``10m``, ``20m``, ``60m``) with its ``bands`` (name, central wavelength),
``raster:scale``/``raster:offset`` (reflectance = DN × scale + offset), ``nodata``, projection v2
(``proj:code``, ``proj:shape``, ``proj:transform``, ``proj:bbox``) and ``file:size`` /
``file:checksum`` (multihash sha2-256, ``1220`` + hex). The L1C cloud mask ``MSK_CLASSI_B00``
stays an asset pointing into the SAFE product (the chip index reads it). Item-level ``proj:*``
describe the finest grid (10 m), which the chip index cuts.

Layout: ``<root>/<collection>/collection.json``, ``<root>/<collection>/<item>/<item>.json``
(one collection per tile-year, so tile-years are written by independent jobs), and
``<root>/catalog.json`` linking the collections. Hrefs are relative: the tree moves as a whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pystac
import rasterio
import shapely
from pyproj import Transformer

from eolab.core.atomic import atomic_path, write_json
from eolab.core.errors import InputError
from eolab.core.hashing import file_multihash
from eolab.sentinel2.listing import read_listing
from eolab.sentinel2.safe import BAND_GROUPS, RESOLUTION, WAVELENGTH_NM, SafeProduct, read_safe

STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v2.0.0/schema.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v2.0.0/schema.json",
    "https://stac-extensions.github.io/sat/v1.1.0/schema.json",
]
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


def file_fields(path: Path) -> dict[str, Any]:
    """STAC ``file:size`` and ``file:checksum`` (multihash sha2-256, ``1220…``) of a file."""
    return {"file:size": path.stat().st_size, "file:checksum": file_multihash(path, "sha256")}


def raster_fields(path: Path) -> dict[str, Any]:
    """Projection v2 fields, data type and band names of a raster file (read from the file)."""
    try:
        with rasterio.open(path) as src:
            t, (h, w) = src.transform, src.shape
            return {
                "proj:code": src.crs.to_string() if src.crs else None,
                "proj:shape": [h, w],
                "proj:transform": [t.a, t.b, t.c, t.d, t.e, t.f],
                "proj:bbox": list(src.bounds),
                "data_type": src.dtypes[0],
                "_descriptions": list(src.descriptions),
                "_count": src.count,
            }
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"{path}: cannot open raster ({exc})") from exc


def footprint(safe: SafeProduct) -> dict[str, Any]:
    """The data footprint (lon/lat polygon) from the metadata, else the tile's corners."""
    try:
        ring = safe.footprint
        if len(ring) >= 4:
            return shapely.geometry.mapping(shapely.make_valid(shapely.Polygon(ring)))
    except (InputError, ValueError):
        pass
    left, bottom, right, top = safe.geoposition(10).bounds
    to_wgs = Transformer.from_crs(safe.crs, "EPSG:4326", always_xy=True)
    xs, ys = to_wgs.transform([left, right, right, left], [bottom, bottom, top, top])
    return shapely.geometry.mapping(shapely.Polygon(zip(xs, ys, strict=True)))


def cog_asset(safe: SafeProduct, group: str, path: Path) -> pystac.Asset:
    """The asset of one resolution group's COG, checked against the SAFE's georeferencing."""
    fields = raster_fields(path)
    names = BAND_GROUPS[group]
    descriptions = fields.pop("_descriptions")
    count = fields.pop("_count")
    if count != len(names) or any(d and d != n for d, n in zip(descriptions, names, strict=True)):
        raise InputError(f"{path}: bands {descriptions} (count {count}), expected {names}")
    geo = safe.geoposition(RESOLUTION[group])
    if (
        fields["proj:shape"] != list(geo.shape)
        or fields["proj:transform"][:6] != list(geo.transform)[:6]
    ):
        raise InputError(f"{path}: grid differs from the SAFE's {group} geoposition")
    quant = safe.quantification_value
    offsets = {safe.radio_offsets.get(n, 0) for n in names}
    if len(offsets) != 1:
        raise InputError(f"{safe.metadata_path}: bands of {group} have different offsets")
    bands = [{"name": n, "eo:center_wavelength": round(WAVELENGTH_NM[n] / 1000, 4)} for n in names]
    return pystac.Asset(
        href=str(path),
        media_type=COG_TYPE,
        title=f"{', '.join(names)} at {group}",
        roles=["data", "reflectance"],
        extra_fields={
            "bands": bands,
            "nodata": safe.nodata,
            "raster:scale": 1.0 / quant,
            "raster:offset": offsets.pop() / quant,
            "gsd": RESOLUTION[group],
            **fields,
            **file_fields(path),
        },
    )


def mask_asset(path: Path) -> pystac.Asset:
    """The L1C cloud mask ``MSK_CLASSI_B00.jp2`` (3 layers: opaque clouds, cirrus, snow/ice)."""
    fields = raster_fields(path)
    fields.pop("_descriptions")
    fields.pop("_count")
    return pystac.Asset(
        href=str(path),
        media_type="image/jp2",
        title="Cloud and snow classification (opaque clouds, cirrus, snow/ice)",
        roles=["cloud", "snow-ice", "data-mask"],
        extra_fields={
            "bands": [{"name": n} for n in ("opaque_clouds", "cirrus", "snow_ice")],
            "gsd": 60,
            **fields,
            **file_fields(path),
        },
    )


def product_item(safe_path: str | Path, cogs: dict[str, str | Path]) -> pystac.Item:
    """The STAC item of one converted product: ``cogs`` maps ``10m``/``20m``/``60m`` to files."""
    safe = read_safe(safe_path)
    missing = sorted(set(BAND_GROUPS) - set(cogs))
    if missing:
        raise InputError(f"{safe.id}: no COG for {missing}")
    geometry = footprint(safe)
    geo10 = safe.geoposition(10)
    t = geo10.transform
    props = {
        "platform": safe.spacecraft.lower(),
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "processing:level": "L1C",
        "processing:version": safe.baseline,
        "grid:code": f"MGRS-{safe.tile}",
        "sat:relative_orbit": safe.relative_orbit,
        "sat:orbit_state": safe.orbit_direction.lower(),
        "eo:cloud_cover": safe.cloud_cover,
        "proj:code": safe.crs,
        "proj:shape": list(geo10.shape),
        "proj:transform": [t.a, t.b, t.c, t.d, t.e, t.f],
        "proj:bbox": list(geo10.bounds),
        "start_datetime": safe.datatake_start.isoformat().replace("+00:00", "Z"),
        "end_datetime": safe.sensing_time.isoformat().replace("+00:00", "Z"),
    }
    if safe.absolute_orbit is not None:
        props["sat:absolute_orbit"] = safe.absolute_orbit
    item = pystac.Item(
        id=safe.id,
        geometry=geometry,
        bbox=list(shapely.bounds(shapely.geometry.shape(geometry))),
        datetime=safe.sensing_time,  # as the COG listing and the cube's time axis
        properties=props,
        stac_extensions=list(STAC_EXTENSIONS),
    )
    for group in BAND_GROUPS:
        item.add_asset(group, cog_asset(safe, group, Path(cogs[group]).resolve()))
    if safe.cloud_mask_path is not None:
        item.add_asset("MSK_CLASSI_B00", mask_asset(safe.cloud_mask_path.resolve()))
    item.add_link(pystac.Link("derived_from", str(safe.path.resolve()), title="SAFE product"))
    return item


def items_from_listing(
    listing: str | Path,
    products: str | Path,
    out_dir: str | Path,
    collection_id: str | None = None,
    progress: bool = True,
) -> tuple[Path, int]:
    """Items for every product of a COG listing (``eolab sentinel2 to-cog --listing``), with
    SAFE folders from the products manifest, written as one collection at ``out_dir``."""
    from eolab.core.progress import bar as progress_bar
    from eolab.sentinel2.products import usable_products

    listing = Path(listing)
    doc = read_listing(listing)
    entries = doc["products"]
    safes = {p["id"]: (Path(products).parent / p["path"]) for p in usable_products(products)}
    items = []
    for entry in progress_bar(entries, desc="stac items", unit="item", disable=not progress):
        if entry["id"] not in safes:
            raise InputError(f"{products}: no SAFE product {entry['id']} (listed in {listing})")
        cogs = {g: listing.parent / rel for g, rel in entry["cogs"].items()}
        items.append(product_item(safes[entry["id"]], cogs))
    tile, year = doc.get("tile"), doc.get("year")
    collection_id = collection_id or f"sentinel-2-l1c-{tile}-{year}".lower()
    description = f"Sentinel-2 L1C {tile} {year} converted to COGs by eolab"
    return write_collection(items, out_dir, collection_id, description), len(items)


def write_collection(
    items: list[pystac.Item], out_dir: str | Path, collection_id: str, description: str
) -> Path:
    """Write a self-contained collection of ``items`` at ``out_dir`` (replaced atomically)."""
    out_dir = Path(out_dir)
    if not items:
        raise InputError(f"{collection_id}: no items to write")
    times = sorted(i.datetime for i in items)
    boxes = [i.bbox for i in items]
    bbox = [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]
    collection = pystac.Collection(
        id=collection_id,
        description=description,
        extent=pystac.Extent(
            pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[times[0], times[-1]]])
        ),
        license="other",
        stac_extensions=list(STAC_EXTENSIONS),
    )
    for item in sorted(items, key=lambda i: (i.datetime, i.id)):
        collection.add_item(item)
    # The temporary folder sits beside out_dir, so relative hrefs are the same once renamed.
    with atomic_path(out_dir) as tmp:
        collection.normalize_hrefs(str(tmp / "collection.json"))  # tmp ends in .tmp
        collection.make_all_asset_hrefs_relative()
        for item in collection.get_items():
            for link in item.links:
                if link.rel == "derived_from":
                    link.target = _relative(link.get_absolute_href(), tmp / item.id)
        collection.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return out_dir / "collection.json"


def _relative(target: str, start: Path) -> str:
    return os.path.relpath(target, start)


def write_root_catalog(collections: list[str | Path], out: str | Path) -> Path:
    """Write ``catalog.json`` with relative child links to the given collection files."""
    out = Path(out)
    links = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
    for path in sorted(Path(p) for p in collections):
        if not path.is_file():
            raise InputError(f"{path}: collection file not found")
        title = json.loads(path.read_text(encoding="utf-8")).get("id", path.parent.name)
        rel = _relative(str(path.resolve()), out.parent.resolve())
        links.append(
            {"rel": "child", "href": f"./{rel}", "type": "application/json", "title": title}
        )
    write_json(
        out,
        {
            "type": "Catalog",
            "stac_version": pystac.get_stac_version(),
            "id": "eolab",
            "description": "Products converted by eolab (COGs) with their cloud masks.",
            "links": links,
        },
    )
    return out
