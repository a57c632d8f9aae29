"""Snakemake entry point (rule report_provenance): the provenance page of the report."""

import sys

from eolab.report.provenance import write_page

with open(snakemake.log[0], "w") as log:  # noqa: F821 - injected by Snakemake
    sys.stdout = sys.stderr = log
    smk = snakemake  # noqa: F821
    write_page(smk.config, smk.params.benchmarks, smk.input.records, smk.output.page)
