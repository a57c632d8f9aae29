"""Snakemake entry point (rule report_sentinel2): quicklooks, conversion times and sizes."""

import sys

from eolab.report.sentinel2 import plot_all

with open(snakemake.log[0], "w") as log:  # noqa: F821 - injected by Snakemake
    sys.stdout = sys.stderr = log
    smk = snakemake  # noqa: F821
    plot_all(
        smk.wildcards.tile,
        int(smk.wildcards.year),
        smk.params.store,
        smk.input.manifest,
        smk.params.benchmarks,
        smk.params.entries,
        dict(smk.output.items()),
        smk.params.demo,
    )
