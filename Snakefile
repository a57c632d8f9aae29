# eolab: Earth-observation downloads to ML-ready data, and which storage/format feeds training fastest.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


include: "rules/common.smk"
include: "rules/fixtures.smk"


rule all:
    default_target: True
    input:
        DEMO_TARGETS,
