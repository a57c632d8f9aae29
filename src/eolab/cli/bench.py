"""``eolab bench …``: benchmarks that print and write JSON with ratios to a same-run baseline."""

from __future__ import annotations

import click

from eolab.cli import LazyGroup

# name -> "module:attribute" of a click command; each stage adds its own line.
BENCHMARKS: dict[str, str] = {
    "patch-load": "eolab.cli.stage:patch_load",
    "layout": "eolab.cli.stage:bench_layout",
    "chips": "eolab.cli.chips:bench_chips",
    "download": "eolab.cli.download:bench_download",
    "convert": "eolab.cli.sentinel2:bench_convert",
    "benv2": "eolab.cli.benv2:bench_benv2",
    "train-feed": "eolab.cli.train:train_feed",
    "unzip-s3": "eolab.cli.stage:bench_unzip_s3",
}


@click.group(
    cls=LazyGroup, lazy=BENCHMARKS, short_help="Benchmarks of each stage against a baseline."
)
def bench() -> None:
    """Benchmarks (conversion, patch loading, training feed, BigEarthNet, downloads, chips)."""
