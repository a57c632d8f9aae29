"""Pairing through metadata.parquet, country filters with the real names, re-splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eolab.benv2 import metadata as M
from eolab.benv2.names import COUNTRIES, SPLITS, s1_band_path, s2_band_path
from eolab.core.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def table(benv2_root) -> pd.DataFrame:
    return M.load_metadata(benv2_root / "metadata.parquet")


def _synthetic(n_per_country: int, dates: int = 1) -> pd.DataFrame:
    """Many patches per country (ids in the real form), ``dates`` S2 products per place."""
    rows = []
    s2 = "S2A_MSIL2A_2017061"
    tiles = {"Austria": "33UUP", "Finland": "35VNK", "Serbia": "34TEP", "Kosovo": "34TEN"}
    for c, (country, tile) in enumerate(tiles.items()):
        n = n_per_country // (c + 1)  # unequal sizes
        for i in range(n):
            col, row = i % 91, i // 91
            for d in range(dates):
                rows.append(
                    {
                        "patch_id": f"{s2}{d}T101031_N9999_R022_T{tile}_{col:02d}_{row:02d}",
                        "s1_name": f"S1A_IW_GRDH_1SDV_2017061{d}T165043_{tile}_{col}_{row}",
                        "country": country,
                        "split": "train",
                    }
                )
    return pd.DataFrame(rows)


def test_pairing_and_validation(table, benv2_root):
    assert table.patch_id.is_unique and len(table) == 16
    for row in table.itertuples():
        assert s2_band_path(benv2_root / "BigEarthNet-S2", row.patch_id, "B02").is_file()
        assert s1_band_path(benv2_root / "BigEarthNet-S1", row.s1_name, "VV").is_file()
    assert (table.official_split == table.split).all()
    both = M.load_metadata(benv2_root / "metadata.parquet", with_snow_cloud=True)
    assert len(both) > len(table) and both.contains_seasonal_snow.any()


def test_bad_tables_are_refused_with_the_file_and_reason(tmp_path, benv2_root):
    with pytest.raises(InputError, match="not found"):
        M.load_metadata(tmp_path / "nope.parquet")
    df = pq.read_table(benv2_root / "metadata.parquet").to_pandas()
    bad = df.assign(country=["Narnia"] + list(df.country[1:]))
    pq.write_table(pa.Table.from_pandas(bad, preserve_index=False), tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="bad.parquet: unknown country"):
        M.load_metadata(tmp_path / "bad.parquet")
    pq.write_table(
        pa.Table.from_pandas(df.drop(columns="s1_name"), preserve_index=False),
        tmp_path / "m.parquet",
    )
    with pytest.raises(InputError, match="missing column"):
        M.load_metadata(tmp_path / "m.parquet")


def test_country_filters_use_real_names_and_codes(table):
    assert M.parse_countries("keep=Austria,fi") == ("keep", frozenset({"Austria", "Finland"}))
    assert M.parse_countries("drop=XK, rs") == ("drop", frozenset({"Kosovo", "Serbia"}))
    assert M.parse_countries("Portugal") == ("keep", frozenset({"Portugal"}))
    kept = M.filter_countries(table, "keep=Finland,Portugal")
    assert (
        set(kept.country) == {"Finland", "Portugal"}
        and len(kept) == table.country.isin(["Finland", "Portugal"]).sum()
    )
    dropped = M.filter_countries(table, "drop=Finland")
    assert "Finland" not in set(dropped.country) and len(dropped) + (
        table.country == "Finland"
    ).sum() == len(table)
    for bad in ("keep=Germany", "keep=Estonia", "only=Austria", "keep="):
        with pytest.raises(ConfigError):
            M.parse_countries(bad)
    assert set(COUNTRIES) == {
        "Austria", "Belgium", "Finland", "Ireland", "Kosovo",
        "Lithuania", "Luxembourg", "Portugal", "Serbia", "Switzerland",
    }  # fmt: skip


def test_max_per_country_is_seeded(table):
    one = M.limit_per_country(table, 1, seed=3)
    assert one.country.value_counts().max() == 1 and set(one.country) == set(table.country)
    assert one.patch_id.tolist() == M.limit_per_country(table, 1, seed=3).patch_id.tolist()
    picks = {tuple(M.limit_per_country(table, 1, seed=s).patch_id) for s in range(6)}
    assert len(picks) > 1


def test_resplit_is_stratified_per_country_without_leakage():
    df = _synthetic(400, dates=2)  # each place on two dates: they must stay together
    out = M.resplit(df, train_ratio=0.6, val_ratio=0.25, seed=7)
    assert len(out) == len(df) and set(out.split) <= set(SPLITS)
    # no place in two splits, no patch twice
    places = out.patch_id.map(lambda p: M.split_group(p, "location"))
    assert (out.groupby(places).split.nunique() == 1).all()
    assert out.patch_id.is_unique
    for _, g in out.groupby("country"):
        share = g.split.value_counts(normalize=True)
        assert share["train"] == pytest.approx(0.6, abs=0.05)
        assert share["validation"] == pytest.approx(0.25, abs=0.05)
        assert share["test"] == pytest.approx(0.15, abs=0.05)
    again = M.resplit(df, train_ratio=0.6, val_ratio=0.25, seed=7)
    assert out.split.tolist() == again.split.tolist()
    other = M.resplit(df, train_ratio=0.6, val_ratio=0.25, seed=8)
    assert out.split.tolist() != other.split.tolist()


def test_resplit_by_block_and_tile_keeps_groups_whole():
    df = _synthetic(300)
    for group in ("block", "tile"):
        out = M.resplit(df, train_ratio=0.7, val_ratio=0.15, seed=1, group=group)
        keys = out.patch_id.map(lambda p, g=group: M.split_group(p, g))
        assert (out.groupby(keys).split.nunique() == 1).all()
    by_block = M.resplit(df, train_ratio=0.7, val_ratio=0.15, seed=1, group="block")
    assert by_block.split.nunique() == 3


def test_select_official_by_default_and_ratios_checked(table):
    sel = M.select(table)
    assert sel.split.tolist() == sel.official_split.tolist()
    with pytest.raises(ConfigError, match="train_ratio"):
        M.select(table, split_mode="resplit", train_ratio=0.9, val_ratio=0.2)
    small = M.select(table, split_mode="resplit", train_ratio=0.5, val_ratio=0.25, seed=0)
    assert set(small.split) <= set(SPLITS) and np.all(
        small.patch_id.values == sorted(small.patch_id)
    )
