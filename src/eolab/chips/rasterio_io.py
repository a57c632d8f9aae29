"""Raster reads for the chips stage: local files or S3 objects through GDAL's /vsis3/.

S3 access (endpoint, credentials, the GDAL settings for ``s3://`` hrefs on any endpoint: CSC
Allas, a local moto server) is ``eolab.core.s3.S3Access``, shared with the storage lab.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

from eolab.core.errors import InputError
from eolab.core.redact import redact_url
from eolab.core.s3 import S3Access


@contextlib.contextmanager
def gdal_env(s3: S3Access | None = None) -> Iterator[None]:
    """A rasterio environment that reads ``s3://`` hrefs from ``s3``'s endpoint."""
    # Decode compressed blocks on every core (GDAL >= 3.6 GeoTIFF multi-threaded reads);
    # gdal_s3_env falls back to one thread where S3 credentials would not reach GDAL's threads.
    threads = {"GDAL_NUM_THREADS": "ALL_CPUS"}
    env = (
        rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", **threads)
        if s3 is None
        else s3.gdal_env(**threads)
    )
    with env:
        yield


def open_raster(href: str):
    """Open a raster with a clear error naming it when it is missing or unreadable."""
    try:
        return rasterio.open(href)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"{redact_url(href)}: cannot open raster ({exc})") from exc


def read_raster(
    href: str, bands: list[int] | None = None, window: Window | None = None
) -> tuple[np.ndarray, Affine]:
    """Read ``bands`` (1-based; all by default) of a raster as ``(band, rows, cols)``."""
    with open_raster(href) as src:
        data = src.read(bands or list(range(1, src.count + 1)), window=window)
        transform = src.window_transform(window) if window is not None else src.transform
    return data, transform
