# Sentinel-2 L1C conversions of a tile-year: SAFE -> COGs, SAFE -> Zarr v3 datacube (plain
# and sharded), plain Zarr -> one zip. Inputs: the products manifest (fixtures or CDSE).
import shlex

S2CONV = config["sentinel2_convert"]
S2COG = S2CONV["cog"]
S2ZARR = S2CONV["zarr"]


# Chunk and shard shapes as the CLI's `10m:TxYxX,...` strings, then every to-zarr option.
ZARR_BLOCKS = {
    kind: ",".join(
        f"{group}:{'x'.join(str(v) for v in S2ZARR[kind][group])}"
        for group in ("10m", "20m", "60m")
    )
    for kind in ("chunks", "shards")
}
ZARR_OPTIONS = " ".join(
    [
        f"--chunks {ZARR_BLOCKS['chunks']}",
        f"--shards {ZARR_BLOCKS['shards']}",
        "--compressor {cname}:{clevel}:{shuffle}".format(**S2ZARR["compressor"]),
    ]
    + ([f"--scratch {shlex.quote(S2ZARR['scratch'])}"] if S2ZARR["scratch"] else [])
)


rule safe_to_cog:
    input:
        manifest=s2_products_manifest,
    output:
        listing=results("sentinel2", "cog", "{tile}_{year}.json"),
        cogs=directory(results("sentinel2", "cog", "{tile}", "{year}")),
    log:
        log_path("safe_to_cog", "{tile}_{year}"),
    benchmark:
        benchmark_path("safe_to_cog", "{tile}_{year}")
    conda:
        CONDA_ENV
    threads: S2CONV["threads"]
    params:
        compress=S2COG["compress"],
        blocksize=S2COG["blocksize"],
        resampling=S2COG["overview_resampling"],
    shell:
        "eolab sentinel2 to-cog --manifest {input.manifest} {output.cogs}"
        " --listing {output.listing} --compress {params.compress}"
        " --blocksize {params.blocksize} --overview-resampling {params.resampling}"
        " --workers {threads} --quiet > {log} 2>&1"


rule safe_to_zarr:
    input:
        manifest=s2_products_manifest,
    output:
        store=directory(results("sentinel2", "zarr", "{tile}_{year}.zarr")),
    log:
        log_path("safe_to_zarr", "{tile}_{year}"),
    benchmark:
        benchmark_path("safe_to_zarr", "{tile}_{year}")
    conda:
        CONDA_ENV
    threads: S2CONV["threads"]
    params:
        options=ZARR_OPTIONS,
    shell:
        "eolab sentinel2 to-zarr --manifest {input.manifest} --store {output.store}"
        " {params.options} --workers {threads} --quiet > {log} 2>&1"


rule safe_to_zarr_sharded:
    input:
        manifest=s2_products_manifest,
    output:
        store=directory(results("sentinel2", "zarr-sharded", "{tile}_{year}.zarr")),
    log:
        log_path("safe_to_zarr_sharded", "{tile}_{year}"),
    benchmark:
        benchmark_path("safe_to_zarr_sharded", "{tile}_{year}")
    conda:
        CONDA_ENV
    threads: S2CONV["threads"]
    params:
        options=ZARR_OPTIONS,
    shell:
        "eolab sentinel2 to-zarr --manifest {input.manifest} --store {output.store}"
        " --sharded {params.options} --workers {threads} --quiet > {log} 2>&1"


rule zip_zarr:
    input:
        store=rules.safe_to_zarr.output.store,
    output:
        zip=results("sentinel2", "zarr-zip", "{tile}_{year}.zarr.zip"),
    log:
        log_path("zip_zarr", "{tile}_{year}"),
    benchmark:
        benchmark_path("zip_zarr", "{tile}_{year}")
    conda:
        CONDA_ENV
    shell:
        "eolab zarr zip {input.store} {output.zip} > {log} 2>&1"


DEMO_TARGETS += expand(
    [
        rules.safe_to_cog.output.listing,
        rules.safe_to_zarr.output.store,
        rules.safe_to_zarr_sharded.output.store,
        rules.zip_zarr.output.zip,
    ],
    tile=S2_TILES,
    year=S2_YEAR,
)
