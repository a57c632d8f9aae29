# Helpers of the storage lab (rules/stage.smk, benchmark.smk, report.smk): where each format
# of a tile-year is, the storage options passed to `eolab stage` / `eolab bench patch-load`.
#
# S3 without a configured endpoint: each job that touches S3 starts its own local moto server
# (eolab.core.s3.s3_access) and stops it when done; a job that reads S3 uploads what it reads
# first. No job depends on a server or an endpoint from another job, which keeps this correct
# under the Slurm executor (jobs on other nodes cannot reach a login node's 127.0.0.1) and on
# reruns. With a real endpoint (storage.s3.endpoint_url, AWS_ENDPOINT_URL[_S3] or the profile's)
# the uploads persist and later jobs find them ("already uploaded").
import os
import shlex
from types import SimpleNamespace

import eolab.lab.formats
import eolab.workflow

STORAGE = config["storage"]
S3CFG = STORAGE["s3"]
LAB = config["benchmark"]["patch_load"]
LAYOUT_SWEEP = config["benchmark"]["layout"]
LAB_FORMATS = LAB["formats"]
LAB_TILES = LAB["tiles"] or S2_TILES
S3_ENDPOINT_CONFIGURED = bool(
    S3CFG["endpoint_url"]
    or S3CFG["profile"]
    or os.environ.get("AWS_ENDPOINT_URL_S3")
    or os.environ.get("AWS_ENDPOINT_URL")
)
# The lab's formats (name, entry point suffix, command-line option): eolab.lab.formats.
FORMAT_REGISTRY = eolab.lab.formats.FORMATS


wildcard_constraints:
    format="|".join(FORMAT_REGISTRY),


def format_product(fmt, tile, year):
    """Where the workflow writes a format of a tile-year (its entry point)."""
    if fmt == "safe":
        return s2_products_manifest(SimpleNamespace(tile=tile, year=year))
    return results("sentinel2", fmt, f"{tile}_{year}{FORMAT_REGISTRY[fmt].suffix}")


def product_deps(fmt, tile, year):
    """The file that says a format is complete: the entry point, or a Zarr store's summary
    (the store itself is not a rule output, see rules/sentinel2.smk)."""
    if FORMAT_REGISTRY[fmt].zarr_store:
        return [zarr_summary(fmt, tile, year)]
    return [format_product(fmt, tile, year)]


def network_copy_dir(fmt, tile, year):
    return str(Path(STORAGE["network"]) / fmt / f"{tile}_{year}")


def network_input(fmt, tile, year):
    """The entry point of a format on the network drive (in place, or the network copy)."""
    if not STORAGE["network"]:
        return format_product(fmt, tile, year)
    return str(
        Path(network_copy_dir(fmt, tile, year))
        / f"{tile}_{year}{FORMAT_REGISTRY[fmt].suffix}"
    )


def network_deps(fmt, tile, year):
    """What a rule depends on to find the format on the network drive."""
    if not STORAGE["network"]:
        return product_deps(fmt, tile, year)
    return [network_copy_dir(fmt, tile, year)]


def _q(value):
    return shlex.quote(str(value))


def storage_options(wildcards):
    """Storage options of an `eolab stage ...` / `eolab bench ...` call (no secrets): the
    tile's bucket and prefix under storage.s3.layout (eolab.lab.bucketplan)."""
    return eolab.workflow.storage_options(STORAGE, wildcards.tile)


def stage_timing(op, fmt="{format}", tile="{tile}", year="{year}"):
    """The timing JSON of a staging operation (a pattern, or one file)."""
    if op in ("zip_temp", "unzip_temp", "unzip_s3"):
        return results("stage", op, f"{tile}_{year}.json")
    return results("stage", op, fmt, f"{tile}_{year}.json")


def upload_first(wildcards):
    """With a persistent endpoint the download reads what stage_upload_s3 put there."""
    if S3_ENDPOINT_CONFIGURED:
        return stage_timing(
            "upload_s3", wildcards.format, wildcards.tile, wildcards.year
        )
    return []


def staging_timings(tile, year):
    """Every staging timing of a tile-year for the configured formats."""
    out = []
    for fmt in LAB_FORMATS:
        for op in ("copy_temp", "upload_s3", "download_s3"):
            out.append(stage_timing(op, fmt, tile, year))
    if "zarr" in LAB_FORMATS:
        out.append(stage_timing("zip_temp", tile=tile, year=year))
    if "zarr-zip" in LAB_FORMATS:
        out.append(stage_timing("unzip_temp", tile=tile, year=year))
        out.append(stage_timing("unzip_s3", tile=tile, year=year))
    return out


def patch_load_inputs(wildcards):
    """The formats on the network drive (+ the S3 uploads when S3 is a persistent endpoint)."""
    deps = {
        fmt.replace("-", "_"): network_deps(fmt, wildcards.tile, wildcards.year)
        for fmt in LAB_FORMATS
    }
    if S3_ENDPOINT_CONFIGURED and "s3" in LAB["storages"]:
        deps["uploaded"] = [
            stage_timing("upload_s3", fmt, wildcards.tile, wildcards.year)
            for fmt in LAB_FORMATS
            if f"s3:{fmt}" not in LAB["skip"]
        ]
    return deps


def patch_load_flags(wildcards):
    """`--safe M --cog L ...`: each configured format's entry point on the network drive."""
    return " ".join(
        f"{FORMAT_REGISTRY[fmt].option} {_q(network_input(fmt, wildcards.tile, wildcards.year))}"
        for fmt in LAB_FORMATS
    )


def lab_gres():
    """Node-local NVMe for jobs that use temp (see gres_nvme; storage.slurm_nvme: false = none)."""
    if STORAGE["slurm_nvme"]:
        return gres_nvme()
    return ""


# The training-feed benchmark (rule benchmark_train_feed).
FEED = config["benchmark"]["train_feed"]


def train_feed_inputs(wildcards):
    """The formats on the network drive (+ the S3 uploads when S3 is a persistent endpoint)."""
    deps = {
        fmt.replace("-", "_"): network_deps(fmt, wildcards.tile, wildcards.year)
        for fmt in FEED["formats"]
    }
    if S3_ENDPOINT_CONFIGURED and "s3" in FEED["storages"]:
        deps["uploaded"] = [
            stage_timing("upload_s3", fmt, wildcards.tile, wildcards.year)
            for fmt in FEED["formats"]
        ]
    return deps


def train_feed_flags(wildcards):
    """`--cog L --zarr S ...`: each configured format's entry point on the network drive."""
    return " ".join(
        f"{FORMAT_REGISTRY[fmt].option} {_q(network_input(fmt, wildcards.tile, wildcards.year))}"
        for fmt in FEED["formats"]
    )
