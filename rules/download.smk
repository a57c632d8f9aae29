# STAC datasets (Radiant MLHub style) downloaded on request; not part of the offline demo:
#   snakemake results/download/stac/<name>/_download-summary.json   (all of them: snakemake download)
# for a <name> under download.stac_datasets in the config. Reruns resume and skip what is done;
# a failed asset fails the job (details in results/download/stac/<name>/_download-errors.csv).
import re

import eolab.workflow

DOWNLOAD = config["download"]
STAC_DATASETS = DOWNLOAD["stac_datasets"]
STAC_FLAGS = {
    name: eolab.workflow.stac_dataset_flags(entry)
    for name, entry in STAC_DATASETS.items()
}


rule download_stac_dataset:
    output:
        summary=results("download", "stac", "{name}", "_download-summary.json"),
    log:
        log_path("download_stac_dataset", "{name}"),
    benchmark:
        benchmark_path("download_stac_dataset", "{name}")
    wildcard_constraints:
        # only configured datasets: any other name has no rule (and says so)
        name="|".join(re.escape(n) for n in STAC_DATASETS) or "(?!)",
    conda:
        CONDA_ENV
    params:
        source=lambda w: STAC_DATASETS[w.name]["source"],
        out=lambda w, output: Path(output.summary).parent.parent,
        flags=lambda w: STAC_FLAGS[w.name],
        workers=DOWNLOAD["workers"],
        retries=DOWNLOAD["retries"],
    shell:
        "eolab download stac-dataset {params.source:q} --out {params.out}"
        " --dataset {wildcards.name} --workers {params.workers}"
        " --retries {params.retries} --no-progress {params.flags} > {log} 2>&1"
