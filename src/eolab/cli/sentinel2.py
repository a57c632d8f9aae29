"""``eolab sentinel2 …``: SAFE -> COG and SAFE -> Zarr v3 datacube; ``eolab bench convert``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from eolab.core.errors import ConfigError

PATH = click.Path(path_type=Path)


def _safe_paths(safes: tuple[Path, ...], manifest: Path | None) -> tuple[list[Path], dict]:
    """SAFE folders from the arguments and/or a products manifest (and the manifest itself)."""
    from eolab.sentinel2.products import product_paths, read_manifest

    paths = list(safes)
    doc: dict = {}
    if manifest is not None:
        doc = read_manifest(manifest)
        paths += product_paths(manifest)
    if not paths and manifest is None:
        raise click.UsageError("give SAFE folders or --manifest")
    return paths, doc


def _workers(value: int | None) -> int | None:
    return value or None


@click.group(short_help="Sentinel-2 L1C: SAFE to COG and Zarr.")
def sentinel2() -> None:
    """Sentinel-2 L1C conversions: SAFE -> COG, SAFE -> Zarr v3 datacube."""


@sentinel2.command("to-cog", short_help="SAFE products to COGs (10m, 20m, 60m).")
@click.argument("safes", nargs=-1, type=PATH)
@click.argument("outdir", type=PATH)
@click.option("--manifest", type=PATH, help="Products manifest: convert every product in it.")
@click.option(
    "--listing", type=PATH, help="Write the list of COGs here (paths relative to its folder)."
)
@click.option(
    "--compress", type=click.Choice(["deflate", "zstd"]), default="deflate", show_default=True
)
@click.option("--blocksize", type=int, default=512, show_default=True, help="Tile size (px).")
@click.option(
    "--overview-resampling",
    type=click.Choice(["average", "nearest"]),
    default="average",
    show_default=True,
)
@click.option("--workers", type=int, default=0, help="Decoding threads [default: all CPUs].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def to_cog(
    safes, outdir, manifest, listing, compress, blocksize, overview_resampling, workers, quiet
) -> None:
    """Convert SAFE products to OUTDIR/<product_id>/{10m,20m,60m}.tif (+ metadata)."""
    from eolab.sentinel2.cog import CogOptions, products_to_cog

    paths, doc = _safe_paths(safes, manifest)
    options = CogOptions(
        compress=compress, blocksize=blocksize, overview_resampling=overview_resampling
    )
    docs = products_to_cog(
        paths,
        outdir,
        options,
        listing=listing,
        workers=_workers(workers),
        progress=not quiet,
        tile=doc.get("tile"),
        year=doc.get("year"),
    )
    click.echo(
        f"{len(docs)} products as COGs under {outdir}" + (f"; list {listing}" * bool(listing))
    )


@sentinel2.command("to-zarr", short_help="Append SAFE products to a Zarr v3 cube.")
@click.argument("safes", nargs=-1, type=PATH)
@click.option("--store", type=PATH, required=True, help="Zarr v3 store (created or appended).")
@click.option("--manifest", type=PATH, help="Products manifest: append every product in it.")
@click.option("--sharded", is_flag=True, help="Write shards (set by --shards) around the chunks.")
@click.option(
    "--chunks",
    default="10m:20x512x512,20m:40x256x256,60m:80x128x128",
    show_default=True,
    help="Chunks (time x y x x) per group; the band axis is whole.",
)
@click.option(
    "--shards",
    default="10m:20x2048x2048,20m:40x1024x1024,60m:80x1024x1024",
    show_default=True,
    help="Shards (time x y x x) per group, multiples of the chunks (with --sharded).",
)
@click.option(
    "--compressor",
    default="zstd:3:shuffle",
    show_default=True,
    help="Blosc codec as cname:clevel:shuffle (shuffle, bitshuffle or noshuffle).",
)
@click.option(
    "--scratch", type=PATH, help="Staging folder for decoded dates [default: STORE.staging]."
)
@click.option("--workers", type=int, default=0, help="Decoding threads [default: all CPUs].")
@click.option("--summary", type=PATH, help="Write a JSON summary here.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def to_zarr(
    safes, store, manifest, sharded, chunks, shards, compressor, scratch, workers, summary, quiet
) -> None:
    """Append SAFE products to a Zarr v3 datacube (<tile>/<year>/<10m|20m|60m>)."""
    from eolab.core import atomic
    from eolab.sentinel2.datacube import CubeSpec, parse_blocks, parse_compressor, to_zarr

    paths, _ = _safe_paths(safes, manifest)
    spec = CubeSpec(
        chunks=parse_blocks(chunks, "--chunks"),
        shards=parse_blocks(shards, "--shards") if sharded else None,
        compressor=parse_compressor(compressor),
    )
    result = to_zarr(
        store, paths, spec, scratch=scratch, workers=_workers(workers), progress=not quiet
    )
    if summary is not None:
        atomic.write_json(summary, result)
    groups = ", ".join(f"{k}: {v['length']} dates" for k, v in result["groups"].items())
    state = "updated" if result["changed"] else "unchanged"
    click.echo(f"{store} {state}; {result['decoded']} products decoded; {groups}")


@click.command("convert", short_help="SAFE to Zarr/COG vs decoding the JP2s.")
@click.option(
    "--out",
    type=PATH,
    default=Path("results/benchmark/convert"),
    show_default=True,
    help="Work folder (fixture, outputs) and where convert.json goes.",
)
@click.option("--safe", "safe_path", type=PATH, help="Use this SAFE product instead of a fixture.")
@click.option("--scale", type=int, default=1, show_default=True, help="Fixture scale (1 = full).")
@click.option("--tile", default="35VLH", show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--repeats", type=click.IntRange(1), default=1, show_default=True)
@click.option("--workers", type=int, default=0, help="Threads [default: all CPUs].")
@click.option("--json", "json_path", type=PATH, help="Result JSON [default: OUT/convert.json].")
@click.option("--compressor", default="zstd:3:shuffle", show_default=True, help="Zarr codec.")
@click.option(
    "--steps",
    default="zarr,zarr_sharded,zarr_one_date,cog",
    show_default=True,
    help="Steps besides decode (zarr, zarr_sharded, zarr_one_date, cog).",
)
def bench_convert(
    out, safe_path, scale, tile, seed, repeats, workers, json_path, compressor, steps
) -> None:
    """SAFE -> Zarr and SAFE -> COG against decoding the same JP2s alone (the limit)."""
    from eolab.sentinel2.bench import STEPS, run_benchmark
    from eolab.sentinel2.datacube import parse_compressor

    chosen = tuple(s.strip() for s in steps.split(",") if s.strip())
    unknown = [s for s in chosen if s not in STEPS]
    if unknown:
        raise ConfigError(f"--steps: unknown {', '.join(unknown)}; choose from {STEPS}")

    if scale < 1:
        raise ConfigError(f"--scale {scale}: expected >= 1")
    result = run_benchmark(
        out,
        safe_path=safe_path,
        scale=scale,
        tile=tile,
        seed=seed,
        repeats=repeats,
        workers=_workers(workers),
        json_path=json_path,
        compressor=parse_compressor(compressor),
        steps=chosen,
    )
    click.echo(json.dumps(result["summary"], indent=2))
