"""Snakemake entry point (rule plot_file_sizes): file-size histograms of every format."""

import sys

from eolab.lab.plots import file_sizes, plot_file_sizes
from eolab.lab.staging import dataset

with open(snakemake.log[0], "w") as log:  # noqa: F821 - injected by Snakemake
    sys.stdout = sys.stderr = log
    entries = snakemake.params.entries  # noqa: F821
    tile, year = snakemake.wildcards.tile, snakemake.wildcards.year  # noqa: F821
    datasets = {fmt: dataset(fmt, path) for fmt, path in entries.items()}
    plot_file_sizes(file_sizes(datasets), snakemake.output.png, tile, year)  # noqa: F821
    for fmt, ds in datasets.items():
        print(f"{fmt}: {len(ds.files)} files, {ds.nbytes()} bytes")
