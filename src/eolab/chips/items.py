"""STAC items for the products eolab converts, in a static catalog under ``results/chips/stac``.

One item per SAFE product (id = product name), as CDSE describes the source (STAC 1.1,
``grid:code``, ``processing:level``, ``sat:*``) but with the converted COGs as assets: one asset
per resolution group (``10m``, ``20m``, ``60m``) with its bands, ``nodata``, projection v2
(``proj:code``, ``proj:shape``, ``proj:transform``, ``proj:bbox``) and ``file:size`` /
``file:checksum`` (multihash sha2-256, ``1220`` + hex). The L1C cloud mask ``MSK_CLASSI_B00``
stays an asset pointing into the SAFE product (the chip index reads it). Item-level ``proj:*``
describe the finest grid (10 m), which the chip index cuts.

Bands are described three ways, each for the readers that use it: STAC 1.1 ``bands`` (names),
eo v1.1 ``eo:bands`` (name, common name, central wavelength in µm) and raster v1.1
``raster:bands`` (nodata, data type, ``scale``/``offset``: reflectance = DN × scale + offset).
pystac's ``EOExtension``/``RasterExtension`` accessors, odc-stac (band aliases) and stackstac
(``rescale``) read only the v1.1 fields; eo/raster v2 would forbid them beside their own.

Every band also gets a single-band asset keyed by its name (``B04``): a small VRT in the item's
folder pointing (relative) at its band of the per-resolution COG. stackstac accepts only
single-band assets, and odc-stac then loads ``bands=["B04"]`` by asset key; a VRT costs a few
hundred bytes where per-band COGs would double the storage. These assets carry the role
``band-view`` so the chipper does not read a band twice.

Layout: ``<root>/<collection>/collection.json``, ``<root>/<collection>/<item>/<item>.json``
(one collection per tile-year, so tile-years are written by independent jobs), and
``<root>/catalog.json`` linking the collections (every ``root`` link points at it, every
collection's ``parent`` too). Hrefs are relative: the tree moves as a whole.
``export_catalog`` writes a copy with absolute hrefs (optionally rebased onto an ``s3://`` or
``https://`` prefix) for readers that do not resolve relative hrefs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pystac
import rasterio
import shapely
from pyproj import Transformer

from eolab.core.atomic import atomic_path, write_json
from eolab.core.errors import InputError
from eolab.core.hashing import file_multihash
from eolab.sentinel2.listing import read_listing
from eolab.sentinel2.safe import BAND_GROUPS, RESOLUTION, WAVELENGTH_NM, SafeProduct, read_safe

EXT = "https://stac-extensions.github.io/{}/schema.json"
STAC_EXTENSIONS = [
    EXT.format(e)
    for e in (
        "eo/v1.1.0",
        "file/v2.1.0",
        "grid/v1.1.0",
        "processing/v1.2.0",
        "projection/v2.0.0",
        "raster/v1.1.0",
        "sat/v1.1.0",
    )
]
#: A collection declares only the extensions its own fields use (no file: fields there) and whose
#: schema has a Collection branch (grid v1.1.0 validates Items only; ``grid:code`` stays in the
#: summaries, which core STAC allows for any field).
COLLECTION_EXTENSIONS = [e for e in STAC_EXTENSIONS if "/file/" not in e and "/grid/" not in e]
#: eo v1.1 common names of the Sentinel-2 MSI bands.
COMMON_NAME = {
    "B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge",
    "B06": "rededge", "B07": "rededge", "B08": "nir", "B8A": "nir08", "B09": "nir09",
    "B10": "cirrus", "B11": "swir16", "B12": "swir22",
}  # fmt: skip
#: Role of the single-band VRT assets (readers of the per-resolution COGs skip them).
BAND_VIEW_ROLE = "band-view"
ROOT_CATALOG = "catalog.json"
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
    return pystac.Asset(
        href=str(path),
        media_type=COG_TYPE,
        title=f"{', '.join(names)} at {group}",
        roles=["data", "reflectance"],
        extra_fields={
            **band_fields(
                names, safe.nodata, fields["data_type"], 1.0 / quant, offsets.pop() / quant
            ),
            "gsd": RESOLUTION[group],
            **fields,
            **file_fields(path),
        },
    )


def band_fields(
    names: list[str], nodata: int, data_type: str, scale: float, offset: float
) -> dict[str, Any]:
    """STAC 1.1 ``bands``, eo v1.1 ``eo:bands`` and raster v1.1 ``raster:bands`` of bands."""
    return {
        "bands": [
            {
                "name": n,
                "eo:center_wavelength": round(WAVELENGTH_NM[n] / 1000, 4),
                "nodata": nodata,
                "data_type": data_type,
            }
            for n in names
        ],
        "eo:bands": [
            {
                "name": n,
                "common_name": COMMON_NAME[n],
                "center_wavelength": round(WAVELENGTH_NM[n] / 1000, 4),
            }
            for n in names
        ],
        "raster:bands": [
            {
                "nodata": nodata,
                "data_type": data_type,
                "spatial_resolution": RESOLUTION[_group_of(n)],
                "scale": scale,
                "offset": offset,
            }
            for n in names
        ],
        "nodata": nodata,
    }


def _group_of(band: str) -> str:
    return next(g for g, names in BAND_GROUPS.items() if band in names)


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
    items: list[pystac.Item],
    out_dir: str | Path,
    collection_id: str,
    description: str,
    root_catalog: str | Path | None = None,
) -> Path:
    """Write a self-contained collection of ``items`` at ``out_dir`` (replaced atomically), with
    single-band VRT assets beside each item and ``root``/``parent`` links to ``root_catalog``
    (default: ``catalog.json`` beside ``out_dir``, which ``write_root_catalog`` writes)."""
    out_dir = Path(out_dir)
    if not items:
        raise InputError(f"{collection_id}: no items to write")
    root_path = Path(root_catalog or out_dir.parent / ROOT_CATALOG).resolve()
    collection = new_collection(items, collection_id, description)
    for item in sorted(items, key=lambda i: (i.datetime, i.id)):
        collection.add_item(item)
    root = pystac.Catalog(id="eolab", description=ROOT_DESCRIPTION)
    root.set_self_href(str(root_path))
    # The temporary folder sits beside out_dir, so relative hrefs are the same once renamed.
    with atomic_path(out_dir) as tmp:
        collection.normalize_hrefs(str(tmp / "collection.json"))  # tmp ends in .tmp
        for item in collection.get_items():
            add_band_views(item, tmp / item.id)
        collection.extra_fields["item_assets"] = item_assets(items)
        collection.make_all_asset_hrefs_relative()
        collection.set_root(root)
        collection.set_parent(root)
        for item in collection.get_items():
            item.set_root(root)
            for link in item.links:
                if link.rel == "derived_from":
                    link.target = _relative(link.get_absolute_href(), tmp / item.id)
        collection.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return out_dir / "collection.json"


ROOT_DESCRIPTION = "Products converted by eolab (COGs) with their cloud masks."


def new_collection(items: list[pystac.Item], collection_id: str, description: str):
    """The collection of ``items``: extent and ``summaries`` from the items."""
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
        stac_extensions=list(COLLECTION_EXTENSIONS),
        summaries=pystac.Summaries(summaries(items)),
    )
    return collection


def summaries(items: list[pystac.Item]) -> dict[str, Any]:
    """Collection summaries: the distinct values of the items' fields (ranges for numbers)."""

    def distinct(key: str) -> list:
        return sorted({i.properties[key] for i in items if key in i.properties})

    clouds = [i.properties["eo:cloud_cover"] for i in items]
    bands = [b for g in BAND_GROUPS for b in BAND_GROUPS[g]]
    return {
        "platform": distinct("platform"),
        "constellation": distinct("constellation"),
        "instruments": ["msi"],
        "gsd": sorted({RESOLUTION[g] for g in BAND_GROUPS}),
        "eo:cloud_cover": {"minimum": min(clouds), "maximum": max(clouds)},
        "eo:bands": [
            {
                "name": b,
                "common_name": COMMON_NAME[b],
                "center_wavelength": round(WAVELENGTH_NM[b] / 1000, 4),
            }
            for b in sorted(bands, key=WAVELENGTH_NM.get)
        ],
        "grid:code": distinct("grid:code"),
        "processing:level": distinct("processing:level"),
        "processing:version": distinct("processing:version"),
        "proj:code": distinct("proj:code"),
        "sat:relative_orbit": distinct("sat:relative_orbit"),
        "sat:orbit_state": distinct("sat:orbit_state"),
    }


#: Asset fields that describe every item's asset alike (``item_assets``).
ITEM_ASSET_FIELDS = ("title", "type", "roles", "bands", "eo:bands", "raster:bands", "gsd")


def item_assets(items: list[pystac.Item]) -> dict[str, dict[str, Any]]:
    """``item_assets``: per asset key, the fields all items share (the first item's values,
    minus the per-date scale/offset and the per-file size, checksum and grid)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        for key, asset in item.assets.items():
            if key in out:
                continue
            doc = asset.to_dict()
            entry = {k: doc[k] for k in ITEM_ASSET_FIELDS if k in doc}
            if "raster:bands" in entry:  # the offset depends on the date's baseline
                entry["raster:bands"] = [
                    {k: v for k, v in b.items() if k not in ("scale", "offset")}
                    for b in entry["raster:bands"]
                ]
            out[key] = entry
    return out


def vrt_xml(cog: Path, band: int, name: str, fields: dict[str, Any], href: str) -> str:
    """A one-band VRT over band ``band`` of ``cog`` (``href`` relative to the VRT's folder)."""
    h, w = fields["proj:shape"]
    a, b, c, d, e, f = fields["proj:transform"][:6]
    with rasterio.open(cog) as src:
        wkt = src.crs.to_wkt()
        bw, bh = src.block_shapes[band - 1][::-1]
    dtype = {"uint16": "UInt16", "uint8": "Byte"}[fields["data_type"]]
    rect = f'xOff="0" yOff="0" xSize="{w}" ySize="{h}"'
    return (
        f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}">\n'
        f"  <SRS>{escape(wkt)}</SRS>\n"
        f"  <GeoTransform>{c!r}, {a!r}, {b!r}, {f!r}, {d!r}, {e!r}</GeoTransform>\n"
        f'  <VRTRasterBand dataType="{dtype}" band="1">\n'
        f"    <Description>{name}</Description>\n"
        f"    <NoDataValue>{fields['nodata']}</NoDataValue>\n"
        "    <SimpleSource>\n"
        f'      <SourceFilename relativeToVRT="1">{escape(href)}</SourceFilename>\n'
        f"      <SourceBand>{band}</SourceBand>\n"
        f'      <SourceProperties RasterXSize="{w}" RasterYSize="{h}" DataType="{dtype}"'
        f' BlockXSize="{bw}" BlockYSize="{bh}"/>\n'
        f"      <SrcRect {rect}/>\n      <DstRect {rect}/>\n"
        "    </SimpleSource>\n  </VRTRasterBand>\n</VRTDataset>\n"
    )


def add_band_views(item: pystac.Item, folder: Path) -> None:
    """Add a single-band VRT asset per band of the item's per-resolution COGs, written to
    ``folder`` (the item's folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    for group in BAND_GROUPS:
        asset = item.assets[group]
        cog = Path(asset.get_absolute_href())
        fields = asset.extra_fields
        for k, name in enumerate(BAND_GROUPS[group]):
            vrt = folder / f"{name}.vrt"
            rel = _relative(str(cog), folder)
            vrt.write_text(vrt_xml(cog, k + 1, name, fields, rel), encoding="utf-8")
            one = {key: [v[k]] for key, v in fields.items() if key.endswith("bands")}
            grid = {key: v for key, v in fields.items() if key.startswith("proj:")}
            item.add_asset(
                name,
                pystac.Asset(
                    href=str(vrt),
                    title=f"{name} (band {k + 1} of {group}; GDAL VRT)",
                    roles=["data", "reflectance", BAND_VIEW_ROLE],
                    extra_fields={
                        **one,
                        "nodata": fields["nodata"],
                        "data_type": fields["data_type"],
                        "gsd": fields["gsd"],
                        **grid,
                    },
                ),
            )


def read_stac(path: str | Path) -> pystac.STACObject:
    """Read a STAC file; a collection whose root catalog is not written yet (``eolab chips
    catalog`` runs after every tile-year) becomes its own root in memory."""
    obj = pystac.read_file(str(path))
    link = obj.get_single_link("root")
    if link is not None and not link.href.startswith(("http://", "https://", "s3://")):
        if not Path(link.get_absolute_href() or "").is_file():
            obj.set_root(obj if isinstance(obj, pystac.Catalog) else None)
    return obj


def export_catalog(
    catalog: str | Path,
    out_dir: str | Path,
    base: str | Path | None = None,
    href_prefix: str | None = None,
) -> Path:
    """Copy ``catalog`` (JSON only) to ``out_dir`` with absolute asset and ``derived_from``
    hrefs, for readers that resolve relative hrefs against their working folder (stackstac) or
    a catalog published apart from the data. With ``href_prefix``, paths under ``base`` are
    rebased onto it (``s3://bucket/results``, ``https://host/results``) once the tree under
    ``base`` is copied there; links between the JSON files stay relative."""
    catalog, out_dir = Path(catalog), Path(out_dir)
    if href_prefix is not None and base is None:
        raise InputError("--href-prefix needs --base (the folder the prefix stands for)")
    base_path = Path(base).resolve() if base is not None else None
    try:
        root = pystac.read_file(str(catalog.resolve()))
    except (OSError, ValueError, pystac.STACError) as exc:
        raise InputError(f"{catalog}: not a readable STAC catalog ({exc})") from exc
    if not isinstance(root, pystac.Catalog):
        raise InputError(f"{catalog}: expected a STAC catalog or collection")

    def rebase(href: str) -> str:
        if href_prefix is None or base_path is None:
            return href
        path = Path(href)
        if not path.is_relative_to(base_path):
            raise InputError(f"{href}: not under --base {base_path}")
        return f"{href_prefix.rstrip('/')}/{path.relative_to(base_path).as_posix()}"

    for item in root.get_items(recursive=True):
        for asset in item.assets.values():
            asset.href = rebase(asset.get_absolute_href())
        for link in item.links:
            if link.rel == "derived_from":
                link.target = rebase(link.get_absolute_href())
    root.set_root(root)  # every resolved object's root is this copy, not the file it came from
    with atomic_path(out_dir) as tmp:
        root.normalize_hrefs(str(tmp / "catalog.json"))  # tmp ends in .tmp: not a folder name
        root.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return out_dir / catalog.name


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
            "description": ROOT_DESCRIPTION,
            "links": links,
        },
    )
    return out
