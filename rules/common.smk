# Helpers shared by every stage: paths, wildcard constraints, the demo's target list.
from pathlib import Path

RESULTS = Path(config["results"])
LOGS = RESULTS / "logs"
BENCHMARKS = RESULTS / "benchmarks"
CONDA_ENV = "../envs/eolab.yaml"

# Every stage appends the file targets that `rule all` (the demo) builds.
DEMO_TARGETS = []


wildcard_constraints:
    tile="[0-9]{2}[C-HJ-NP-X][A-HJ-NP-Z]{2}",
    year="[0-9]{4}",


def results(*parts):
    """A path under the results folder, as a string for Snakemake."""
    return str(RESULTS.joinpath(*parts))


def log_path(rule_name, *wildcards):
    """The log file of a rule (one per wildcard combination)."""
    return str(LOGS.joinpath(rule_name, *wildcards)) + ".log"


def benchmark_path(rule_name, *wildcards):
    """The Snakemake benchmark TSV of a rule."""
    return str(BENCHMARKS.joinpath(rule_name, *wildcards)) + ".tsv"
