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
    from eolab.s3server import LocalS3Server

    with LocalS3Server() as server:
        yield server


@pytest.fixture()
def s3_client(s3_server):
    """A boto3 client for the session's S3 server; the server is emptied after each test."""
    import boto3

    client = boto3.client("s3", **s3_server.client_kwargs())
    yield client
    s3_server.reset()
