# Sentinel-2 L1C conversions of a tile-year: SAFE -> COGs, SAFE -> Zarr v3 datacube (plain
# and sharded), plain Zarr -> one zip. Inputs: the products manifest (fixtures or CDSE).
#
# The COG folder and the Zarr stores are not declared outputs: Snakemake deletes a job's
# outputs before running it, and these conversions resume (finished COGs are skipped, a store
# is appended to and repaired), so a job killed at its time limit and run again would start
# from nothing. Each rule's output is the file its command writes last (the COG listing, the
# store's summary JSON); later rules depend on that and find the data beside it.
import eolab.workflow

from snakemake.logging import logger

from eolab.sentinel2.datacube import forget_incomplete_summaries

S2CONV = config["sentinel2_convert"]
S2COG = S2CONV["cog"]
S2ZARR = S2CONV["zarr"]


# Chunk and shard shapes as the CLI's `10m:TxYxX,...` strings, then every to-zarr option.
ZARR_OPTIONS = eolab.workflow.zarr_options(S2ZARR)


# A summary only says its store was complete when written: if the store was deleted or broken
# since, Snakemake would still find the summary and do nothing. Such a summary is removed at
# parse time so the conversion is planned again.
for _summary, _problem in forget_incomplete_summaries(
    (zarr_store(kind, tile, year), zarr_summary(kind, tile, year))
    for kind in ("zarr", "zarr-sharded")
    for tile in S2_TILES
    for year in S2_YEARS
):
    logger.warning(f"{_summary}: {_problem}; removed so the store is built again")


rule safe_to_cog:
    input:
        manifest=s2_products_manifest,
    output:
        listing=results("sentinel2", "cog", "{tile}_{year}.json"),
    log:
        log_path("safe_to_cog", "{tile}_{year}"),
    benchmark:
        benchmark_path("safe_to_cog", "{tile}_{year}")
    conda:
        CONDA_ENV
    threads: S2CONV["threads"]
    params:
        cogs=lambda w: cog_folder(w.tile, w.year),
        compress=S2COG["compress"],
        blocksize=S2COG["blocksize"],
        resampling=S2COG["overview_resampling"],
    shell:
        "eolab sentinel2 to-cog --manifest {input.manifest} {params.cogs:q}"
        " --listing {output.listing} --compress {params.compress}"
        " --blocksize {params.blocksize} --overview-resampling {params.resampling}"
        " --workers {threads} --quiet > {log} 2>&1"


rule safe_to_zarr:
    input:
        manifest=s2_products_manifest,
    output:
        summary=zarr_summary("zarr"),
    log:
        log_path("safe_to_zarr", "{tile}_{year}"),
    benchmark:
        benchmark_path("safe_to_zarr", "{tile}_{year}")
    conda:
        CONDA_ENV
    threads: S2CONV["threads"]
    params:
        store=lambda w: zarr_store("zarr", w.tile, w.year),
        options=ZARR_OPTIONS,
    shell:
        "eolab sentinel2 to-zarr --manifest {input.manifest} --store {params.store:q}"
        " {params.options} --workers {threads} --summary {output.summary:q} --quiet"
        " > {log} 2>&1"


rule safe_to_zarr_sharded:
    input:
        manifest=s2_products_manifest,
    output:
        summary=zarr_summary("zarr-sharded"),
    log:
        log_path("safe_to_zarr_sharded", "{tile}_{year}"),
    benchmark:
        benchmark_path("safe_to_zarr_sharded", "{tile}_{year}")
    conda:
        CONDA_ENV
    threads: S2CONV["threads"]
    params:
        store=lambda w: zarr_store("zarr-sharded", w.tile, w.year),
        options=ZARR_OPTIONS,
    shell:
        "eolab sentinel2 to-zarr --manifest {input.manifest} --store {params.store:q}"
        " --sharded {params.options} --workers {threads} --summary {output.summary:q}"
        " --quiet > {log} 2>&1"


rule zip_zarr:
    input:
        summary=rules.safe_to_zarr.output.summary,
    output:
        zip=results("sentinel2", "zarr-zip", "{tile}_{year}.zarr.zip"),
    log:
        log_path("zip_zarr", "{tile}_{year}"),
    benchmark:
        benchmark_path("zip_zarr", "{tile}_{year}")
    conda:
        CONDA_ENV
    params:
        store=lambda w: zarr_store("zarr", w.tile, w.year),
    shell:
        "eolab zarr zip {params.store:q} {output.zip:q} > {log} 2>&1"
