"""Tiny tile-years of the fixture tile in every cube format, with chip indexes (session-wide)."""

import pytest
from train_data import build_tile_year, generate_and_build


@pytest.fixture(scope="session")
def ty2024(tmp_path_factory, s2_products):
    """35VLH 2024 (3 dates, the session's products) in cog, zarr, zarr-sharded, zarr-zip."""
    return build_tile_year(tmp_path_factory.mktemp("train2024"), s2_products, "35VLH", 2024)


@pytest.fixture(scope="session")
def ty2025(tmp_path_factory):
    """35VLH 2025 (2 dates, seed 5): the second year of multi-year series."""
    return generate_and_build(tmp_path_factory.mktemp("train2025"), "35VLH", 2025, 2, seed=5)


@pytest.fixture(scope="session")
def benv2_store(benv2_root, tmp_path_factory):
    """The generated BigEarthNet v2 fixture converted (``--out_dir``; stores under zarr/)."""
    from eolab.benv2.convert import TilesOptions, convert

    out = tmp_path_factory.mktemp("benv2-train")
    convert(TilesOptions.for_root(benv2_root, out, workers=2, progress=False, shard_patches=4))
    return out
