"""Snakemake entry point (rule report_benv2): splits x countries, labels, conversion."""

import sys
from pathlib import Path

from eolab.report.benv2 import plot_all

with open(snakemake.log[0], "w") as log:  # noqa: F821 - injected by Snakemake
    sys.stdout = sys.stderr = log
    smk = snakemake  # noqa: F821
    plot_all(Path(smk.input.summary).parent, dict(smk.output.items()), smk.params.demo)
