# Sentinel-2 L1C intake from the Copernicus Data Space Ecosystem (used when
# sentinel2.source is cdse; not part of the offline demo). S3 keys come from the AWS
# environment or cdse.profile. Each job opens cdse.workers connections; the profiles cap the
# total (`resources: cdse_connections: 4`) to keep all jobs together within the CDSE quota.
import eolab.workflow

CDSE = config["cdse"]


# Optional flags: a named AWS profile, a cloud cover limit.
CDSE_OPTIONS = eolab.workflow.cdse_options(CDSE)


rule intake_cdse:
    output:
        manifest=results("intake", "cdse", "{tile}_{year}.json"),
    log:
        log_path("intake_cdse", "{tile}_{year}"),
    benchmark:
        benchmark_path("intake_cdse", "{tile}_{year}")
    conda:
        CONDA_ENV
    resources:
        cdse_connections=CDSE["workers"],
    params:
        out=lambda w, output: Path(output.manifest).parent,
        options=CDSE_OPTIONS,
        stac_url=CDSE["stac_url"],
        collection=CDSE["collection"],
        endpoint_url=CDSE["endpoint_url"],
        bucket=CDSE["bucket"],
        region=CDSE["region"],
        workers=CDSE["workers"],
        retries=CDSE["retries"],
        rpm=CDSE["requests_per_minute"],
        window=CDSE["window_hours"],
    shell:
        "eolab intake cdse --tile {wildcards.tile} --year {wildcards.year}"
        " --out {params.out} --manifest {output.manifest}"
        " --stac-url {params.stac_url:q} --collection {params.collection:q}"
        " --endpoint-url {params.endpoint_url:q} --bucket {params.bucket:q}"
        " --region {params.region:q} --workers {params.workers}"
        " --retries {params.retries} --requests-per-minute {params.rpm}"
        " --window-hours {params.window} --no-progress {params.options}"
        " > {log} 2>&1"
