"""Snakemake entry point (rule report_intake): products verified and bytes fetched."""

import json
import sys

from eolab.report.downloads import plot_intake
from eolab.report.sentinel2 import read_benchmark

with open(snakemake.log[0], "w") as log:  # noqa: F821 - injected by Snakemake
    sys.stdout = sys.stderr = log
    smk = snakemake  # noqa: F821
    manifests, seconds = {}, {}
    for label, path in zip(smk.params.labels, smk.input.manifests, strict=True):
        with open(path, encoding="utf-8") as fh:
            manifests[label] = json.load(fh)
    for label, path in zip(smk.params.labels, smk.params.benchmarks, strict=True):
        seconds[label] = read_benchmark(path)["s"]
    plot_intake(manifests, seconds, smk.output.png, demo=False)
