"""``eolab zarr …``: operations on finished Zarr stores (zip for single-object transfer)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("zarr", short_help="Operations on Zarr v3 stores.")
def zarr_group() -> None:
    """Operations on Zarr v3 stores."""


@zarr_group.command("zip", short_help="Zip a finished store (STORED entries).")
@click.argument("store", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("out", type=click.Path(path_type=Path, dir_okay=False))
def zip_cmd(store: Path, out: Path) -> None:
    """Zip a finished directory STORE into OUT (STORED entries, metadata first, ZIP64)."""
    from eolab.zarrio.zipzarr import zip_store

    result = zip_store(store, out)
    click.echo(f"{out}: {result['entries']} entries, {result['bytes']} bytes")
