"""``eolab fixtures …``: generate tiny deterministic stand-ins for real downloads."""

from __future__ import annotations

from pathlib import Path

import click


@click.group(short_help="Generate deterministic test fixtures.")
def fixtures() -> None:
    """Generate deterministic fixtures (same seed -> byte-identical files)."""


@fixtures.command("sentinel2", short_help="Sentinel-2 L1C SAFE products of a tile-year.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Root folder.")
@click.option("--tile", default="35VLH", show_default=True, help="MGRS tile id.")
@click.option("--year", type=int, default=2024, show_default=True)
@click.option(
    "--dates",
    type=click.IntRange(1, 400),
    default=4,
    show_default=True,
    help="Products (acquisition dates) in the year.",
)
@click.option(
    "--scale",
    type=int,
    default=30,
    show_default=True,
    help="Divide the real sizes 10980/5490/1830 by this (must divide 1830; 1 = full size).",
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--baseline", default="05.10", show_default=True, help="Processing baseline NN.NN.")
@click.option(
    "--manifest",
    type=click.Path(path_type=Path),
    default=None,
    help="Products manifest JSON [default: OUT/<tile>_<year>.json].",
)
def sentinel2(out, tile, year, dates, scale, seed, baseline, manifest) -> None:
    """Sentinel-2 L1C SAFE products of one tile-year, laid out as Sentinel-2/MSI/L1C/YYYY/MM/DD/."""
    from eolab.fixtures.sentinel2 import generate_tile_year

    manifest = manifest or out / f"{tile}_{year}.json"
    result = generate_tile_year(
        out,
        tile=tile,
        year=year,
        dates=dates,
        scale=scale,
        seed=seed,
        baseline=baseline,
        manifest=manifest,
    )
    click.echo(
        f"{len(result['products'])} products of {tile} {year} under {out}; manifest {manifest}"
    )


@fixtures.command("benv2", short_help="A BigEarthNet v2 folder (S2, S1, metadata).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Root folder.")
@click.option("--patches", type=click.IntRange(1), default=24, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
def benv2(out, patches, seed) -> None:
    """BigEarthNet v2: BigEarthNet-S2/, BigEarthNet-S1/, Reference_Maps/ and metadata.parquet."""
    from eolab.fixtures.benv2 import generate

    result = generate(out, patches=patches, seed=seed)
    click.echo(f"{result['patches']} patch pairs under {out}")
