# BigEarthNet v2 -> ML-ready tiles: npz + json per patch and a sharded Zarr store per split.
# Source: `benv2.root` (a real BigEarthNet v2 folder) or, when null, the generated fixture.
import shlex

BENV2 = config["benv2"]
BENV2_ROOT = BENV2["root"] or results("fixtures", "benv2")


# The config's `benv2` section as `eolab benv2 tiles` options.
BENV2_FLAGS = {
    "float16": "--float16",
    "with_snow_cloud": "--with-snow-cloud",
    "delete_sources": "--delete-sources",
}
BENV2_OPTIONS = " ".join(
    [
        f"--bands {shlex.quote(str(BENV2['bands']))}",
        f"--resampling {BENV2['resampling']}",
        f"--normalise {BENV2['normalise']}",
        f"--split {BENV2['split']}",
        f"--split_group {BENV2['split_group']}",
        f"--seed {BENV2['seed']}",
        f"--min_free_gb {BENV2['min_free_gb']}",
        f"--shard_patches {BENV2['shard_patches']}",
        f"--store_compression {BENV2['store_compression']}",
    ]
    + (
        [f"--train_ratio {BENV2['train_ratio']}", f"--val_ratio {BENV2['val_ratio']}"]
        if BENV2["split"] == "resplit"
        else []
    )
    + [
        f"--{key} {shlex.quote(str(BENV2[key]))}"
        for key in ("countries", "max_per_country", "target_gb")
        if BENV2[key] is not None
    ]
    + [flag for key, flag in BENV2_FLAGS.items() if BENV2[key]]
    + ([] if BENV2["reference_maps"] else ["--no-reference-maps"])
)


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
