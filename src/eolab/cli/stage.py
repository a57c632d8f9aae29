"""``eolab stage …``: timed staging between storages; each command writes a timing JSON.

Copies land on node-local temp (``$LOCAL_SCRATCH``, ``$TMPDIR`` or ``--temp-dir``) and are
removed afterwards: the timing is the output. Without an S3 endpoint (``--s3-endpoint-url``,
``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` or the ``--s3-profile``'s ``endpoint_url``) each
command starts a local moto server for its own work and stops it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click

from eolab.lab import formats
from eolab.lab.staging import s3_connections


def storage_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options that say where temp and S3 are (credentials only from the AWS environment)."""
    options = [
        click.option(
            "--temp-dir",
            type=click.Path(path_type=Path),
            default=None,
            help="Node-local fallback when neither $LOCAL_SCRATCH nor $TMPDIR is set.",
        ),
        click.option("--s3-bucket", default="eolab-lab", show_default=True),
        click.option("--s3-prefix", default="", help="Key prefix inside the bucket."),
        click.option(
            "--s3-endpoint-url",
            default=None,
            help="S3 endpoint [default: AWS environment or profile; else a local server].",
        ),
        click.option("--s3-profile", default=None, help="Named AWS profile (credentials)."),
        click.option("--s3-region", default=None),
        click.option(
            "--s3-public-read",
            is_flag=True,
            help="Let anyone GET the bucket's objects (read-only bucket policy; no list/write).",
        ),
        click.option(
            "--s3-log",
            type=click.Path(path_type=Path),
            default=None,
            help="Log file of a local S3 server, if one is started.",
        ),
        click.option(
            "--workers",
            type=click.IntRange(1, 256),
            default=8,
            show_default=True,
            help="Parallel file copies / S3 transfers.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def comma_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (the comma-separated options: storages, skip)."""
    return [v.strip() for v in text.split(",") if v.strip()]


def resolve_storage(kw: dict[str, Any]) -> tuple[Any, Any]:
    """(temp root, S3Config) from the common options."""
    from eolab.core.s3 import S3Config
    from eolab.lab.storage import temp_root

    s3 = S3Config.from_config(
        {
            "bucket": kw["s3_bucket"],
            "prefix": kw["s3_prefix"],
            "endpoint_url": kw["s3_endpoint_url"],
            "profile": kw["s3_profile"],
            "region": kw["s3_region"],
            "public_read": kw["s3_public_read"],
        }
    )
    return temp_root(kw["temp_dir"]), s3


def describe_s3(s3: Any) -> dict[str, Any]:
    """What may be written about S3: endpoint host (no user info), bucket, prefix."""
    if s3.local:
        endpoint = "local moto_server (started for this job)"
    else:
        parsed = urlparse(s3.endpoint_url or "")
        endpoint = f"{parsed.scheme}://{parsed.hostname}" + (
            f":{parsed.port}" if parsed.port else ""
        )
    return {"endpoint": endpoint, "bucket": s3.bucket, "prefix": s3.prefix}


def write_timing(
    path: Path,
    timing: Any,
    tile: str,
    year: int,
    route: tuple[str, str],
    temp_dir: Path | None,
    **extra: Any,
) -> None:
    """Write a staging timing JSON (what moved, how long, where temp came from, provenance)."""
    from eolab.core.atomic import write_json
    from eolab.core.provenance import environment
    from eolab.core.scratch import resolve_node_local

    doc = timing.to_json()
    doc.update(
        tile=tile,
        year=year,
        storage={"from": route[0], "to": route[1]},
        temp_source=resolve_node_local(temp_dir).source,
        environment=environment(),
        **extra,
    )
    write_json(path, doc)
    click.echo(
        f"{timing.operation} {timing.format} {route[0]}->{route[1]}: {timing.seconds:.3f} s, "
        f"{timing.bytes} bytes, {timing.objects} objects, {timing.mb_per_s:.1f} MB/s"
    )


def common(func: Callable[..., Any]) -> Callable[..., Any]:
    """--format/--input/--tile/--year/--timing plus the storage options."""

    @click.option("--format", "fmt", type=click.Choice(formats.NAMES), required=True)
    @click.option(
        "--input",
        "entry",
        type=click.Path(path_type=Path, exists=True),
        required=True,
        help="Products manifest, COG listing, Zarr store or zip.",
    )
    @click.option("--tile", required=True)
    @click.option("--year", type=int, required=True)
    @click.option(
        "--timing", type=click.Path(path_type=Path), required=True, help="Timing JSON to write."
    )
    @storage_options
    @functools.wraps(func)
    def wrapper(**kw: Any) -> Any:
        return func(**kw)

    return wrapper


@click.group(short_help="Timed staging between storages.")
def stage() -> None:
    """Timed staging: copy to temp, upload to S3, download from S3, zip/unzip on temp, unzip
    from S3 straight to temp."""


@stage.command("copy", short_help="Copy a format to node-local temp.")
@common
@click.option(
    "--dest",
    type=click.Path(path_type=Path),
    default=None,
    help="Copy into this folder and keep it (e.g. a network drive) instead of temp.",
)
def copy(fmt, entry, tile, year, timing, dest, **kw) -> None:
    """Copy a format from the network drive to node-local temp (then remove the copy), or to
    ``--dest`` (kept; written under a temporary name and renamed when complete)."""
    from eolab.core.atomic import atomic_path
    from eolab.lab.staging import copy_dataset, dataset, scratch_area

    ds = dataset(fmt, entry)
    if dest is not None:
        with atomic_path(dest) as tmp:
            _, result = copy_dataset(ds, tmp, kw["workers"])
        result.destination = str(dest)
        write_timing(timing, result, tile, year, ("results", "network"), kw["temp_dir"])
        return
    temp, _ = resolve_storage(kw)
    with scratch_area(temp) as area:
        _, result = copy_dataset(ds, area, kw["workers"])
    write_timing(timing, result, tile, year, ("network", "temp"), kw["temp_dir"])


@stage.command("upload", short_help="Upload a format to S3.")
@common
def upload(fmt, entry, tile, year, timing, **kw) -> None:
    """Upload a format from the network drive to S3 (parallel files, multipart large files)."""
    from eolab.core.s3 import s3_access
    from eolab.lab.staging import dataset, upload_dataset

    _, s3 = resolve_storage(kw)
    ds = dataset(fmt, entry)
    with s3_access(s3, kw["s3_log"]) as access:
        client = access.client(s3_connections(kw["workers"]))
        result = upload_dataset(ds, client, access.bucket, s3.key(fmt), kw["workers"])
    route = ("network", "s3")
    write_timing(timing, result, tile, year, route, kw["temp_dir"], s3=describe_s3(s3))


@stage.command("download", short_help="Download a format from S3 to temp.")
@common
def download(fmt, entry, tile, year, timing, **kw) -> None:
    """Download a format from S3 to node-local temp (uploading it first where it is missing)."""
    from eolab.core.s3 import s3_access
    from eolab.lab.staging import dataset, download_dataset, ensure_uploaded, scratch_area

    temp, s3 = resolve_storage(kw)
    ds = dataset(fmt, entry)
    with s3_access(s3, kw["s3_log"]) as access:
        client = access.client(s3_connections(kw["workers"]))
        setup = ensure_uploaded(ds, client, access.bucket, s3.key(fmt), kw["workers"])
        with scratch_area(temp) as area:
            _, result = download_dataset(
                ds, client, access.bucket, s3.key(fmt), area, kw["workers"]
            )
    first = setup.to_json() if setup else None
    write_timing(
        timing,
        result,
        tile,
        year,
        ("s3", "temp"),
        kw["temp_dir"],
        s3=describe_s3(s3),
        uploaded_first=first,
    )


@stage.command("zip", short_help="Zip a Zarr store on node-local temp.")
@common
def zip_(fmt, entry, tile, year, timing, **kw) -> None:
    """Zip a Zarr store on node-local temp (the store is copied there first, untimed)."""
    from eolab.lab.staging import copy_dataset, dataset, scratch_area, zip_store

    temp, _ = resolve_storage(kw)
    ds = dataset(fmt, entry)
    with scratch_area(temp) as area:
        staged, setup = copy_dataset(ds, area / "store", kw["workers"])
        _, result = zip_store(staged, area / f"{ds.entry}.zip")
    route = ("temp", "temp")
    write_timing(timing, result, tile, year, route, kw["temp_dir"], copied_first=setup.to_json())


@stage.command("unzip", short_help="Unzip a zipped Zarr on node-local temp.")
@common
def unzip(fmt, entry, tile, year, timing, **kw) -> None:
    """Unzip a zipped Zarr on node-local temp (the zip is copied there first, untimed)."""
    from eolab.lab.staging import copy_dataset, dataset, scratch_area, unzip_store

    temp, _ = resolve_storage(kw)
    ds = dataset(fmt, entry)
    with scratch_area(temp) as area:
        staged, setup = copy_dataset(ds, area / "zip", kw["workers"])
        name = ds.entry.removesuffix(".zip")
        _, result = unzip_store(staged, area / "store" / name, kw["workers"])
    route = ("temp", "temp")
    write_timing(timing, result, tile, year, route, kw["temp_dir"], copied_first=setup.to_json())


@stage.command("unzip-s3", short_help="Unzip from S3 straight to temp.")
@common
@click.option(
    "--streams",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="1: one sequential GET parsed as it arrives; N: N concurrent ranged GETs.",
)
def unzip_s3(fmt, entry, tile, year, timing, streams, **kw) -> None:
    """Unzip a zipped Zarr from S3 straight into a store folder on node-local temp, extracting
    as it downloads (uploading the zip first where it is missing)."""
    from eolab.core.s3 import s3_access
    from eolab.lab.staging import dataset, ensure_uploaded, scratch_area, unzip_from_s3

    temp, s3 = resolve_storage(kw)
    ds = dataset(fmt, entry)
    with s3_access(s3, kw["s3_log"]) as access:
        client = access.client(s3_connections(kw["workers"]))
        setup = ensure_uploaded(ds, client, access.bucket, s3.key(fmt), kw["workers"])
        with scratch_area(temp) as area:
            name = ds.entry.removesuffix(".zip")
            _, result = unzip_from_s3(
                ds, client, access.bucket, s3.key(fmt), area / "store" / name, streams
            )
    first = setup.to_json() if setup else None
    write_timing(
        timing,
        result,
        tile,
        year,
        ("s3", "temp"),
        kw["temp_dir"],
        s3=describe_s3(s3),
        uploaded_first=first,
    )


def _input_param(name: str) -> str:
    return f"input_{name.replace('-', '_')}"


def format_inputs(
    names: Sequence[str] = formats.NAMES,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: one option per format of the registry in ``names`` (``--safe``, ``--cog``, …)
    naming its entry point; `given_datasets` reads them back."""

    def add(func: Callable[..., Any]) -> Callable[..., Any]:
        for name in reversed(names):
            form = formats.get(name)
            option = click.option(
                form.option,
                _input_param(name),
                type=click.Path(path_type=Path, exists=True),
                help=form.entry,
            )
            func = option(func)
        return func

    return add


def given_datasets(kw: dict[str, Any], names: Sequence[str] = formats.NAMES) -> dict[str, Any]:
    """The datasets of the format options given (popped from ``kw``), by format name; a usage
    error when none is given."""
    from eolab.lab.staging import dataset

    paths = {name: kw.pop(_input_param(name)) for name in names}
    found = {fmt: dataset(fmt, path) for fmt, path in paths.items() if path is not None}
    if not found:
        options = ", ".join(formats.get(name).option for name in names)
        raise click.UsageError(f"give at least one of {options}")
    return found


@click.command("patch-load", short_help="Load random patches: formats x storages.")
@format_inputs()
@click.option("--tile", required=True)
@click.option("--year", type=int, required=True)
@click.option(
    "--storages",
    default="network,temp,s3",
    show_default=True,
    help="Comma-separated: network, temp, s3.",
)
@click.option(
    "--repeats",
    type=click.IntRange(1),
    default=10,
    show_default=True,
    help="Counted repeats (one random patch each), after one warm-up.",
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--patch-size",
    type=click.FloatRange(min=1),
    default=5100,
    show_default=True,
    help="Patch side (m); rounded down to whole pixels of the coarsest group.",
)
@click.option(
    "--align",
    type=click.FloatRange(min=1),
    default=60,
    show_default=True,
    help="Patch corners on multiples of this (m).",
)
@click.option(
    "--drop-caches/--no-drop-caches",
    default=True,
    show_default=True,
    help="Drop the page cache before every timed load (where root allows).",
)
@click.option(
    "--baseline/--no-baseline",
    default=True,
    show_default=True,
    help="Also time xarray.open_zarr(..).isel(..).load() on the Zarr store.",
)
@click.option(
    "--skip",
    default="",
    help="Comma-separated storage:format pairs to leave out, e.g. s3:safe,s3:cog.",
)
@click.option("--x1", type=float, default=None, help="Region left (m, tile CRS) [default: tile].")
@click.option("--y1", type=float, default=None, help="Region top (m) [default: tile].")
@click.option("--x2", type=float, default=None, help="Region right (m) [default: tile].")
@click.option("--y2", type=float, default=None, help="Region bottom (m) [default: tile].")
@click.option("--keep-temp", is_flag=True, help="Keep the temp copies (for debugging).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Result JSON.")
@storage_options
def patch_load(
    tile,
    year,
    storages,
    repeats,
    seed,
    patch_size,
    align,
    drop_caches,
    baseline,
    skip,
    keep_temp,
    out,
    x1,
    y1,
    x2,
    y2,
    **kw,
) -> None:
    """Time loading random patch time series from every format on every storage.

    Patches are drawn inside the tile, or inside the region ``--x1 --y1 --x2 --y2`` of it (the
    tile's CRS; a side not given is the tile's edge). All formats must return identical pixels
    for every patch. Prints a summary with the ratios to the xarray/dask baseline and writes the
    result JSON (the reference's shape, extended)."""
    from eolab.core.atomic import write_json
    from eolab.core.errors import ConfigError
    from eolab.lab.patchbench import format_report, run
    from eolab.lab.region import Region
    from eolab.lab.storage import STORAGES

    region = Region(x1, y1, x2, y2)
    try:
        region.check_order()  # the tile bounds are checked once the formats are open
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--x1/--y1/--x2/--y2") from None
    datasets = given_datasets(kw)
    chosen = comma_list(storages)
    unknown = sorted(set(chosen) - set(STORAGES))
    if unknown or not chosen:
        raise click.UsageError(f"--storages: unknown {unknown}; choose from {STORAGES}")
    temp, s3 = resolve_storage(kw)
    doc = run(
        datasets,
        tile,
        year,
        storages=chosen,
        repeats=repeats,
        seed=seed,
        patch_m=patch_size,
        align_m=align,
        temp_root=temp,
        s3_config=s3 if "s3" in chosen else None,
        s3_log=kw["s3_log"],
        workers=kw["workers"],
        drop_caches=drop_caches,
        baseline=baseline,
        keep_temp=keep_temp,
        skip=comma_list(skip),
        echo=click.echo,
        region=region,
    )
    if "s3" in chosen:
        doc["s3"] = describe_s3(s3)
    write_json(out, doc)
    click.echo(format_report(doc))
    click.echo(f"wrote {out}")


@click.command("layout", short_help="Cube layouts: build each, time the same patches.")
@click.option(
    "--safe",
    "manifest",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Products manifest (JSON) of the tile-year's SAFE products.",
)
@click.option("--tile", required=True)
@click.option("--year", type=int, required=True)
@click.option(
    "--layouts",
    default=None,
    help="Comma-separated layout names [default: the standard candidates, see docs/lab.md].",
)
@click.option("--repeats", type=click.IntRange(1), default=5, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--patch-size", type=click.FloatRange(min=1), default=5100, show_default=True)
@click.option("--align", type=click.FloatRange(min=1), default=60, show_default=True)
@click.option(
    "--drop-caches/--no-drop-caches",
    default=True,
    show_default=True,
    help="Also time cold loads (page cache dropped before each; where root allows).",
)
@click.option(
    "--shard-mb",
    type=click.IntRange(1),
    default=4096,
    show_default=True,
    help="Upper bound of one shard, uncompressed (MB): a shard is written whole, in memory.",
)
@click.option("--workers", type=int, default=None, help="Conversion threads [default: all CPUs].")
@click.option(
    "--work",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the stores (local storage; removed after unless --keep).",
)
@click.option("--keep", is_flag=True, help="Keep the built stores.")
@click.option(
    "--convert-each",
    is_flag=True,
    help="Convert the SAFE products for every layout [default: once, for the first layout; "
    "the others rewrite its data arrays].",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Result JSON.")
def bench_layout(
    manifest,
    tile,
    year,
    layouts,
    repeats,
    seed,
    patch_size,
    align,
    drop_caches,
    shard_mb,
    workers,
    work,
    keep,
    convert_each,
    out,
) -> None:
    """Build the tile-year's cube in every candidate layout and time random patches on each.

    Reports per layout load time warm and cold, the two-thread decode bound, read
    amplification, objects and bytes on disk, conversion time, and amplification and objects
    per tile-year from chunk geometry at 190 full-size dates; ends with a recommendation."""
    from eolab.core.atomic import write_json
    from eolab.lab import layout
    from eolab.sentinel2.products import product_paths

    names = layouts.split(",") if layouts else layout.DEFAULT_LAYOUTS
    names = [n.strip() for n in names if n.strip()]
    for name in names:  # a typo fails before anything is built
        layout.parse_layout(name)
    doc = layout.sweep(
        product_paths(manifest),
        tile,
        year,
        work,
        names,
        repeats=repeats,
        seed=seed,
        patch_m=patch_size,
        align_m=align,
        drop_caches=drop_caches,
        shard_bytes=shard_mb << 20,
        workers=workers,
        keep=keep,
        echo=click.echo,
        convert_each=convert_each,
    )
    doc["manifest"] = str(manifest)
    write_json(out, doc)
    click.echo(layout.format_report(doc))
    click.echo(f"wrote {out}")


@click.command("unzip-s3", short_help="Streamed unzip vs download + unzip.")
@click.option(
    "--input",
    "zip_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="A zipped Zarr to use [default: generate one of --size-mb random data].",
)
@click.option(
    "--size-mb",
    type=click.IntRange(1),
    default=1024,
    show_default=True,
    help="Size of the generated store (without --input).",
)
@click.option(
    "--streams",
    default="1,4",
    show_default=True,
    help="Comma-separated stream counts to time (1: one sequential GET).",
)
@click.option("--repeats", type=click.IntRange(1), default=3, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--http/--no-http",
    default=False,
    show_default=True,
    help="Also serve the zip from a local nginx: one GET then unzip vs unzip_stream over it.",
)
@click.option(
    "--only",
    default="",
    help="Comma-separated variants to run (e.g. get+unzip,stream) [default: all].",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Result JSON.")
@storage_options
def bench_unzip_s3(zip_path, size_mb, streams, repeats, seed, http, only, out, **kw) -> None:
    """Streamed unzip S3 -> temp against download + unzip of the same zip (same S3 server);
    prints each variant's median time and its ratio to download + unzip."""
    from eolab.core.atomic import write_json
    from eolab.core.s3 import s3_access
    from eolab.lab.staging import scratch_area
    from eolab.zarrio import unzip_bench

    try:
        counts = sorted({int(s) for s in streams.split(",") if s.strip()})
    except ValueError:
        raise click.UsageError(f"--streams: comma-separated integers, got {streams!r}") from None
    if not counts or counts[0] < 1:
        raise click.UsageError("--streams: at least one count >= 1")
    temp, s3 = resolve_storage(kw)
    with scratch_area(temp) as work:
        if zip_path is None:
            from eolab.fixtures.random_zarr import random_store
            from eolab.zarrio.zipzarr import zip_store

            click.echo(f"generating a {size_mb} MB random store under {work}")
            store = random_store(work / "random.zarr", size_mb << 20, seed)
            zip_path = work / "random.zarr.zip"
            zip_store(store, zip_path)
        with s3_access(s3, kw["s3_log"]) as access:
            client = access.client(s3_connections(kw["workers"]))
            doc = unzip_bench.run(
                zip_path,
                client,
                access.bucket,
                s3.key("unzip-bench"),
                temp,
                counts,
                repeats,
                kw["workers"],
                echo=click.echo,
                http=http,
                only=[v.strip() for v in only.split(",") if v.strip()],
            )
    doc["s3"] = describe_s3(s3)
    write_json(out, doc)
    click.echo(unzip_bench.format_report(doc))
    click.echo(f"wrote {out}")
