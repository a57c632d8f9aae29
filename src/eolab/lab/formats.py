"""The formats the storage lab compares, in one registry.

Each :class:`Format` says what its entry point is (products manifest, COG listing, Zarr store,
zip) and how the workflow names it, which files belong to it, which of them hold pixel data,
which loader reads it, and how the charts label and colour it. Staging, the patch loader, the
benchmark, the charts, the ``eolab stage``/``eolab bench patch-load`` commands and the workflow
rules (rules/lab.smk) all ask this registry instead of naming formats themselves.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eolab.core.errors import InputError
from eolab.report.style import FORMAT_COLOURS, format_colour

SAFE, COG, ZARR, SHARDED, ZIP = "safe", "cog", "zarr", "zarr-sharded", "zarr-zip"
#: The xarray/dask reference reader of the plain Zarr store (a result column, not a format).
BASELINE = "zarr-xarray"
BASELINE_LABEL = "Zarr via xarray/dask (reference)"


def tree_files(folder: Path, root: Path) -> list[str]:
    """Every file under ``folder``, relative to ``root``, sorted."""
    if not folder.is_dir():
        raise InputError(f"{folder}: folder not found")
    return sorted(p.relative_to(root).as_posix() for p in folder.rglob("*") if p.is_file())


def _safe_files(manifest: Path) -> list[str]:
    from eolab.sentinel2.products import usable_products

    files = [manifest.name]
    for product in usable_products(manifest):
        files += tree_files(manifest.parent / product["path"], manifest.parent)
    return files


def _cog_files(listing: Path) -> list[str]:
    from eolab.sentinel2.listing import product_folders

    files = [listing.name]
    for folder in product_folders(listing):
        files += tree_files(listing.parent / folder, listing.parent)
    return files


def _store_files(store: Path) -> list[str]:
    return tree_files(store, store.parent)


def _zip_files(archive: Path) -> list[str]:
    return [archive.name]


def _zarr_chunk(rel: str) -> bool:
    return "/data/c/" in rel or "/data/c." in rel


@dataclass(frozen=True)
class Format:
    """One format of a tile-year as the lab sees it."""

    name: str
    #: What the entry point is (``eolab bench patch-load --<name>`` help text).
    entry: str
    #: The entry point's suffix in the workflow's results (``<tile>_<year><suffix>``).
    suffix: str
    #: Files of a dataset, relative to the entry point's folder.
    files: Callable[[Path], list[str]]
    #: True for a file holding pixel data (not metadata or coordinates).
    holds_data: Callable[[str], bool]
    #: Which reader of `eolab.lab.patchload.open_loader` opens it: safe, cog, zarr, zip.
    loader: str
    label: str
    colour: str

    @property
    def zarr_store(self) -> bool:
        """A Zarr store folder (can be zipped; read by the Zarr loaders)."""
        return self.loader == "zarr"

    @property
    def option(self) -> str:
        """The command-line option naming this format's entry point."""
        return f"--{self.name}"


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            SAFE,
            "Products manifest.",
            ".json",
            _safe_files,
            lambda rel: "/IMG_DATA/" in rel and rel.endswith(".jp2"),
            "safe",
            "SAFE",
            FORMAT_COLOURS[SAFE],
        ),
        Format(
            COG,
            "COG listing JSON.",
            ".json",
            _cog_files,
            lambda rel: rel.endswith(".tif"),
            "cog",
            "COG",
            FORMAT_COLOURS[COG],
        ),
        Format(
            ZARR,
            "Zarr store.",
            ".zarr",
            _store_files,
            _zarr_chunk,
            "zarr",
            "Zarr",
            FORMAT_COLOURS[ZARR],
        ),
        Format(
            SHARDED,
            "Sharded Zarr store.",
            ".zarr",
            _store_files,
            _zarr_chunk,
            "zarr",
            "Zarr (sharded)",
            FORMAT_COLOURS[SHARDED],
        ),
        Format(
            ZIP,
            "Zipped Zarr.",
            ".zarr.zip",
            _zip_files,
            lambda rel: True,
            "zip",
            "Zarr (zipped)",
            FORMAT_COLOURS[ZIP],
        ),
    )
}
NAMES: tuple[str, ...] = tuple(FORMATS)
ZARR_STORES: tuple[str, ...] = tuple(n for n, f in FORMATS.items() if f.zarr_store)


def get(name: str) -> Format:
    """The format called ``name``; `InputError` listing the known ones otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        raise InputError(f"unknown format {name!r} (expected one of {', '.join(NAMES)})") from None


def label(name: str) -> str:
    """Chart label of a format (or of the xarray baseline); unknown names as they are."""
    if name == BASELINE:
        return BASELINE_LABEL
    return FORMATS[name].label if name in FORMATS else name


def colour(name: str) -> str:
    """Chart colour of a format (`eolab.report.style`: the baseline shares plain Zarr's)."""
    return format_colour(name)


def entry_files(name: str, entry: str | os.PathLike) -> list[str]:
    """The files of the ``name`` dataset whose entry point is ``entry`` (relative to its
    folder)."""
    return get(name).files(Path(entry))
