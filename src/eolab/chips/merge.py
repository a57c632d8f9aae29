"""Merge chip indexes of many items and sources into one partitioned GeoParquet dataset.

Layout as stacchip's: ``<root>/<platform>/<item_id>/index_<item_id>.parquet``. Each file keeps
its own ``platform`` and ``item_id`` columns too, so every file is a complete GeoParquet on its
own and DuckDB's ``read_parquet('<root>/**/*.parquet', union_by_name=true)``, geopandas and
pyarrow read the dataset without knowing the partitioning. Sensors differ in their extra columns
(L1C has ``snow_ice_percentage``): ``read_index`` unifies the schemas, missing values are null.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
import pyarrow.parquet as pq

from eolab.core.atomic import atomic_path, write_json
from eolab.core.errors import InputError

REQUIRED = (
    "chipid",
    "date",
    "chip_index_x",
    "chip_index_y",
    "cloud_cover_percentage",
    "nodata_percentage",
    "platform",
    "item_id",
    "geometry",
)
SUMMARY = "_eolab_index.json"  # leading underscore: pyarrow and DuckDB globs skip it


def index_files(sources: Iterable[str | Path]) -> list[Path]:
    """Parquet files given directly or found under the given folders, sorted."""
    files: list[Path] = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            files.extend(p for p in source.rglob("*.parquet") if not p.name.startswith((".", "_")))
        elif source.is_file():
            files.append(source)
        else:
            raise InputError(f"{source}: no such chip index file or folder")
    return sorted(set(files))


def _read_checked(path: Path) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise InputError(f"{path}: not a chip index, lacks columns {missing}")
    if b"geo" not in (table.schema.metadata or {}):
        raise InputError(f"{path}: not GeoParquet (no 'geo' metadata)")
    return table


def partition_path(root: Path, platform: str, item_id: str) -> Path:
    """Where one item's index lives in a merged dataset."""
    for name, value in (("platform", platform), ("item_id", item_id)):
        if not value or "/" in value or value.startswith("."):
            raise InputError(f"chip index: unusable {name} {value!r} for a partition folder")
    return root / platform / item_id / f"index_{item_id}.parquet"


def merge_indexes(sources: Iterable[str | Path], out: str | Path) -> dict[str, Any]:
    """Write every item of every source index into the partitioned dataset ``out`` (replaced
    atomically as a whole). The same item twice with equal rows is kept once; with different
    rows it is an error naming both files."""
    out = Path(out)
    files = index_files(sources)
    if not files:
        raise InputError("chip index merge: no index files in the given sources")
    seen: dict[tuple[str, str], tuple[Path, pa.Table]] = {}
    for path in files:
        table = _read_checked(path)
        groups = table.select(["platform", "item_id"]).group_by(["platform", "item_id"])
        for group in groups.aggregate([]).to_pylist():
            platform, item_id = group["platform"], group["item_id"]
            part = table.filter(
                (pc.field("platform") == platform) & (pc.field("item_id") == item_id)
            )
            key = (platform, item_id)
            if key in seen:
                first, earlier = seen[key]
                if not earlier.equals(part):
                    raise InputError(
                        f"chip index merge: item {item_id} ({platform}) differs between "
                        f"{first} and {path}"
                    )
                continue
            seen[key] = (path, part)
    summary: dict[str, Any] = {"items": len(seen), "chips": 0, "platforms": {}}
    with atomic_path(out) as tmp:
        for (platform, item_id), (_, part) in sorted(seen.items()):
            dest = partition_path(tmp, platform, item_id)
            dest.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(part, dest)
            stats = summary["platforms"].setdefault(platform, {"items": 0, "chips": 0})
            stats["items"] += 1
            stats["chips"] += part.num_rows
            summary["chips"] += part.num_rows
        summary["sources"] = [str(p) for p in files]
        write_json(tmp / SUMMARY, summary)
    return summary


def read_index(
    root: str | Path | Iterable[str | Path], filter: pds.Expression | None = None
) -> gpd.GeoDataFrame:
    """A merged dataset (or index files/folders) as one GeoDataFrame, schemas unified, rows in
    (platform, item_id, chip_index_y, chip_index_x) order; ``filter`` is a pyarrow expression."""
    files = index_files([root] if isinstance(root, str | Path) else root)
    if not files:
        raise InputError(f"{root}: no chip index files")
    schemas = [pq.read_schema(f) for f in files]
    schema = pa.unify_schemas(schemas, promote_options="permissive")
    dataset = pds.dataset([str(f) for f in files], schema=schema, format="parquet")
    table = dataset.to_table(filter=filter)
    geo_meta = next(s.metadata for s in schemas if s.metadata and b"geo" in s.metadata)
    table = table.replace_schema_metadata({b"geo": geo_meta[b"geo"]})
    if "bbox" in table.column_names:
        table = table.drop_columns(["bbox"])
    frame = gpd.GeoDataFrame.from_arrow(table)
    frame = frame.sort_values(["platform", "item_id", "chip_index_y", "chip_index_x"])
    return frame.reset_index(drop=True)
