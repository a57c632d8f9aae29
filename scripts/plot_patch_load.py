"""Snakemake entry point (rule plot_patch_load): load-time bars and throughput per budget
(measured from the train-feed result when the rule has one as input ``feed``)."""

import json
import sys

from eolab.lab.plots import plot_load_times, plot_throughput, staging_seconds


def _load(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


with open(snakemake.log[0], "w") as log:  # noqa: F821 - injected by Snakemake
    sys.stdout = sys.stderr = log
    result = _load(snakemake.input.result)  # noqa: F821
    staged = staging_seconds(_load(path) for path in snakemake.input.timings)  # noqa: F821
    feed_paths = snakemake.input.get("feed", [])  # noqa: F821
    feed_paths = [feed_paths] if isinstance(feed_paths, str) else list(feed_paths)
    feed = _load(feed_paths[0]) if feed_paths else None
    plot_load_times(result, snakemake.output.load_times)  # noqa: F821
    plot_throughput(result, staged, snakemake.output.throughput, feed=feed)  # noqa: F821
    print(f"staging seconds used: {staged}")
    print(f"throughput: {'measured, ' + feed_paths[0] if feed else 'calculated (no train-feed)'}")
