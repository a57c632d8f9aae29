# Chip index of the converted products: STAC items (per tile-year collection + root catalog),
# one GeoParquet chip index per item, a merged partitioned index, and pre-chipped npz batches.
CHIPS = config["chips"]
PRECHIP = CHIPS["prechip"]


rule chips_items:
    input:
        listing=rules.safe_to_cog.output.listing,
        manifest=s2_products_manifest,
    output:
        collection=results("chips", "stac", "{tile}_{year}", "collection.json"),
    log:
        log_path("chips_items", "{tile}_{year}"),
    benchmark:
        benchmark_path("chips_items", "{tile}_{year}")
    conda:
        CONDA_ENV
    params:
        out=lambda w, output: Path(output.collection).parent,
    shell:
        "eolab chips items {input.listing} --products {input.manifest} --out {params.out}"
        " > {log} 2>&1"


rule chips_catalog:
    input:
        collections=expand(
            rules.chips_items.output.collection, tile=S2_TILES, year=S2_YEARS
        ),
    output:
        catalog=results("chips", "stac", "catalog.json"),
    log:
        log_path("chips_catalog"),
    benchmark:
        benchmark_path("chips_catalog")
    conda:
        CONDA_ENV
    shell:
        "eolab chips catalog {input.collections} --out {output.catalog} > {log} 2>&1"


rule chips_index:
    input:
        collection=rules.chips_items.output.collection,
    output:
        index=directory(results("chips", "index_items", "{tile}_{year}")),
    log:
        log_path("chips_index", "{tile}_{year}"),
    benchmark:
        benchmark_path("chips_index", "{tile}_{year}")
    conda:
        CONDA_ENV
    params:
        chip_size=CHIPS["chip_size"],
        max_nodata=CHIPS["max_nodata"],
        sensor=CHIPS["sensor"],
    shell:
        "eolab chips index {input.collection} --out {output.index}"
        " --chip-size {params.chip_size} --max-nodata {params.max_nodata}"
        " --sensor {params.sensor} > {log} 2>&1"


rule chips_merge:
    input:
        indexes=expand(rules.chips_index.output.index, tile=S2_TILES, year=S2_YEARS),
    output:
        index=directory(results("chips", "index")),
    log:
        log_path("chips_merge"),
    benchmark:
        benchmark_path("chips_merge")
    conda:
        CONDA_ENV
    shell:
        "eolab chips merge {input.indexes} --out {output.index} > {log} 2>&1"


# The pixels' source: the STAC catalog (COGs) or the Zarr cubes of every tile-year.
PRECHIP_SOURCES = (
    expand(rules.safe_to_zarr.output.summary, tile=S2_TILES, year=S2_YEARS)
    if PRECHIP["source"] == "zarr"
    else [rules.chips_catalog.output.catalog]
)


rule chips_prechip:
    input:
        index=rules.chips_merge.output.index,
        sources=PRECHIP_SOURCES,
    output:
        manifest=results("chips", "prechip", "prechip.json"),
    log:
        log_path("chips_prechip"),
    benchmark:
        benchmark_path("chips_prechip")
    conda:
        CONDA_ENV
    params:
        out=lambda w, output: Path(output.manifest).parent,
        source=PRECHIP["source"],
        sources=" ".join(
            [
                f"--zarr {zarr_store('zarr', tile, year)}"
                for tile in S2_TILES
                for year in S2_YEARS
            ]
            if PRECHIP["source"] == "zarr"
            else [f"--items {rules.chips_catalog.output.catalog}"]
        ),
        resolution=PRECHIP["resolution"],
        max_cloud=PRECHIP["max_cloud"],
        max_nodata=PRECHIP["max_nodata"],
        sample=PRECHIP["sample"],
        batch_size=PRECHIP["batch_size"],
        seed=PRECHIP["seed"],
    shell:
        "eolab chips prechip {input.index} --source {params.source} {params.sources}"
        " --resolution {params.resolution} --max-cloud {params.max_cloud}"
        " --max-nodata {params.max_nodata} --sample {params.sample}"
        " --batch-size {params.batch_size} --seed {params.seed} --out {params.out}"
        " > {log} 2>&1"


# Long item lists (config chips.item_lists) indexed in batches: one job and one GeoParquet file
# per `chips.index_batch_size` items, then one merge (helpers in rules/common.smk).


rule chips_index_batch:
    input:
        item_list=lambda w: ITEM_LISTS[w.item_list],
    output:
        index=index_batch_file(),
    log:
        log_path("chips_index_batch", "{item_list}", "{batch}"),
    benchmark:
        benchmark_path("chips_index_batch", "{item_list}", "{batch}")
    conda:
        CONDA_ENV
    params:
        batch=lambda w: int(w.batch),
        batch_size=INDEX_BATCH_SIZE,
        chip_size=CHIPS["chip_size"],
        max_nodata=CHIPS["max_nodata"],
        sensor=CHIPS["sensor"],
    shell:
        "eolab chips index-batch {input.item_list:q} --batch {params.batch}"
        " --batch-size {params.batch_size} --out {output.index:q}"
        " --chip-size {params.chip_size} --max-nodata {params.max_nodata}"
        " --sensor {params.sensor} > {log} 2>&1"


rule chips_merge_batches:
    input:
        batches=index_batches,
    output:
        index=directory(results("chips", "index_lists", "{item_list}")),
    log:
        log_path("chips_merge_batches", "{item_list}"),
    benchmark:
        benchmark_path("chips_merge_batches", "{item_list}")
    conda:
        CONDA_ENV
    shell:
        "eolab chips merge {input.batches:q} --out {output.index:q} > {log} 2>&1"
