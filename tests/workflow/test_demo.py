"""The demo: `rule all` on the embedded tiny default runs end to end and is idempotent."""

import json

import pytest
import yaml
from workflow_util import ROOT, run_snakemake

from eolab.sentinel2.products import product_paths

pytestmark = pytest.mark.workflow


def test_demo_builds_fixtures_for_every_configured_tile(demo_run):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    s2 = config["sentinel2"]
    for tile in s2["tiles"]:
        manifest = demo_run / "results" / "fixtures" / "sentinel2" / f"{tile}_{s2['year']}.json"
        doc = json.loads(manifest.read_text())
        assert doc["tile"] == tile
        assert len(doc["products"]) == config["fixtures"]["sentinel2"]["dates"]
        assert all(p.is_dir() and p.name.endswith(".SAFE") for p in product_paths(manifest))
    assert (demo_run / "results" / "fixtures" / "benv2" / "metadata.parquet").stat().st_size > 0


def test_every_job_left_a_log_and_a_benchmark(demo_run):
    logs = list((demo_run / "results" / "logs").rglob("*.log"))
    tsvs = list((demo_run / "results" / "benchmarks").rglob("*.tsv"))
    assert logs and tsvs
    # every job: benchmarks/<rule>/<wildcards>.tsv and logs/<rule>/<wildcards>.log (jobs that run
    # a local S3 server also keep its log beside theirs, as <wildcards>.s3server.log)
    log_jobs = {p.relative_to(demo_run / "results" / "logs").with_suffix("") for p in logs}
    tsv_jobs = {p.relative_to(demo_run / "results" / "benchmarks").with_suffix("") for p in tsvs}
    assert {p for p in log_jobs if p.suffix != ".s3server"} == tsv_jobs


def test_rerun_has_nothing_to_do(demo_run):
    proc = run_snakemake(demo_run, "--profile", "profiles/local", "-n")
    assert proc.returncode == 0, proc.stderr
    assert "Nothing to be done" in proc.stdout + proc.stderr
