"""Shared test fixtures: paths, a real S3 server over HTTP, generated datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_SAMPLES = ROOT.parent / "shared" / "samples"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def samples() -> Path:
    """The real sample files in ../shared/samples (skips with a reason where absent)."""
    if not SHARED_SAMPLES.is_dir():
        pytest.skip(f"real samples not found at {SHARED_SAMPLES}")
    return SHARED_SAMPLES


@pytest.fixture(scope="session")
def s3_server():
    """A real moto S3 server over HTTP on 127.0.0.1 for the whole session."""
    from eolab.fixtures.s3server import LocalS3Server

    with LocalS3Server() as server:
        yield server


@pytest.fixture()
def s3_client(s3_server):
    """A boto3 client for the session's S3 server; the server is emptied after each test."""
    import boto3

    client = boto3.client("s3", **s3_server.client_kwargs())
    yield client
    s3_server.reset()


@pytest.fixture(scope="session")
def benv2_root(tmp_path_factory) -> Path:
    """A generated BigEarthNet v2 fixture (16 pairs + snow/cloud ones), shared read-only.

    Tests that delete or modify files must copy it first.
    """
    from eolab.fixtures.benv2 import generate

    root = tmp_path_factory.mktemp("benv2")
    generate(root, patches=16, seed=42)
    return root


def _s2_tile_year(tmp_path_factory, tile: str) -> Path:
    from eolab.fixtures.sentinel2 import generate_tile_year

    root = tmp_path_factory.mktemp(f"s2-{tile}")
    manifest = root / f"{tile}_2024.json"
    generate_tile_year(
        root, tile=tile, year=2024, dates=3, scale=61, seed=1, baseline="05.10", manifest=manifest
    )
    return manifest


@pytest.fixture(scope="session")
def s2_products(tmp_path_factory) -> Path:
    """Products manifest of a tiny generated tile-year (35VLH, 2024, 3 dates, 180/90/30 px,
    seed 1, baseline 05.10): one ascending date, one date with a no-data swath edge, clouds.
    Shared read-only: tests that modify products must copy them first."""
    return _s2_tile_year(tmp_path_factory, "35VLH")


@pytest.fixture(scope="session")
def s2_products_south(tmp_path_factory) -> Path:
    """Like ``s2_products`` for the southern tile 51CVP (EPSG:32751)."""
    return _s2_tile_year(tmp_path_factory, "51CVP")
