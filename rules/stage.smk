# Staging between storages, timed: network -> temp, network -> S3, S3 -> temp, zip/unzip on temp,
# and a zipped Zarr unzipped from S3 straight to temp as it streams.
#
# Every staging job writes only a timing JSON (seconds, bytes, objects); its temp copies are
# removed at the end. Node-local temp is per job on a cluster ($LOCAL_SCRATCH disappears with
# the job), so nothing on temp is ever passed from one job to another. S3: see rules/lab.smk.


rule stage_network:
    input:
        lambda w: product_deps(w.format, w.tile, w.year),
    output:
        folder=directory(
            str(Path(STORAGE["network"] or "network") / "{format}" / "{tile}_{year}")
        ),
        timing=stage_timing("network"),
    log:
        log_path("stage_network", "{format}", "{tile}_{year}"),
    benchmark:
        benchmark_path("stage_network", "{format}", "{tile}_{year}")
    conda:
        CONDA_ENV
    params:
        entry=lambda w: format_product(w.format, w.tile, w.year),
        options=storage_options,
    shell:
        "eolab stage copy --format {wildcards.format} --input {params.entry:q}"
        " --dest {output.folder:q} --tile {wildcards.tile} --year {wildcards.year}"
        " --timing {output.timing:q} {params.options} > {log} 2>&1"


rule stage_copy_temp:
    input:
        lambda w: network_deps(w.format, w.tile, w.year),
    output:
        timing=stage_timing("copy_temp"),
    log:
        log_path("stage_copy_temp", "{format}", "{tile}_{year}"),
    benchmark:
        benchmark_path("stage_copy_temp", "{format}", "{tile}_{year}")
    conda:
        CONDA_ENV
    resources:
        gres=lab_gres(),
    params:
        entry=lambda w: network_input(w.format, w.tile, w.year),
        options=storage_options,
    shell:
        "eolab stage copy --format {wildcards.format} --input {params.entry:q}"
        " --tile {wildcards.tile} --year {wildcards.year} --timing {output.timing:q}"
        " {params.options} > {log} 2>&1"


rule stage_upload_s3:
    input:
        lambda w: network_deps(w.format, w.tile, w.year),
    output:
        timing=stage_timing("upload_s3"),
    log:
        log_path("stage_upload_s3", "{format}", "{tile}_{year}"),
    benchmark:
        benchmark_path("stage_upload_s3", "{format}", "{tile}_{year}")
    conda:
        CONDA_ENV
    params:
        entry=lambda w: network_input(w.format, w.tile, w.year),
        options=storage_options,
        s3_log=log_path("stage_upload_s3", "{format}", "{tile}_{year}.s3server"),
    shell:
        "eolab stage upload --format {wildcards.format} --input {params.entry:q}"
        " --tile {wildcards.tile} --year {wildcards.year} --timing {output.timing:q}"
        " --s3-log {params.s3_log:q} {params.options} > {log} 2>&1"


rule stage_download_s3:
    input:
        data=lambda w: network_deps(w.format, w.tile, w.year),
        uploaded=upload_first,
    output:
        timing=stage_timing("download_s3"),
    log:
        log_path("stage_download_s3", "{format}", "{tile}_{year}"),
    benchmark:
        benchmark_path("stage_download_s3", "{format}", "{tile}_{year}")
    conda:
        CONDA_ENV
    resources:
        gres=lab_gres(),
    params:
        entry=lambda w: network_input(w.format, w.tile, w.year),
        options=storage_options,
        s3_log=log_path("stage_download_s3", "{format}", "{tile}_{year}.s3server"),
    shell:
        "eolab stage download --format {wildcards.format} --input {params.entry:q}"
        " --tile {wildcards.tile} --year {wildcards.year} --timing {output.timing:q}"
        " --s3-log {params.s3_log:q} {params.options} > {log} 2>&1"


rule stage_zip_temp:
    input:
        lambda w: network_deps("zarr", w.tile, w.year),
    output:
        timing=stage_timing("zip_temp"),
    log:
        log_path("stage_zip_temp", "{tile}_{year}"),
    benchmark:
        benchmark_path("stage_zip_temp", "{tile}_{year}")
    conda:
        CONDA_ENV
    resources:
        gres=lab_gres(),
    params:
        entry=lambda w: network_input("zarr", w.tile, w.year),
        options=storage_options,
    shell:
        "eolab stage zip --format zarr --input {params.entry:q}"
        " --tile {wildcards.tile} --year {wildcards.year} --timing {output.timing:q}"
        " {params.options} > {log} 2>&1"


rule stage_unzip_temp:
    input:
        lambda w: network_deps("zarr-zip", w.tile, w.year),
    output:
        timing=stage_timing("unzip_temp"),
    log:
        log_path("stage_unzip_temp", "{tile}_{year}"),
    benchmark:
        benchmark_path("stage_unzip_temp", "{tile}_{year}")
    conda:
        CONDA_ENV
    resources:
        gres=lab_gres(),
    params:
        entry=lambda w: network_input("zarr-zip", w.tile, w.year),
        options=storage_options,
    shell:
        "eolab stage unzip --format zarr-zip --input {params.entry:q}"
        " --tile {wildcards.tile} --year {wildcards.year} --timing {output.timing:q}"
        " {params.options} > {log} 2>&1"


rule stage_unzip_s3:
    input:
        data=lambda w: network_deps("zarr-zip", w.tile, w.year),
        uploaded=lambda w: upload_first(
            SimpleNamespace(format="zarr-zip", tile=w.tile, year=w.year)
        ),
    output:
        timing=stage_timing("unzip_s3"),
    log:
        log_path("stage_unzip_s3", "{tile}_{year}"),
    benchmark:
        benchmark_path("stage_unzip_s3", "{tile}_{year}")
    conda:
        CONDA_ENV
    resources:
        gres=lab_gres(),
    params:
        entry=lambda w: network_input("zarr-zip", w.tile, w.year),
        options=storage_options,
        s3_log=log_path("stage_unzip_s3", "{tile}_{year}.s3server"),
    shell:
        "eolab stage unzip-s3 --format zarr-zip --input {params.entry:q}"
        " --tile {wildcards.tile} --year {wildcards.year} --timing {output.timing:q}"
        " --s3-log {params.s3_log:q} {params.options} > {log} 2>&1"
