"""The products manifest: the list of SAFE products of one tile-year, shared by every source.

Fixtures (``eolab fixtures sentinel2``) and the CDSE intake (``eolab intake cdse``) both write it;
the conversion rules read it. Paths inside are relative to the manifest's folder.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from eolab.core import atomic
from eolab.core.errors import InputError

MANIFEST_VERSION = 1
# the tile in a product name: S2A_MSIL1C_20240401T085207_N0510_R079_T35VLH_20240401T104047
_PRODUCT_TILE = re.compile(r"_T(\d{2}[A-Z]{3})_")
log = logging.getLogger(__name__)


def write_manifest(
    path: str | Path, tile: str, year: int, source: str, products: list[dict[str, Any]]
) -> dict[str, Any]:
    """Atomically write a products manifest; products are sorted by datetime then id."""
    doc = {
        "version": MANIFEST_VERSION,
        "tile": tile,
        "year": int(year),
        "source": source,
        "products": sorted(products, key=lambda p: (p["datetime"], p["id"])),
    }
    atomic.write_json(path, doc)
    return doc


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read and check a products manifest."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"{path}: products manifest not found") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: products manifest is not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise InputError(f"{path}: products manifest must be a JSON object")
    for key in ("tile", "year", "products"):
        if key not in doc:
            raise InputError(f"{path}: products manifest lacks '{key}'")
    if not isinstance(doc["products"], list):
        raise InputError(f"{path}: 'products' must be a list")
    for i, product in enumerate(doc["products"]):
        check_product(path, i, product, doc["tile"])
    return doc


def check_product(path: Path, index: int, product: Any, tile: str) -> None:
    """Refuse an entry without ``id``/``path``, or a product of another tile than the manifest's
    (its COGs and cube would silently mix two tiles)."""
    if not isinstance(product, dict):
        raise InputError(f"{path}: products[{index}] is not an object")
    for key in ("id", "path"):
        if not isinstance(product.get(key), str) or not product[key]:
            name = product.get("id") or f"products[{index}]"
            raise InputError(f"{path}: {name} lacks '{key}' (every product needs 'id' and 'path')")
    match = _PRODUCT_TILE.search(product["id"])
    if match and match.group(1) != tile:
        raise InputError(
            f"{path}: {product['id']} is of tile {match.group(1)}, the manifest of tile {tile} "
            "(one manifest per tile: move it to its own tile's manifest)"
        )


def usable_products(path: str | Path) -> list[dict[str, Any]]:
    """The products a conversion may read: those not marked ``"verified": false``.

    An intake run with ``--allow-unverified`` lists incomplete products too; they are left out
    here with a warning naming each (a truncated JP2 must not become pixels). A manifest whose
    products are all unverified is an InputError.
    """
    doc = read_manifest(path)
    products = [p for p in doc["products"] if p.get("verified", True)]
    for p in doc["products"]:
        if not p.get("verified", True):
            problems = "; ".join(p.get("problems", [])[:2]) or "incomplete"
            log.warning("%s: %s is not verified (%s); left out", path, p.get("id"), problems)
    if doc["products"] and not products:
        raise InputError(
            f"{path}: none of its {len(doc['products'])} products is verified; "
            "rerun the intake to complete them"
        )
    return products


def product_paths(path: str | Path) -> list[Path]:
    """Absolute SAFE folders of the usable (verified) products of a manifest, in time order."""
    path = Path(path)
    return [(path.parent / p["path"]).resolve() for p in usable_products(path)]
