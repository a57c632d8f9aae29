"""BigEarthNet v2 constants and naming: bands, the 19 classes, countries, folder layout."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

#: The 12 S2 L2A bands of BigEarthNet v2 and their pixel size (m); B10 is not in L2A.
S2_BANDS: dict[str, int] = {
    "B01": 60,
    "B02": 10,
    "B03": 10,
    "B04": 10,
    "B05": 20,
    "B06": 20,
    "B07": 20,
    "B08": 10,
    "B8A": 20,
    "B09": 60,
    "B11": 20,
    "B12": 20,
}
S1_BANDS: tuple[str, ...] = ("VV", "VH")
ALL_BANDS: tuple[str, ...] = (*S2_BANDS, *S1_BANDS)
#: The reference script's bands: four 10 m S2 bands and both polarisations.
REFERENCE_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08", "VV", "VH")
BAND_SETS: dict[str, tuple[str, ...]] = {
    "all": ALL_BANDS,
    "reference": REFERENCE_BANDS,
    "s2": tuple(S2_BANDS),
    "s1": S1_BANDS,
}

PATCH_PX = 120
PATCH_M = 1200

#: The 19-class nomenclature in its official order (index = position in multi-hot vectors).
LABELS: tuple[str, ...] = (
    "Urban fabric",
    "Industrial or commercial units",
    "Arable land",
    "Permanent crops",
    "Pastures",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas",
    "Broad-leaved forest",
    "Coniferous forest",
    "Mixed forest",
    "Natural grassland and sparsely vegetated areas",
    "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland, shrub",
    "Beaches, dunes, sands",
    "Inland wetlands",
    "Coastal wetlands",
    "Inland waters",
    "Marine waters",
)
LABEL_INDEX = {name: i for i, name in enumerate(LABELS)}

#: BigEarthNet's ten countries (names as in metadata.parquet) and their ISO codes.
COUNTRIES: dict[str, str] = {
    "Austria": "AT",
    "Belgium": "BE",
    "Finland": "FI",
    "Ireland": "IE",
    "Kosovo": "XK",
    "Lithuania": "LT",
    "Luxembourg": "LU",
    "Portugal": "PT",
    "Serbia": "RS",
    "Switzerland": "CH",
}
SPLITS: tuple[str, ...] = ("train", "validation", "test")

METADATA = "metadata.parquet"
SNOW_CLOUD_METADATA = "metadata_for_patches_with_snow_cloud_or_shadow.parquet"
S2_DIR, S1_DIR, REFMAP_DIR = "BigEarthNet-S2", "BigEarthNet-S1", "Reference_Maps"


def s2_product(patch_id: str) -> str:
    """The S2 product folder of a patch: the id without its column and row."""
    return patch_id.rsplit("_", 2)[0]


def s1_product(s1_name: str) -> str:
    """The S1 product folder of an S1 patch: the name without tile, column and row."""
    return s1_name.rsplit("_", 3)[0]


def s2_patch_dir(s2_root: Path, patch_id: str) -> Path:
    """``<s2_root>/<S2 product>/<patch_id>`` (s2_root is the ``BigEarthNet-S2`` folder)."""
    return Path(s2_root) / s2_product(patch_id) / patch_id


def s1_patch_dir(s1_root: Path, s1_name: str) -> Path:
    """``<s1_root>/<S1 product>/<s1_name>`` (s1_root is the ``BigEarthNet-S1`` folder)."""
    return Path(s1_root) / s1_product(s1_name) / s1_name


def refmap_patch_dir(refmap_root: Path, patch_id: str) -> Path:
    """``<refmap_root>/<S2 product>/<patch_id>`` (refmap_root is ``Reference_Maps``)."""
    return Path(refmap_root) / s2_product(patch_id) / patch_id


def s2_band_path(s2_root: Path, patch_id: str, band: str) -> Path:
    """The GeoTIFF of one S2 band of a patch: ``<patch dir>/<patch_id>_<band>.tif``."""
    return s2_patch_dir(s2_root, patch_id) / f"{patch_id}_{band}.tif"


def s1_band_path(s1_root: Path, s1_name: str, pol: str) -> Path:
    """The GeoTIFF of one polarisation of an S1 patch: ``<patch dir>/<s1_name>_<pol>.tif``."""
    return s1_patch_dir(s1_root, s1_name) / f"{s1_name}_{pol}.tif"


def refmap_path(refmap_root: Path, patch_id: str) -> Path:
    """The reference map of a patch: ``<patch dir>/<patch_id>_reference_map.tif``."""
    return refmap_patch_dir(refmap_root, patch_id) / f"{patch_id}_reference_map.tif"


def npz_key(band: str) -> str:
    """Array names of the reference: B02 -> s2_b2, B8A -> s2_b8a, VV -> s1_vv."""
    if band in S1_BANDS:
        return f"s1_{band.lower()}"
    return "s2_b" + band[1:].lstrip("0").lower()


def tile_of(patch_id: str) -> str:
    """The MGRS tile of a patch (``..._T33UUP_26_57`` -> ``33UUP``)."""
    return s2_product(patch_id).rsplit("_T", 1)[1]


def s2_datetime(patch_id: str) -> str:
    """Sensing start of the S2 product in ISO 8601 (UTC)."""
    return _iso(patch_id.split("_")[2])


def s1_datetime(s1_name: str) -> str:
    """Start time of the S1 product in ISO 8601 (UTC)."""
    return _iso(s1_name.split("_")[4])


def _iso(stamp: str) -> str:
    return dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S").strftime("%Y-%m-%dT%H:%M:%SZ")


def expand_bands(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``all``/``reference``/``s2``/``s1`` or a comma list (``B02,B8A,VV``) -> band tuple.

    Band names are case-insensitive; ``B2`` means ``B02``. Order follows ``ALL_BANDS``.
    """
    from eolab.core.errors import ConfigError

    if isinstance(spec, str):
        if spec.strip().lower() in BAND_SETS:
            return BAND_SETS[spec.strip().lower()]
        items = [s.strip() for s in spec.split(",") if s.strip()]
    else:
        items = list(spec)
    wanted = set()
    for item in items:
        name = item.upper()
        if name.startswith("B") and len(name) == 2:
            name = f"B0{name[1]}"
        if name not in ALL_BANDS:
            raise ConfigError(
                f"--bands: unknown band {item!r}; choose from {', '.join(ALL_BANDS)} "
                f"or one of {', '.join(BAND_SETS)}"
            )
        wanted.add(name)
    if not wanted:
        raise ConfigError("--bands: no band selected")
    return tuple(b for b in ALL_BANDS if b in wanted)
