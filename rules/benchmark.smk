# The patch-load benchmark: random patch time series from every format on every storage.
#
# One job does its own temp copies and (with a local S3 server) its own uploads, then times
# the loads, so it runs the same on a laptop and as one Slurm job on a node with NVMe.


rule benchmark_patch_load:
    input:
        unpack(patch_load_inputs),
    output:
        result=results("lab", "patch_load", "{tile}_{year}.json"),
    log:
        log_path("benchmark_patch_load", "{tile}_{year}"),
    benchmark:
        benchmark_path("benchmark_patch_load", "{tile}_{year}")
    conda:
        CONDA_ENV
    resources:
        gres=lab_gres(),
    params:
        flags=patch_load_flags,
        storages=",".join(LAB["storages"]),
        skip=f"--skip {','.join(LAB['skip'])}" if LAB["skip"] else "",
        repeats=LAB["repeats"],
        seed=LAB["seed"],
        size=LAB["patch_size_m"],
        align=LAB["align_m"],
        drop="--drop-caches" if LAB["drop_caches"] else "--no-drop-caches",
        baseline="--baseline" if LAB["baseline"] else "--no-baseline",
        region=eolab.workflow.patch_region_options(LAB["region"]),
        options=storage_options,
        s3_log=log_path("benchmark_patch_load", "{tile}_{year}.s3server"),
    shell:
        "eolab bench patch-load {params.flags} --tile {wildcards.tile}"
        " --year {wildcards.year} --storages {params.storages} {params.skip}"
        " --repeats {params.repeats} --seed {params.seed} --patch-size {params.size}"
        " --align {params.align} {params.region} {params.drop} {params.baseline}"
        " --s3-log {params.s3_log:q} {params.options} --out {output.result:q} > {log} 2>&1"


# The layout sweep: the tile-year's SAFE products built into a cube per candidate layout, the
# same random patches timed on each (not in the demo target list: it converts once per layout).
rule benchmark_layout:
    input:
        safe=lambda w: product_deps("safe", w.tile, w.year),
    output:
        result=results("lab", "layout", "{tile}_{year}.json"),
    log:
        log_path("benchmark_layout", "{tile}_{year}"),
    benchmark:
        benchmark_path("benchmark_layout", "{tile}_{year}")
    conda:
        CONDA_ENV
    threads: S2CONV["threads"]  # the conversions' decoding threads
    params:
        manifest=lambda w: format_product("safe", w.tile, w.year),
        layouts=(
            f"--layouts {','.join(LAYOUT_SWEEP['layouts'])}"
            if LAYOUT_SWEEP["layouts"]
            else ""
        ),
        repeats=LAYOUT_SWEEP["repeats"],
        seed=LAYOUT_SWEEP["seed"],
        size=LAYOUT_SWEEP["patch_size_m"],
        align=LAYOUT_SWEEP["align_m"],
        drop="--drop-caches" if LAYOUT_SWEEP["drop_caches"] else "--no-drop-caches",
        shard_mb=LAYOUT_SWEEP["shard_mb"],
        work=lambda w: results("lab", "layout", f"{w.tile}_{w.year}.stores"),
    shell:
        "eolab bench layout --safe {params.manifest:q} --tile {wildcards.tile}"
        " --year {wildcards.year} {params.layouts} --repeats {params.repeats}"
        " --seed {params.seed} --patch-size {params.size} --align {params.align}"
        " {params.drop} --shard-mb {params.shard_mb} --workers {threads}"
        " --work {params.work:q} --out {output.result:q} > {log} 2>&1"


# Measured training throughput: a torch DataLoader (0, 1, 2 … workers) over random patch time
# series from every format on every storage, against the CPU bound of the bare loader.
rule benchmark_train_feed:
    input:
        unpack(train_feed_inputs),
    output:
        result=results("lab", "train_feed", "{tile}_{year}.json"),
    log:
        log_path("benchmark_train_feed", "{tile}_{year}"),
    benchmark:
        benchmark_path("benchmark_train_feed", "{tile}_{year}")
    conda:
        CONDA_ENV
    resources:
        gres=lab_gres(),
    params:
        flags=train_feed_flags,
        storages=",".join(FEED["storages"]),
        skip=f"--skip {','.join(FEED['skip'])}" if FEED["skip"] else "",
        samples=FEED["samples"],
        warmup=FEED["warmup"],
        batch=FEED["batch_size"],
        workers=",".join(str(n) for n in FEED["loader_workers"]),
        seed=FEED["seed"],
        size=FEED["patch_size_m"],
        align=FEED["align_m"],
        options=storage_options,
        s3_log=log_path("benchmark_train_feed", "{tile}_{year}.s3server"),
    shell:
        "eolab bench train-feed {params.flags} --tile {wildcards.tile}"
        " --year {wildcards.year} --storages {params.storages} {params.skip}"
        " --samples {params.samples}"
        " --warmup {params.warmup} --batch-size {params.batch}"
        " --loader-workers {params.workers} --seed {params.seed}"
        " --patch-size {params.size} --align {params.align} --s3-log {params.s3_log:q}"
        " {params.options} --out {output.result:q} > {log} 2>&1"
