# Charts of the storage lab, as report() outputs: `snakemake --report results/report/report.html`.


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
