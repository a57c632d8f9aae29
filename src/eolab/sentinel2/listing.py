"""The COG listing: the JSON ``eolab sentinel2 to-cog --listing`` writes, read by the storage lab
(staging, patch loader) and the chips STAC items.

Format (version 1; paths relative to the listing's folder)::

    {"version": 1, "tile": "32TQM" | [...], "year": 2024 | [...],
     "bands": {"10m": ["B02", ...], ...},
     "products": [{"id", "tile", "datetime", "orbit_direction", "baseline",
                   "cogs": {"10m": "<id>/10m.tif", "20m": ..., "60m": ...},
                   "metadata": "<id>/product.json"}, ...]}

Products are in time order (datetime, then id).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from eolab.core import atomic
from eolab.core.errors import InputError
from eolab.sentinel2.safe import BAND_GROUPS

LISTING_VERSION = 1
GROUPS: tuple[str, ...] = tuple(BAND_GROUPS)
PRODUCT_JSON = "product.json"


def write_listing(
    listing: str | os.PathLike,
    outdir: str | os.PathLike,
    docs: list[dict],
    tile: str | None = None,
    year: int | None = None,
) -> None:
    """Write the listing of every converted product (``docs``: the products' ``product.json``
    documents, in time order), atomically."""
    listing = Path(listing)
    base = listing.parent.resolve()

    def rel(path: Path) -> str:
        return Path(os.path.relpath(path.resolve(), base)).as_posix()

    products = []
    for d in docs:
        folder = Path(outdir) / d["id"]
        products.append(
            {
                "id": d["id"],
                "tile": d["tile"],
                "datetime": d["datetime"],
                "orbit_direction": d["orbit_direction"],
                "baseline": d["baseline"],
                "cogs": {g: rel(folder / f"{g}.tif") for g in GROUPS},
                "metadata": rel(folder / PRODUCT_JSON),
            }
        )
    tiles = sorted({d["tile"] for d in docs} | ({tile} if tile else set()))
    years = sorted({int(d["datetime"][:4]) for d in docs} | ({int(year)} if year else set()))
    atomic.write_json(
        listing,
        {
            "version": LISTING_VERSION,
            "tile": tiles[0] if len(tiles) == 1 else tiles,
            "year": years[0] if len(years) == 1 else years,
            "bands": {g: list(BAND_GROUPS[g]) for g in GROUPS},
            "products": products,
        },
    )


def read_listing(path: str | os.PathLike, text: str | None = None) -> dict[str, Any]:
    """The listing document, checked to list every group's COG for each product (``text``: its
    content, when read from elsewhere than ``path``, e.g. S3)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8") if text is None else text)
        for product in doc["products"]:
            missing = [g for g in GROUPS if g not in product["cogs"]]
            if missing or "id" not in product:
                raise KeyError(f"{product.get('id', 'a product')} lacks {missing or 'an id'}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a readable COG listing ({exc!r})") from exc
    return doc


def cog_items(path: str | os.PathLike, text: str | None = None) -> list[dict[str, Any]]:
    """Per date (in time order), ``{"id", "datetime", group: COG path relative to the listing}``."""
    doc = read_listing(path, text)
    return [
        {"id": p["id"], "datetime": p.get("datetime"), **{g: p["cogs"][g] for g in GROUPS}}
        for p in doc["products"]
    ]


def product_folders(path: str | os.PathLike) -> list[str]:
    """The folders (relative to the listing) holding the listed products' COGs, sorted."""
    return sorted({str(Path(item[GROUPS[0]]).parent) for item in cog_items(path)})
