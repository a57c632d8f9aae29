# eolab: Earth-observation downloads to ML-ready data, and which storage/format feeds training fastest.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


include: "rules/common.smk"
include: "rules/fixtures.smk"
include: "rules/intake.smk"
include: "rules/sentinel2.smk"
include: "rules/lab.smk"
include: "rules/stage.smk"
include: "rules/benchmark.smk"
include: "rules/report.smk"
include: "rules/chips.smk"
include: "rules/benv2.smk"
include: "rules/download.smk"


rule all:
    default_target: True
    input:
        DEMO_TARGETS,
