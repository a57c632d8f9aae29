# BigEarthNet v2 -> ML-ready tiles: npz + json per patch and a sharded Zarr store per split.
# Source: `benv2.root` (a real BigEarthNet v2 folder) or, when null, the generated fixture.
import eolab.workflow

BENV2 = config["benv2"]
BENV2_ROOT = BENV2["root"] or results("fixtures", "benv2")


# The config's `benv2` section as `eolab benv2 tiles` options.
BENV2_OPTIONS = eolab.workflow.benv2_options(BENV2)


rule benv2_tiles:
    input:
        metadata=str(Path(BENV2_ROOT) / "metadata.parquet"),
    output:
        summary=results("benv2", "tiles", "summary.json"),
    log:
        log_path("benv2_tiles"),
    benchmark:
        benchmark_path("benv2_tiles")
    conda:
        CONDA_ENV
    threads: BENV2["workers"]
    params:
        root=lambda w, input: Path(input.metadata).parent,
        out=lambda w, output: Path(output.summary).parent,
        options=BENV2_OPTIONS,
    shell:
        "eolab benv2 tiles --root {params.root} --out_dir {params.out} {params.options}"
        " --workers {threads} --no-progress > {log} 2>&1"
