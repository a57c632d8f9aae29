"""Raster reads for the chips stage: local files or S3 objects through GDAL's /vsis3/.

One place for the GDAL settings that make ``s3://`` hrefs work against any S3 endpoint
(CSC Allas, a local moto server): ``rasterio.Env(AWS_...)`` alone raises, an ``AWSSession``
with ``endpoint_url`` as ``host:port`` plus ``AWS_HTTPS``/``AWS_VIRTUAL_HOSTING`` works.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np
import rasterio
from affine import Affine
from rasterio.session import AWSSession
from rasterio.windows import Window

from eolab.errors import InputError


@dataclass(frozen=True)
class S3Settings:
    """Where and how to reach S3; credentials default to the usual AWS_* variables."""

    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str = "us-east-1"

    def gdal_options(self) -> dict[str, str]:
        """GDAL configuration for this endpoint (plain HTTP and path-style for local servers)."""
        if not self.endpoint_url:
            return {}
        url = urlparse(self.endpoint_url)
        return {
            "AWS_HTTPS": "YES" if url.scheme == "https" else "NO",
            "AWS_VIRTUAL_HOSTING": "FALSE",
        }

    def session(self) -> AWSSession:
        endpoint = urlparse(self.endpoint_url).netloc if self.endpoint_url else None
        return AWSSession(
            aws_access_key_id=self.access_key_id or os.environ.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=self.secret_access_key or os.environ.get("AWS_SECRET_ACCESS_KEY"),
            region_name=self.region,
            endpoint_url=endpoint,
        )

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
    # Decode compressed blocks on every core (GDAL >= 3.6 GeoTIFF multi-threaded reads).
    common = {"GDAL_NUM_THREADS": "ALL_CPUS", "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
    if s3 is None or not s3.endpoint_url:
        with rasterio.Env(**common):
            yield
        return
    # Outside the main thread rasterio sets these options thread-locally, and GDAL's own decoding
    # threads (JP2OpenJPEG) would then read /vsis3/ without the credentials and return wrong
    # pixels silently (docs/lab.md): decode on the calling thread there.
    if threading.current_thread() is not threading.main_thread():
        common["GDAL_NUM_THREADS"] = "1"
    with rasterio.Env(session=s3.session(), **common, **s3.gdal_options()):
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
