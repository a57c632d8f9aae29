# Tiny deterministic fixtures standing in for real downloads.
S2FIX = config["fixtures"]["sentinel2"]
BENV2FIX = config["fixtures"]["benv2"]


rule fixtures_sentinel2:
    output:
        manifest=results("fixtures", "sentinel2", "{tile}_{year}.json"),
    log:
        log_path("fixtures_sentinel2", "{tile}_{year}"),
    benchmark:
        benchmark_path("fixtures_sentinel2", "{tile}_{year}")
    conda:
        CONDA_ENV
    params:
        out=lambda w, output: Path(output.manifest).parent,
        dates=S2FIX["dates"],
        scale=S2FIX["scale"],
        seed=S2FIX["seed"],
        baseline=S2FIX["baseline"],
    shell:
        "eolab fixtures sentinel2 --out {params.out} --tile {wildcards.tile}"
        " --year {wildcards.year} --dates {params.dates} --scale {params.scale}"
        " --seed {params.seed} --baseline {params.baseline} --manifest {output.manifest}"
        " > {log} 2>&1"


rule fixtures_benv2:
    output:
        metadata=results("fixtures", "benv2", "metadata.parquet"),
    log:
        log_path("fixtures_benv2"),
    benchmark:
        benchmark_path("fixtures_benv2")
    conda:
        CONDA_ENV
    params:
        out=lambda w, output: Path(output.metadata).parent,
        patches=BENV2FIX["patches"],
        seed=BENV2FIX["seed"],
    shell:
        "eolab fixtures benv2 --out {params.out} --patches {params.patches}"
        " --seed {params.seed} > {log} 2>&1"
