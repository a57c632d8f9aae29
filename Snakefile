# eolab: Earth-observation downloads to ML-ready data, and which storage/format feeds training fastest.
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

from eolab.core.config_checks import error_lines, schema_problems, value_problems

min_version("9.0")


configfile: "config/config.yaml"


# One line per problem, before any job: a misspelt key names the closest valid one, and values
# a job would refuse (after Snakemake deleted its old output) are refused here.
SCHEMA = Path(workflow.basedir) / "config" / "schema.yaml"
if problems := schema_problems(config, SCHEMA):
    sys.exit(error_lines(problems))
validate(config, "config/schema.yaml")
if problems := value_problems(config):
    sys.exit(error_lines(problems))


include: "rules/common.smk"
include: "rules/fixtures.smk"
include: "rules/intake.smk"
include: "rules/sentinel2.smk"
include: "rules/lab.smk"
include: "rules/stage.smk"
include: "rules/benchmark.smk"
include: "rules/chips.smk"
include: "rules/benv2.smk"
include: "rules/download.smk"
include: "rules/report.smk"
include: "rules/collect.smk"


report: "report/workflow.rst"


# Tiny jobs run where Snakemake runs (under profiles/slurm: not as 60-minute, 4 GB Slurm jobs).
localrules:
    all,
    fixtures,
    intake,
    download,
    sentinel2,
    benv2,
    chips,
    lab,
    report,
    chips_items,
    chips_catalog,
    chips_merge,
    chips_merge_batches,
    plot_file_sizes,
    plot_patch_load,
    report_sentinel2,
    report_benv2,
    report_chips,
    report_provenance,
    report_downloads,
    report_intake,


# The demo: every stage of rules/collect.smk except `download` (on request only).
rule all:
    default_target: True
    input:
        rules.fixtures.input,
        rules.intake.input,
        rules.sentinel2.input,
        rules.benv2.input,
        rules.chips.input,
        rules.lab.input,
        rules.report.input,
