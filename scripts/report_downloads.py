"""Snakemake entry point (rule report_downloads): files, bytes and throughput per dataset."""

import sys

from eolab.report.downloads import plot_downloads, read_summaries

with open(snakemake.log[0], "w") as log:  # noqa: F821 - injected by Snakemake
    sys.stdout = sys.stderr = log
    smk = snakemake  # noqa: F821
    plot_downloads(read_summaries(smk.input.summaries), smk.output.png, smk.params.demo)
