"""Snakemake entry point (rule report_chips): chip grid maps per tile and distributions."""

import sys

from eolab.report.chips import plot_all

with open(snakemake.log[0], "w") as log:  # noqa: F821 - injected by Snakemake
    sys.stdout = sys.stderr = log
    smk = snakemake  # noqa: F821
    plot_all(smk.input.index, dict(smk.output.items()), smk.params.demo)
