"""CDSE-shaped STAC items made from local SAFE products (for test servers and offline catalogs).

Mirrors a real ``sentinel-2-l1c`` item of the CDSE STAC API (``samples/cdse/``): id = product
name, ``grid:code`` = ``MGRS-<tile>``, the ``enclosure`` link to the SAFE folder on S3, band and
metadata assets with ``file:size`` and ``file:checksum`` (SHA3-256 multihash from manifest.safe
for data files, MD5 for ``manifest.safe`` itself, as CDSE does), and the ``Product`` zip asset.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from eolab.core.errors import InputError
from eolab.core.hashing import file_multihash, multihash_hex

STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v2.0.0/schema.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "https://stac-extensions.github.io/product/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/sat/v1.1.0/schema.json",
    "https://stac-extensions.github.io/storage/v2.0.0/schema.json",
]


def safe_key(product) -> str:
    """``Sentinel-2/MSI/L1C/YYYY/MM/DD/<name>.SAFE``: CDSE files products by sensing date."""
    t = product.datatake_start
    return f"Sentinel-2/MSI/L1C/{t:%Y/%m/%d}/{product.id}.SAFE"


def _geometry(product, tile: str) -> dict[str, Any]:
    """The data footprint from MTD_MSIL1C.xml, else the tile square."""
    from eolab.intake.search import tile_footprint

    try:
        ring = [[round(x, 7), round(y, 7)] for x, y in product.footprint]
    except InputError:  # EXT_POS_LIST is optional here; fall back to the tile square
        ring = []
    if len(ring) < 4:
        return tile_footprint(tile)
    if ring[0] != ring[-1]:
        ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def _bbox(geometry: dict[str, Any]) -> list[float]:
    xs = [p[0] for p in geometry["coordinates"][0]]
    ys = [p[1] for p in geometry["coordinates"][0]]
    return [min(xs), min(ys), max(xs), max(ys)]


def _file_asset(
    product, rel: str, href_root: str, sums: dict[str, str], title: str, media: str, roles
) -> dict[str, Any]:
    path = product.path / rel
    sha3 = sums.get(rel)
    if sha3 is None:  # not in manifest.safe (manifest.safe itself): CDSE gives an MD5
        checksum = file_multihash(path, "md5")
    else:
        checksum = multihash_hex("sha3_256", bytes.fromhex(sha3))
    return {
        "href": f"{href_root}/{rel}",
        "type": media,
        "title": title,
        "roles": list(roles),
        "file:size": path.stat().st_size,
        "file:checksum": checksum,
        "file:local_path": f"{product.path.name}/{rel}",
        "storage:refs": ["cdse-s3"],
    }


def item_from_safe(safe_path: str | Path, href_prefix: str = "s3://eodata/") -> dict[str, Any]:
    """A CDSE-shaped STAC item (dict) for a local SAFE folder; hrefs are
    ``<href_prefix>Sentinel-2/MSI/L1C/YYYY/MM/DD/<name>.SAFE/…``."""
    from eolab.sentinel2.safe import BAND_RESOLUTION, format_time, read_safe

    product = read_safe(safe_path)
    tile = product.tile
    root = href_prefix.rstrip("/") + "/" + safe_key(product)
    sums = {e.href: e.sha3_256 for e in product.manifest_files() if e.sha3_256}
    rel = lambda p: Path(os.path.relpath(p, product.path)).as_posix()  # noqa: E731
    time = format_time(product.datatake_start)
    geometry = _geometry(product, tile)
    assets: dict[str, Any] = {
        "safe_manifest": _file_asset(
            product, "manifest.safe", root, sums, "manifest.safe", "application/xml", ["metadata"]
        ),
        "product_metadata": _file_asset(
            product,
            rel(product.metadata_path),
            root,
            sums,
            "MTD_MSIL1C.xml",
            "application/xml",
            ["metadata"],
        ),  # fmt: skip
        "granule_metadata": _file_asset(
            product,
            rel(product.tile_metadata_path),
            root,
            sums,
            "MTD_TL.xml",
            "application/xml",
            ["metadata"],
        ),  # fmt: skip
    }
    if (product.path / "INSPIRE.xml").is_file():
        assets["inspire_metadata"] = _file_asset(
            product, "INSPIRE.xml", root, sums, "INSPIRE.xml", "application/xml", ["metadata"]
        )
    if product.datastrip_dir and (product.datastrip_dir / "MTD_DS.xml").is_file():
        assets["datastrip_metadata"] = _file_asset(
            product, rel(product.datastrip_dir / "MTD_DS.xml"), root, sums, "MTD_DS.xml",
            "application/xml", ["metadata"],
        )  # fmt: skip
    for band, res in BAND_RESOLUTION.items():
        asset = _file_asset(
            product, rel(product.band_path(band)), root, sums, f"{band} - {res}m", "image/jp2",
            ["data", "reflectance"],
        )  # fmt: skip
        geo = product.geoposition(res)
        asset.update(
            {
                "gsd": res,
                "data_type": "uint16",
                "nodata": 0,
                "raster:scale": 0.0001,
                "raster:offset": -0.1 if product.radio_offsets else 0.0,
                "proj:code": product.crs,
                "proj:shape": [geo.nrows, geo.ncols],
                "proj:transform": list(geo.transform)[:6],
                "bands": [{"name": band}],
            }
        )
        assets[band] = asset
    try:
        assets["TCI"] = _file_asset(
            product, rel(product.band_path("TCI")), root, sums, "True color image", "image/jp2",
            ["visual"],
        )  # fmt: skip
    except InputError:  # TCI is optional in fixtures
        pass
    assets["Product"] = {
        "href": f"https://download.dataspace.copernicus.eu/odata/v1/Products({product.id})/$value",
        "type": "application/zip",
        "title": "Zipped product",
        "roles": ["data", "metadata", "archive"],
        "auth:refs": ["oidc"],
    }
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": STAC_EXTENSIONS,
        "id": product.id,
        "collection": "sentinel-2-l1c",
        "geometry": geometry,
        "bbox": _bbox(geometry),
        "properties": {
            "datetime": time,
            "start_datetime": time,
            "end_datetime": time,
            "platform": f"sentinel-{product.mission[1:].lower()}",
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "gsd": 10,
            "processing:level": "L1",
            "processing:version": product.baseline,
            "processing:datetime": format_time(product.generation_time),
            "product:type": "S2MSI1C",
            "eo:cloud_cover": float(product.cloud_cover),
            "grid:code": f"MGRS-{tile}",
            "sat:relative_orbit": product.relative_orbit,
            "sat:absolute_orbit": product.absolute_orbit,
            "sat:orbit_state": product.orbit_direction.lower(),
            "storage:schemes": {
                "cdse-s3": {
                    "type": "custom-s3",
                    "platform": "https://eodata.dataspace.copernicus.eu",
                    "requester_pays": False,
                }
            },
        },
        "links": [
            {
                "rel": "enclosure",
                "href": root + "/",
                "type": "application/x-directory",
                "title": "S3 path to source directory",
                "storage:refs": ["cdse-s3"],
            }
        ],
        "assets": assets,
    }
