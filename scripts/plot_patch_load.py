"""Snakemake entry point (rule plot_patch_load): load-time bars and throughput per budget."""

import json
import sys

from eolab.lab.plots import plot_load_times, plot_throughput, staging_seconds

with open(snakemake.log[0], "w") as log:  # noqa: F821 - injected by Snakemake
    sys.stdout = sys.stderr = log
    with open(snakemake.input.result, encoding="utf-8") as fh:  # noqa: F821
        result = json.load(fh)
    timings = []
    for path in snakemake.input.timings:  # noqa: F821
        with open(path, encoding="utf-8") as fh:
            timings.append(json.load(fh))
    staged = staging_seconds(timings)
    plot_load_times(result, snakemake.output.load_times)  # noqa: F821
    plot_throughput(result, staged, snakemake.output.throughput)  # noqa: F821
    print(f"staging seconds used: {staged}")
