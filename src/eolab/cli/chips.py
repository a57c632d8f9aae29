"""``eolab chips …``: STAC items, chip index, merge, chip reads and pre-chipping."""

from __future__ import annotations

from pathlib import Path

import click

from eolab.core.errors import InputError

s3_endpoint_option = click.option(
    "--s3-endpoint",
    envvar="EOLAB_S3_ENDPOINT",
    default=None,
    help="S3 endpoint URL for s3:// hrefs (credentials from the AWS environment or files).",
)


def _s3(endpoint: str | None):
    from eolab.core.s3 import endpoint_access

    return endpoint_access(endpoint) if endpoint else None


def _href_map(pairs: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old:
            raise click.BadParameter(f"expected OLD=NEW, got {pair!r}", param_hint="--href-map")
        mapping[old] = new
    return mapping


def source_options(func):
    """Options choosing where chip pixels come from (COGs via STAC items, or the Zarr cube)."""
    options = [
        click.option(
            "--items",
            "items",
            multiple=True,
            type=click.Path(exists=True, path_type=Path),
            help="STAC item/collection/catalog JSON (for --source cog); repeatable.",
        ),
        click.option(
            "--zarr",
            "zarr_store",
            multiple=True,
            help="Zarr cube store(s) (for --source zarr); repeatable, one per tile-year.",
        ),
        click.option(
            "--source", type=click.Choice(["cog", "zarr"]), default="cog", show_default=True
        ),
        click.option(
            "--resolution", type=float, default=10.0, show_default=True, help="Output pixel (m)."
        ),
        click.option(
            "--href-map",
            multiple=True,
            metavar="OLD=NEW",
            help="Rewrite asset href prefixes, e.g. /abs/results=s3://bucket/results.",
        ),
        s3_endpoint_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _chipper(index, items, zarr_store, source, resolution, href_map, s3_endpoint):
    from eolab.chips.chipper import Chipper

    return Chipper(
        index,
        source=source,
        items=list(items),
        zarr_store=list(zarr_store),
        resolution=resolution,
        href_map=_href_map(href_map),
        s3=_s3(s3_endpoint),
    )


@click.group(short_help="Chip index, merge, chip reads, pre-chipping.")
def chips() -> None:
    """Chip index (stacchip-style, vectorised), merge, chip reads and pre-chipping."""


@chips.command("items", short_help="STAC items for the COGs of a listing.")
@click.argument("listing", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Collection folder.")
@click.option(
    "--products",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Products manifest with the SAFE folders (for the cloud masks).",
)
@click.option("--collection-id", default=None, help="[default: sentinel-2-l1c-<tile>-<year>]")
def items_cmd(listing, products, out, collection_id) -> None:
    """STAC items for the COGs listed in LISTING (``eolab sentinel2 to-cog``'s JSON)."""
    from eolab.chips.items import items_from_listing

    path, count = items_from_listing(listing, products, out, collection_id)
    click.echo(f"{count} items in {path}")


@chips.command("catalog", short_help="A root catalog.json linking collections.")
@click.argument("collections", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="catalog.json path.")
def catalog_cmd(collections, out) -> None:
    """A root catalog.json linking COLLECTIONS."""
    from eolab.chips.items import write_root_catalog

    click.echo(f"catalog {write_root_catalog(list(collections), out)}")


@chips.command("export-catalog", short_help="Catalog copy with absolute hrefs.")
@click.argument("catalog", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--base", type=click.Path(path_type=Path), help="Folder that --href-prefix replaces.")
@click.option("--href-prefix", help="Rebase hrefs under --base onto this (s3://…, https://…).")
def export_catalog_cmd(catalog, out, base, href_prefix) -> None:
    """A copy of CATALOG with absolute asset hrefs (for stackstac, or publishing elsewhere)."""
    from eolab.chips.items import export_catalog

    click.echo(f"catalog {export_catalog(catalog, out, base, href_prefix)}")


_INDEX_OPTIONS = [
    click.option("--chip-size", type=click.IntRange(1), default=256, show_default=True),
    click.option(
        "--max-nodata",
        type=click.FloatRange(0, 1),
        default=0.5,
        show_default=True,
        help="Drop chips with a larger nodata fraction.",
    ),
    click.option(
        "--sensor",
        type=click.Choice(
            [
                "auto",
                "none",
                "sentinel-2-l1c",
                "sentinel-2-l2a",
                "sentinel-1",
                "landsat-c2-l2",
                "aerial",
                "naip",
                "linz",
            ]
        ),
        default="auto",
        show_default=True,
    ),
    click.option(
        "--resolution",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="Aerial sensors (aerial, naip, linz): cut chips on this pixel size in metres "
        "[default: the item's own; linz 0.3].",
    ),
    s3_endpoint_option,
]


def index_options(func):
    """The chip and sensor options of ``index`` and ``index-batch``."""
    for option in reversed(_INDEX_OPTIONS):
        func = option(func)
    return func


@chips.command("index", short_help="One GeoParquet chip index per STAC item.")
@click.argument("items", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for indexes.")
@index_options
def index_cmd(items, out, chip_size, max_nodata, sensor, resolution, s3_endpoint) -> None:
    """One GeoParquet chip index per STAC item (ITEMS: item, collection or catalog files)."""
    from eolab.chips.index import index_items, load_items

    loaded = load_items(items)
    if not loaded:
        raise InputError(f"no STAC items in {', '.join(map(str, items))}")
    paths = index_items(
        loaded, out, chip_size, max_nodata, sensor, _s3(s3_endpoint), resolution=resolution
    )
    click.echo(f"{len(paths)} chip indexes in {out}")


@chips.command("index-batch", short_help="Index one batch of a STAC item list into one file.")
@click.argument("item_list", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--batch", type=click.IntRange(0), required=True, help="Batch number (from 0).")
@click.option(
    "--batch-size", type=click.IntRange(1), default=500, show_default=True, help="Items per batch."
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="GeoParquet file.")
@index_options
def index_batch_cmd(
    item_list, batch, batch_size, out, chip_size, max_nodata, sensor, resolution, s3_endpoint
) -> None:
    """Index items [BATCH x SIZE, (BATCH+1) x SIZE) of ITEM_LIST (one item JSON per line) into
    one GeoParquet file; `eolab chips merge` joins the batch files."""
    from eolab.chips.batches import index_batch

    rows = index_batch(
        item_list,
        batch,
        batch_size,
        out,
        chip_size,
        max_nodata,
        sensor,
        _s3(s3_endpoint),
        resolution,
    )
    click.echo(f"batch {batch}: {rows} chips in {out}")


@chips.command("merge", short_help="Merge chip indexes into one dataset.")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Dataset folder.")
def merge_cmd(sources, out) -> None:
    """Merge chip indexes (files or folders) into one dataset <out>/<platform>/<item>/…"""
    from eolab.chips.merge import merge_indexes

    summary = merge_indexes(sources, out)
    click.echo(f"{summary['chips']} chips of {summary['items']} items in {out}")


@chips.command("get", short_help="The pixels of one chip.")
@click.argument("index", type=click.Path(exists=True, path_type=Path))
@click.argument("row")
@source_options
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the chip .npz.")
def get_cmd(index, row, items, zarr_store, source, resolution, href_map, s3_endpoint, out):
    """The pixels of one chip: ROW is a position in the index or a chip id."""
    import numpy as np

    from eolab.core.atomic import atomic_open

    with _chipper(index, items, zarr_store, source, resolution, href_map, s3_endpoint) as chipper:
        position = int(row) if row.lstrip("-").isdigit() else chipper.row_of(row)
        chip = chipper[position]
    click.echo(
        f"{chip.chipid}: {chip.pixels.shape} {chip.pixels.dtype} bands {' '.join(chip.bands)}"
    )
    click.echo(f"  {chip.crs} transform {tuple(chip.transform)[:6]}")
    for name, band in zip(chip.bands, chip.pixels, strict=True):
        click.echo(f"  {name}: min {band.min()} max {band.max()} mean {band.mean():.1f}")
    if out:
        with atomic_open(out, "wb") as fh:
            np.savez(fh, pixels=chip.pixels, bands=np.array(chip.bands), chipid=chip.chipid)
        click.echo(f"wrote {out}")


@chips.command("prechip", short_help="Sampled chips as npz batches.")
@click.argument("index", type=click.Path(exists=True, path_type=Path))
@source_options
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Batch folder.")
@click.option("--max-cloud", type=click.FloatRange(0, 1), default=1.0, show_default=True)
@click.option("--max-nodata", type=click.FloatRange(0, 1), default=1.0, show_default=True)
@click.option("--platform", "platforms", multiple=True, help="Keep these platforms only.")
@click.option("--start", default=None, help="First date (YYYY-MM-DD).")
@click.option("--end", default=None, help="Last date (YYYY-MM-DD).")
@click.option("--sample", type=click.IntRange(1), default=64, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
def prechip_cmd(
    index,
    items,
    zarr_store,
    source,
    resolution,
    href_map,
    s3_endpoint,
    out,
    max_cloud,
    max_nodata,
    platforms,
    start,
    end,
    sample,
    seed,
    batch_size,
) -> None:
    """npz batches of chips sampled without replacement by filters on the index statistics."""
    from eolab.chips.prechip import ChipFilter, prechip

    filters = ChipFilter(max_cloud, max_nodata, tuple(platforms), start, end)
    with _chipper(index, items, zarr_store, source, resolution, href_map, s3_endpoint) as chipper:
        manifest = prechip(chipper.index, chipper, out, filters, sample, seed, batch_size)
    click.echo(
        f"{manifest['chips']} chips of {manifest['candidates']} candidates in "
        f"{len(manifest['batches'])} batches under {out}"
    )


@click.command("chips", short_help="Chip index: eolab vs stacchip and a loop.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("results/benchmark/chips.json"),
    show_default=True,
)
@click.option("--repeats", type=click.IntRange(1), default=3, show_default=True)
@click.option(
    "--loop-repeats",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Repeats of the slow per-chip Python loop baseline.",
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--stacchip-venv",
    type=click.Path(path_type=Path),
    default=None,
    help="Venv with stacchip 0.1.38 (created on first use) [default: ~/.cache/eolab/…].",
)
@click.option("--no-stacchip", is_flag=True, help="Skip stacchip; compare with the loop only.")
def bench_chips(out, repeats, loop_repeats, seed, stacchip_venv, no_stacchip) -> None:
    """Index a full-size tile: eolab vs stacchip 0.1.38 and a per-chip Python loop."""
    from eolab.chips.bench import run

    result = run(out, repeats, loop_repeats, seed, stacchip_venv, not no_stacchip)
    for name, case in result["cases"].items():
        click.echo(
            f"{name}: {case['chips_kept']}/{case['chips_total']} chips kept; eolab "
            f"{case['eolab']['median_s']:.3f} s, of which reading the mask files "
            f"{case['read_files_only']['median_s']:.3f} s; per-chip Python loop "
            f"{case['python_loop']['median_s']:.2f} s ({case['ratio_python_loop']:.1f}x eolab)"
        )
        if "stacchip" in case:
            click.echo(
                f"  stacchip 0.1.38 {case['stacchip']['median_s']:.2f} s: "
                f"{case['ratio_stacchip']:.1f}x eolab end to end, "
                f"{case['ratio_stacchip_beyond_read']:.0f}x beyond the reads; read-only limit "
                f"{case['ratio_stacchip_limit']:.1f}x; agreement {case['agreement_stacchip']}"
            )
        click.echo(f"  agreement with the loop {case['agreement_python_loop']}")
    if not result["stacchip"]["used"] and not no_stacchip:
        click.echo(f"stacchip not run: {result['stacchip'].get('error')}")
    click.echo(f"wrote {out}")
