# One target per stage, for every configured tile-year: `snakemake --profile profiles/local
# sentinel2` builds that stage and what it needs. `rule all` (the demo) is their union except
# `download` (on request only). Each list below is complete on its own, so the include order of
# the rule files does not matter.

STAGE_TARGETS = {
    "fixtures": (
        expand(rules.fixtures_sentinel2.output.manifest, tile=S2_TILES, year=S2_YEARS)
        if S2["source"] == "fixtures"
        else []
    )
    + ([rules.fixtures_benv2.output.metadata] if BENV2["root"] is None else []),
    "intake": (
        expand(rules.intake_cdse.output.manifest, tile=S2_TILES, year=S2_YEARS)
        + [rules.report_intake.output.png]
        if S2["source"] == "cdse"
        else []
    ),
    "download": expand(rules.download_stac_dataset.output.summary, name=STAC_DATASETS)
    + ([rules.report_downloads.output.png] if STAC_DATASETS else []),
    "sentinel2": expand(
        [
            rules.safe_to_cog.output.listing,
            rules.safe_to_zarr.output.summary,
            rules.safe_to_zarr_sharded.output.summary,
            rules.zip_zarr.output.zip,
        ],
        tile=S2_TILES,
        year=S2_YEARS,
    ),
    "benv2": [rules.benv2_tiles.output.summary],
    "chips": [
        rules.chips_catalog.output.catalog,
        rules.chips_merge.output.index,
        rules.chips_prechip.output.manifest,
    ]
    + expand(rules.chips_merge_batches.output.index, item_list=ITEM_LISTS),
    "lab": [
        t
        for tile in LAB_TILES
        for year in S2_YEARS
        for t in staging_timings(tile, year)
    ]
    + expand(rules.benchmark_patch_load.output.result, tile=LAB_TILES, year=S2_YEARS)
    + expand(
        rules.benchmark_train_feed.output.result, tile=FEED["tiles"], year=S2_YEARS
    ),
    "report": expand(
        [
            rules.plot_file_sizes.output.png,
            rules.plot_patch_load.output.load_times,
            rules.plot_patch_load.output.throughput,
        ],
        tile=LAB_TILES,
        year=S2_YEARS,
    )
    + expand(
        [
            rules.report_sentinel2.output.quicklook,
            rules.report_sentinel2.output.times,
            rules.report_sentinel2.output.sizes,
        ],
        tile=S2_TILES,
        year=S2_YEARS,
    )
    + list(rules.report_benv2.output)
    + list(rules.report_chips.output)
    + [rules.report_provenance.output.page],
}


rule fixtures:
    input:
        STAGE_TARGETS["fixtures"],


rule intake:
    input:
        STAGE_TARGETS["intake"],


rule download:
    input:
        STAGE_TARGETS["download"],


rule sentinel2:
    input:
        STAGE_TARGETS["sentinel2"],


rule benv2:
    input:
        STAGE_TARGETS["benv2"],


rule chips:
    input:
        STAGE_TARGETS["chips"],


rule lab:
    input:
        STAGE_TARGETS["lab"],


rule report:
    input:
        STAGE_TARGETS["report"],
