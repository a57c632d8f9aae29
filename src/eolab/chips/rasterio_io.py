"""Raster reads for the chips stage: local files or S3 objects through GDAL's /vsis3/.

The GDAL settings for ``s3://`` hrefs on any S3 endpoint (CSC Allas, a local moto server) are
``eolab.storage.gdal_s3_env``, shared with the storage lab.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

from eolab.errors import InputError
from eolab.storage import gdal_s3_env


@dataclass(frozen=True)
class S3Settings:
    """Where and how to reach S3; credentials default to the usual AWS_* variables."""

    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str = "us-east-1"

    def storage_options(self) -> dict:
        """fsspec/s3fs options for the same endpoint (Zarr stores on S3)."""
        opts: dict = {}
        if self.endpoint_url:
            opts["client_kwargs"] = {"endpoint_url": self.endpoint_url}
        if self.access_key_id:
            opts["key"] = self.access_key_id
            opts["secret"] = self.secret_access_key
        return opts


@contextlib.contextmanager
def gdal_env(s3: S3Settings | None = None) -> Iterator[None]:
    """A rasterio environment that reads ``s3://`` hrefs from ``s3``'s endpoint."""
    # Decode compressed blocks on every core (GDAL >= 3.6 GeoTIFF multi-threaded reads);
    # gdal_s3_env falls back to one thread where S3 credentials would not reach GDAL's threads.
    threads = {"GDAL_NUM_THREADS": "ALL_CPUS"}
    if s3 is None or not s3.endpoint_url:
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", **threads):
            yield
        return
    with gdal_s3_env(
        s3.endpoint_url,
        key_id=s3.access_key_id or os.environ.get("AWS_ACCESS_KEY_ID"),
        secret=s3.secret_access_key or os.environ.get("AWS_SECRET_ACCESS_KEY"),
        region=s3.region,
        **threads,
    ):
        yield


def open_raster(href: str):
    """Open a raster with a clear error naming it when it is missing or unreadable."""
    try:
        return rasterio.open(href)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"{href}: cannot open raster ({exc})") from exc


def read_raster(
    href: str, bands: list[int] | None = None, window: Window | None = None
) -> tuple[np.ndarray, Affine]:
    """Read ``bands`` (1-based; all by default) of a raster as ``(band, rows, cols)``."""
    with open_raster(href) as src:
        data = src.read(bands or list(range(1, src.count + 1)), window=window)
        transform = src.window_transform(window) if window is not None else src.transform
    return data, transform
