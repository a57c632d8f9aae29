# The report's charts and pages as report() outputs, bundled by `snakemake --report
# results/report/report.html`: the storage lab's charts, then a section per stage drawn by
# eolab.report (docs/lab.md, "The report").
import eolab.report.sentinel2


rule plot_file_sizes:
    input:
        lambda w: [d for fmt in LAB_FORMATS for d in network_deps(fmt, w.tile, w.year)],
    output:
        png=report(
            results("report", "file_sizes_{tile}_{year}.png"),
            caption="../report/file_sizes.rst",
            category="Storage lab",
            subcategory="{tile} {year}",
        ),
    log:
        log_path("plot_file_sizes", "{tile}_{year}"),
    benchmark:
        benchmark_path("plot_file_sizes", "{tile}_{year}")
    conda:
        CONDA_ENV
    params:
        entries=lambda w: {
            fmt: network_input(fmt, w.tile, w.year) for fmt in LAB_FORMATS
        },
    script:
        "../scripts/plot_file_sizes.py"


rule plot_patch_load:
    input:
        result=rules.benchmark_patch_load.output.result,
        timings=lambda w: staging_timings(w.tile, w.year),
        # the measured throughput, when the train-feed benchmark runs for this tile
        feed=lambda w: (
            expand(rules.benchmark_train_feed.output.result, tile=w.tile, year=w.year)
            if w.tile in FEED["tiles"]
            else []
        ),
    output:
        load_times=report(
            results("report", "load_times_{tile}_{year}.png"),
            caption="../report/load_times.rst",
            category="Storage lab",
            subcategory="{tile} {year}",
        ),
        throughput=report(
            results("report", "throughput_{tile}_{year}.png"),
            caption="../report/throughput.rst",
            category="Storage lab",
            subcategory="{tile} {year}",
        ),
    log:
        log_path("plot_patch_load", "{tile}_{year}"),
    benchmark:
        benchmark_path("plot_patch_load", "{tile}_{year}")
    conda:
        CONDA_ENV
    script:
        "../scripts/plot_patch_load.py"


# --- a section per stage (eolab.report): Sentinel-2, BigEarthNet v2, chips, provenance ---------

# Generated inputs are demo-size: the charts say so.
# The chip maps cover every configured year of a tile ("2024", or "2020-2024").
S2_YEARS_LABEL = "-".join(str(y) for y in sorted({min(S2_YEARS), max(S2_YEARS)}))
S2_DEMO = S2["source"] == "fixtures"
BENV2_DEMO = BENV2["root"] is None


rule report_sentinel2:
    input:
        manifest=s2_products_manifest,
        done=lambda w: [
            d for fmt in FORMAT_REGISTRY for d in product_deps(fmt, w.tile, w.year)
        ],
        listing=rules.safe_to_cog.output.listing,
    output:
        quicklook=report(
            results("report", "sentinel2", "quicklook_{tile}_{year}.png"),
            caption="../report/s2_quicklook.rst",
            category="Sentinel-2 conversions",
            subcategory="{tile} {year}",
        ),
        times=report(
            results("report", "sentinel2", "conversion_times_{tile}_{year}.png"),
            caption="../report/s2_conversion_times.rst",
            category="Sentinel-2 conversions",
            subcategory="{tile} {year}",
        ),
        sizes=report(
            results("report", "sentinel2", "sizes_{tile}_{year}.png"),
            caption="../report/s2_sizes.rst",
            category="Sentinel-2 conversions",
            subcategory="{tile} {year}",
        ),
    log:
        log_path("report_sentinel2", "{tile}_{year}"),
    benchmark:
        benchmark_path("report_sentinel2", "{tile}_{year}")
    conda:
        CONDA_ENV
    params:
        store=lambda w: zarr_store("zarr", w.tile, w.year),
        # the conversion jobs' benchmark TSVs (written with their outputs, which are inputs here)
        benchmarks=lambda w: {
            fmt: benchmark_path(rule, f"{w.tile}_{w.year}")
            for fmt, rule in eolab.report.sentinel2.CONVERSION_RULES.items()
        },
        entries=lambda w: {
            fmt: format_product(fmt, w.tile, w.year) for fmt in FORMAT_REGISTRY
        },
        demo=S2_DEMO,
    script:
        "../scripts/report_sentinel2.py"


rule report_benv2:
    input:
        summary=rules.benv2_tiles.output.summary,
    output:
        split_country=report(
            results("report", "benv2", "split_country.png"),
            caption="../report/benv2_split_country.rst",
            category="BigEarthNet v2",
        ),
        labels=report(
            results("report", "benv2", "label_frequencies.png"),
            caption="../report/benv2_labels.rst",
            category="BigEarthNet v2",
        ),
        conversion=report(
            results("report", "benv2", "conversion.png"),
            caption="../report/benv2_conversion.rst",
            category="BigEarthNet v2",
        ),
    log:
        log_path("report_benv2"),
    benchmark:
        benchmark_path("report_benv2")
    conda:
        CONDA_ENV
    params:
        demo=BENV2_DEMO,
    script:
        "../scripts/report_benv2.py"


rule report_chips:
    input:
        index=rules.chips_merge.output.index,
    output:
        **{
            f"map_{tile}": report(
                results("report", "chips", f"grid_{tile}_{S2_YEARS_LABEL}.png"),
                caption="../report/chips_map.rst",
                category="Chips",
            )
            for tile in S2_TILES
        },
        distributions=report(
            results("report", "chips", "distributions.png"),
            caption="../report/chips_distributions.rst",
            category="Chips",
        ),
    log:
        log_path("report_chips"),
    benchmark:
        benchmark_path("report_chips")
    conda:
        CONDA_ENV
    params:
        demo=S2_DEMO,
    script:
        "../scripts/report_chips.py"


rule report_provenance:
    input:
        # after every other stage of the demo, so its table lists every job
        stages=lambda w: STAGE_TARGETS["sentinel2"]
        + STAGE_TARGETS["benv2"]
        + STAGE_TARGETS["chips"]
        + STAGE_TARGETS["lab"],
        # the results that carry an `environment` block (eolab.core.provenance)
        records=lambda w: [rules.benv2_tiles.output.summary]
        + expand(
            rules.benchmark_patch_load.output.result, tile=LAB_TILES, year=S2_YEARS
        ),
    output:
        page=report(
            results("report", "provenance.html"),
            caption="../report/provenance.rst",
            category="Provenance",
        ),
    log:
        log_path("report_provenance"),
    benchmark:
        benchmark_path("report_provenance")
    conda:
        CONDA_ENV
    params:
        benchmarks=str(BENCHMARKS),
    script:
        "../scripts/report_provenance.py"


# Built with the `download` stage (on request only), when datasets are configured.
rule report_downloads:
    input:
        summaries=expand(rules.download_stac_dataset.output.summary, name=STAC_DATASETS),
    output:
        png=report(
            results("report", "downloads.png"),
            caption="../report/downloads.rst",
            category="Downloads",
        ),
    log:
        log_path("report_downloads"),
    benchmark:
        benchmark_path("report_downloads")
    conda:
        CONDA_ENV
    params:
        demo=False,
    script:
        "../scripts/report_downloads.py"


# Built with the `intake` stage when sentinel2.source is cdse.
S2_TILE_YEARS = [(t, y) for t in S2_TILES for y in S2_YEARS]


rule report_intake:
    input:
        manifests=[
            expand(rules.intake_cdse.output.manifest, tile=t, year=y)[0]
            for t, y in S2_TILE_YEARS
        ],
    output:
        png=report(
            results("report", "intake.png"),
            caption="../report/intake.rst",
            category="Downloads",
        ),
    log:
        log_path("report_intake"),
    benchmark:
        benchmark_path("report_intake")
    conda:
        CONDA_ENV
    params:
        labels=[f"{t} {y}" for t, y in S2_TILE_YEARS],
        benchmarks=[benchmark_path("intake_cdse", f"{t}_{y}") for t, y in S2_TILE_YEARS],
    script:
        "../scripts/report_intake.py"
