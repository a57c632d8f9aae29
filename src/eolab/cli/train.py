"""``eolab bench train-feed``: measured training throughput (torch DataLoader) per storage ×
format; see :mod:`eolab.train.bench`."""

from __future__ import annotations

from pathlib import Path

import click

from eolab.cli.stage import (
    comma_list,
    describe_s3,
    format_inputs,
    given_datasets,
    resolve_storage,
    storage_options,
)

#: The formats a training loop reads (every lab format but the raw SAFE reference).
FEED_FORMATS = ("cog", "zarr", "zarr-sharded", "zarr-zip")


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: expected comma-separated integers") from exc
    if not values or min(values) < 0:
        raise click.BadParameter(f"{text!r}: expected integers >= 0")
    return values


@click.command("train-feed", short_help="Measured DataLoader throughput per format.")
@format_inputs(FEED_FORMATS)
@click.option("--tile", required=True)
@click.option("--year", type=int, required=True)
@click.option(
    "--storages",
    default="network,s3",
    show_default=True,
    help=(
        "Comma-separated: network, temp, s3, s3-temp (S3 -> temp, then train), "
        "unzip-temp (zip -> temp -> unzip, then train; zarr-zip only)."
    ),
)
@click.option(
    "--skip",
    default="",
    help="Comma-separated storage:format pairs to leave out, e.g. s3:zarr-zip.",
)
@click.option(
    "--samples",
    type=click.IntRange(1),
    default=32,
    show_default=True,
    help="Timed samples per DataLoader run (after the warm-up).",
)
@click.option(
    "--warmup", type=click.IntRange(0), default=2, show_default=True, help="Untimed batches."
)
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True)
@click.option(
    "--loader-workers",
    default="0,1,2",
    show_default=True,
    help="DataLoader worker processes to measure, comma-separated.",
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--patch-size",
    type=click.FloatRange(min=1),
    default=5100,
    show_default=True,
    help="Patch side (m); rounded down to whole pixels of the coarsest group.",
)
@click.option("--align", type=click.FloatRange(min=1), default=60, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Result JSON.")
@storage_options
def train_feed(
    tile,
    year,
    storages,
    skip,
    samples,
    warmup,
    batch_size,
    loader_workers,
    seed,
    patch_size,
    align,
    out,
    **kw,
) -> None:
    """Measure samples/s a torch DataLoader feeds from each storage × format (0, 1, 2 … worker
    processes), time to the first batch, and the ratio to the CPU bound of the bare loader
    measured in the same run. Writes the result JSON with provenance."""
    from eolab.core.atomic import write_json
    from eolab.train.bench import format_report, run

    datasets = given_datasets(kw, FEED_FORMATS)
    chosen = comma_list(storages)
    temp, s3 = resolve_storage(kw)
    reads_s3 = bool({"s3", "s3-temp"} & set(chosen))  # s3-temp downloads from S3 too
    doc = run(
        datasets,
        tile,
        year,
        storages=chosen,
        samples=samples,
        warmup=warmup,
        batch_size=batch_size,
        workers=_ints(loader_workers),
        seed=seed,
        patch_m=patch_size,
        align_m=align,
        temp_root=temp,
        s3_config=s3 if reads_s3 else None,
        s3_log=kw["s3_log"],
        copies=kw["workers"],
        skip=comma_list(skip),
        echo=click.echo,
    )
    if reads_s3:
        doc["s3"] = describe_s3(s3)
    write_json(out, doc)
    click.echo(format_report(doc))
    click.echo(f"wrote {out}")
