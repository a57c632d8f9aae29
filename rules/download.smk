# STAC datasets (Radiant MLHub style) downloaded on request; not part of the offline demo:
#   snakemake results/download/stac/<name>/_download-summary.json
# for a <name> under download.stac_datasets in the config. Reruns resume and skip what is done;
# a failed asset fails the job (details in results/download/stac/<name>/_download-errors.csv).
import json
import shlex

DOWNLOAD = config["download"]


def stac_dataset_config(name):
    """The config entry of one dataset, or a clear error naming the configured ones."""
    if name not in DOWNLOAD["stac_datasets"]:
        known = ", ".join(sorted(DOWNLOAD["stac_datasets"])) or "none"
        raise ValueError(f"download.stac_datasets has no {name!r} (configured: {known})")
    return DOWNLOAD["stac_datasets"][name]


def stac_dataset_flags(wildcards):
    """Command-line filters of one configured dataset."""
    ds = stac_dataset_config(wildcards.name)
    flags = [f"--collection {shlex.quote(c)}" for c in ds.get("collections", [])]
    if ds.get("assets"):
        flags.append(f"--assets {shlex.quote(','.join(ds['assets']))}")
    if ds.get("datetime"):
        flags.append(f"--datetime {shlex.quote(ds['datetime'])}")
    if ds.get("bbox"):
        flags.append(f"--bbox {','.join(str(v) for v in ds['bbox'])}")
    if ds.get("intersects"):
        value = ds["intersects"]
        value = value if isinstance(value, str) else json.dumps(value)
        flags.append(f"--intersects {shlex.quote(value)}")
    if ds.get("catalog_only"):
        flags.append("--catalog-only")
    return " ".join(flags)


rule download_stac_dataset:
    output:
        summary=results("download", "stac", "{name}", "_download-summary.json"),
    log:
        log_path("download_stac_dataset", "{name}"),
    benchmark:
        benchmark_path("download_stac_dataset", "{name}")
    wildcard_constraints:
        name="[A-Za-z0-9_.-]+",
    conda:
        CONDA_ENV
    params:
        source=lambda w: stac_dataset_config(w.name)["source"],
        out=results("download", "stac"),
        flags=stac_dataset_flags,
        workers=DOWNLOAD["workers"],
        retries=DOWNLOAD["retries"],
    shell:
        "eolab download stac-dataset {params.source:q} --out {params.out}"
        " --dataset {wildcards.name} --workers {params.workers}"
        " --retries {params.retries} --no-progress {params.flags} > {log} 2>&1"
