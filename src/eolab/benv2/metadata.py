"""Pairing and selection through ``metadata.parquet``: load, country filters, caps, splits.

S1 and S2 are paired only through the table (``patch_id`` <-> ``s1_name``); countries are the
table's real country names (never guessed from UTM zones).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from eolab.benv2.names import COUNTRIES, LABELS, SNOW_CLOUD_METADATA, SPLITS, tile_of
from eolab.core.errors import ConfigError, InputError

COLUMNS = (
    "patch_id",
    "labels",
    "split",
    "country",
    "s1_name",
    "s2v1_name",
    "contains_seasonal_snow",
    "contains_cloud_or_shadow",
)
SPLIT_GROUPS = ("location", "block", "tile")
BLOCK_PATCHES = 10  # a "block" is 10 x 10 patches (12 km x 12 km) of one tile


def load_metadata(path: str | Path, *, with_snow_cloud: bool = False) -> pd.DataFrame:
    """The patch table (plus the snow/cloud table beside it when asked), validated.

    Adds ``official_split``. Raises InputError naming the file for a missing file, a missing
    column, duplicate ids, or a split, country or label outside the real nomenclature.
    """
    path = Path(path)
    frames = [_read_table(path)]
    if with_snow_cloud:
        frames.append(_read_table(path.parent / SNOW_CLOUD_METADATA))
    df = pd.concat(frames, ignore_index=True)
    duplicated = df.patch_id[df.patch_id.duplicated()]
    if len(duplicated):
        raise InputError(f"{path}: duplicate patch_id {duplicated.iloc[0]!r}")
    bad_split = set(df.split) - set(SPLITS)
    if bad_split:
        raise InputError(f"{path}: unknown split(s) {sorted(bad_split)}; expected {SPLITS}")
    bad_country = set(df.country) - set(COUNTRIES)
    if bad_country:
        raise InputError(f"{path}: unknown country {sorted(bad_country)}")
    bad_labels = {label for labels in df.labels for label in labels} - set(LABELS)
    if bad_labels:
        raise InputError(f"{path}: labels outside the 19-class nomenclature: {sorted(bad_labels)}")
    df["labels"] = [list(labels) for labels in df.labels]
    df["official_split"] = df["split"]
    return df


def _read_table(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise InputError(f"{path}: metadata table not found")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}")
    return table.select(list(COLUMNS)).to_pandas()


def parse_countries(spec: str | None) -> tuple[str, frozenset[str]] | None:
    """``keep=Austria,FI`` / ``drop=Serbia`` (names or ISO codes, any case) -> (mode, names).

    A bare list means ``keep``. Unknown names raise ConfigError listing the real ones.
    """
    if spec is None or not str(spec).strip():
        return None
    text = str(spec).strip()
    mode = "keep"
    if "=" in text:
        mode, text = (s.strip() for s in text.split("=", 1))
        mode = mode.lower()
        if mode not in ("keep", "drop"):
            raise ConfigError(f"--countries {spec!r}: expected keep=… or drop=…")
    lookup = {name.lower(): name for name in COUNTRIES}
    lookup.update({code.lower(): name for name, code in COUNTRIES.items()})
    names = set()
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        if item.lower() not in lookup:
            raise ConfigError(
                f"--countries: unknown country {item!r}; BigEarthNet's countries are "
                + ", ".join(f"{n} ({c})" for n, c in COUNTRIES.items())
            )
        names.add(lookup[item.lower()])
    if not names:
        raise ConfigError(f"--countries {spec!r}: no country given")
    return mode, frozenset(names)


def filter_countries(df: pd.DataFrame, spec: str | None) -> pd.DataFrame:
    """Keep or drop the patches of the given countries."""
    parsed = parse_countries(spec)
    if parsed is None:
        return df
    mode, names = parsed
    mask = df.country.isin(names)
    return df[mask if mode == "keep" else ~mask].reset_index(drop=True)


def limit_per_country(df: pd.DataFrame, max_per_country: int | None, seed: int) -> pd.DataFrame:
    """At most ``max_per_country`` patches per country, a seeded random choice (sorted by id)."""
    if not max_per_country:
        return df
    keep = []
    for country, group in df.groupby("country", sort=True):
        rng = np.random.default_rng([seed, zlib.crc32(str(country).encode())])
        idx = group.index.to_numpy()
        if len(idx) > max_per_country:
            idx = rng.choice(idx, size=max_per_country, replace=False)
        keep.extend(idx.tolist())
    return df.loc[sorted(keep)].sort_values("patch_id").reset_index(drop=True)


def split_group(patch_id: str, group: str) -> str:
    """The unit a re-split never cuts: one place (all dates), a 10x10-patch block, or a tile."""
    tile = tile_of(patch_id)
    col, row = (int(v) for v in patch_id.rsplit("_", 2)[1:])
    if group == "location":
        return f"{tile}_{col}_{row}"
    if group == "block":
        return f"{tile}_{col // BLOCK_PATCHES}_{row // BLOCK_PATCHES}"
    if group == "tile":
        return tile
    raise ConfigError(f"split group {group!r}: expected one of {SPLIT_GROUPS}")


def check_ratios(train_ratio: float, val_ratio: float) -> None:
    """Ratios in [0, 1] that leave a non-negative test share."""
    if not (0 < train_ratio <= 1 and 0 <= val_ratio < 1 and train_ratio + val_ratio <= 1 + 1e-9):
        raise ConfigError(
            f"--train_ratio {train_ratio} and --val_ratio {val_ratio}: need 0 < train <= 1, "
            "0 <= val and train + val <= 1 (the rest is test)"
        )


def resplit(
    df: pd.DataFrame,
    *,
    train_ratio: float,
    val_ratio: float,
    seed: int,
    group: str = "location",
) -> pd.DataFrame:
    """Assign train/validation/test with the given ratios, stratified per country.

    Whole groups (see ``split_group``) go to one split, so the same place never appears in two
    splits; groups are shuffled with a per-country seed and filled in order train, validation,
    test until each split reaches its share of the country's patches.
    """
    check_ratios(train_ratio, val_ratio)
    out = df.copy()
    keys = np.array([split_group(p, group) for p in out.patch_id])
    splits = np.empty(len(out), dtype=object)
    for country in sorted(out.country.unique()):
        rows = np.flatnonzero(out.country.to_numpy() == country)
        groups, inverse, sizes = np.unique(keys[rows], return_inverse=True, return_counts=True)
        rng = np.random.default_rng([seed, zlib.crc32(str(country).encode())])
        order = rng.permutation(len(groups))
        total = len(rows)
        bounds = (train_ratio * total, (train_ratio + val_ratio) * total)
        done = 0.0
        group_split = np.empty(len(groups), dtype=object)
        for g in order:
            # a group goes where the patches counted so far end: train, then validation, then test
            mid = done + sizes[g] / 2.0
            group_split[g] = (
                SPLITS[0] if mid <= bounds[0] else SPLITS[1] if mid <= bounds[1] else SPLITS[2]
            )
            done += sizes[g]
        splits[rows] = group_split[inverse]
    out["split"] = splits.astype(str)
    return out


def select(
    df: pd.DataFrame,
    *,
    countries: str | None = None,
    max_per_country: int | None = None,
    split_mode: str = "official",
    train_ratio: float = 0.8,
    val_ratio: float = 0.1,
    seed: int = 0,
    split_group_by: str = "location",
) -> pd.DataFrame:
    """The patches to convert, with their split: filters, per-country cap, then splits."""
    df = filter_countries(df, countries)
    df = limit_per_country(df, max_per_country, seed)
    if split_mode == "resplit":
        df = resplit(
            df, train_ratio=train_ratio, val_ratio=val_ratio, seed=seed, group=split_group_by
        )
    elif split_mode != "official":
        raise ConfigError(f"--split {split_mode!r}: expected official or resplit")
    return df.sort_values("patch_id").reset_index(drop=True)
