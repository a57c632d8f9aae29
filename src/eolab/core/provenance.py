"""Provenance written beside results: package versions, machine, configuration."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import sys
from typing import Any

PACKAGES = (
    "eolab",
    "numpy",
    "rasterio",
    "rio-cogeo",
    "zarr",
    "xarray",
    "dask",
    "pandas",
    "pyarrow",
    "geopandas",
    "pystac",
    "pystac-client",
    "boto3",
    "s3fs",
    "snakemake",
    "matplotlib",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each named distribution (None where absent)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    try:
        import rasterio

        versions["gdal"] = rasterio.__gdal_version__
    except ImportError:
        versions["gdal"] = None
    return versions


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """Everything needed to say where and with what a result was produced."""
    return {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": platform.node(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "versions": package_versions(),
    }
