# Helpers shared by every stage: paths, wildcard constraints, the Slurm account check.
import os
import sys
from pathlib import Path

from eolab.lab.bucketplan import sentinel2_years

# Each config writes under its own folder (config key `results`), so a cluster or bench config
# never plans reruns of the demo's jobs: every rule path goes through results() below.
RESULTS = Path(config["results"])
LOGS = RESULTS / "logs"
BENCHMARKS = RESULTS / "benchmarks"
CONDA_ENV = "../envs/eolab.yaml"


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


def check_slurm_account():
    """Stop the plan when the profile's Slurm account is an unset environment variable (profiles
    say `slurm_account: "$CSC_PROJECT"`): every job would be submitted with it verbatim.
    """
    # Inside a submitted job the plan was checked already.
    if workflow.remote_exec:
        return
    settings = workflow.resource_settings
    per_rule = [
        settings.default_resources or {},
        *settings.overwrite_resources.values(),
    ]
    for resources in per_rule:
        account = resources.get("slurm_account")
        raw = str(account.raw) if account is not None else ""
        if "$" in raw and os.path.expandvars(raw) == raw:
            sys.exit(
                f"eolab: error: the Slurm account is {raw}, an unset environment variable:"
                f" export {raw.strip('${}')}=project_<number> (your billing project) first"
            )


check_slurm_account()


S2 = config["sentinel2"]
S2_TILES = S2["tiles"]
# Every stage runs per tile-year: `years` (a list or {start, end}) when set, else `year`.
S2_YEARS = sentinel2_years(S2)


def s2_products_manifest(wildcards):
    """The products manifest of a tile-year from the configured source (fixtures or CDSE)."""
    name = f"{wildcards.tile}_{wildcards.year}.json"
    if S2["source"] == "fixtures":
        return results("fixtures", "sentinel2", name)
    return results("intake", "cdse", name)


def gres_nvme(factor=2.0, margin_gb=10):
    """For `resources: gres=gres_nvme()`: node-local NVMe for a heavy job, `nvme:<GiB>` = factor x
    its inputs (a products manifest counts its SAFE products) + margin, where Slurm offers an
    nvme GRES (CSC Puhti: the job sees it as $LOCAL_SCRATCH); "" (no GRES) on Roihu or a laptop.
    """

    def gres(wildcards, input):
        from eolab.core.scratch import nvme_gres

        return nvme_gres(input, factor, margin_gb)

    return gres


def cog_folder(tile, year):
    """The COGs of a tile-year (beside the listing, which is the rule's output)."""
    return results("sentinel2", "cog", tile, str(year))


def zarr_store(kind, tile, year):
    """A tile-year's Zarr store, kind "zarr" or "zarr-sharded" (beside its summary)."""
    return results("sentinel2", kind, f"{tile}_{year}.zarr")


def zarr_summary(kind, tile="{tile}", year="{year}"):
    """The summary JSON to-zarr writes when a store is complete: the rule's output."""
    return zarr_store(kind, tile, year) + ".summary.json"


# Long STAC item lists indexed in batches (rules/chips.smk: chips_index_batch, one job per
# `chips.index_batch_size` items, and chips_merge_batches). The batch count comes from the list's
# length when the workflow is planned (eolab.chips.batches), so no checkpoint is needed.
ITEM_LISTS = config["chips"]["item_lists"]
INDEX_BATCH_SIZE = config["chips"]["index_batch_size"]


wildcard_constraints:
    item_list="|".join(ITEM_LISTS) or "no-item-list",
    batch="[0-9]{4}",


def index_batch_file(item_list="{item_list}", batch="{batch}"):
    """One batch's GeoParquet file (a pattern, or one file)."""
    return results("chips", "index_batches", item_list, f"{batch}.parquet")


def index_batches(wildcards):
    """The batch files of an item list: ceil(items / chips.index_batch_size) of them."""
    from eolab.chips.batches import batch_count, read_item_list

    items = len(read_item_list(ITEM_LISTS[wildcards.item_list]))
    return [
        index_batch_file(wildcards.item_list, f"{b:04d}")
        for b in range(batch_count(items, INDEX_BATCH_SIZE))
    ]
