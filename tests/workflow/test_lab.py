"""The demo runs the storage lab: staging timings, the patch-load benchmark, charts, report."""

import json

import jsonschema
import pytest
import yaml
from workflow_util import ROOT, run_snakemake

from eolab.lab.patchbench import RESULT_SCHEMA

pytestmark = pytest.mark.workflow


def _lab_config():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    lab = config["benchmark"]["patch_load"]
    tiles = lab["tiles"] or config["sentinel2"]["tiles"]
    return config, lab, tiles


def test_demo_writes_the_patch_load_benchmark(demo_run):
    config, lab, tiles = _lab_config()
    year = config["sentinel2"]["year"]
    for tile in tiles:
        path = demo_run / "results" / "lab" / "patch_load" / f"{tile}_{year}.json"
        doc = json.loads(path.read_text())
        jsonschema.validate(doc, RESULT_SCHEMA)
        assert doc["tile"] == tile and doc["repeats"] == lab["repeats"]
        assert set(doc["results"]) == set(lab["storages"])
        assert set(doc["storage_devices"]) == set(lab["storages"])  # named in the chart legend
        for per_format in doc["results"].values():
            assert set(lab["formats"]) <= set(per_format)
            for entry in per_format.values():
                assert len(entry["durations"]) == lab["repeats"]
        dates = config["fixtures"]["sentinel2"]["dates"]
        assert doc["dates"] == dates


def test_demo_writes_staging_timings_and_charts(demo_run):
    config, lab, tiles = _lab_config()
    year = config["sentinel2"]["year"]
    stage = demo_run / "results" / "stage"
    for tile in tiles:
        for fmt in lab["formats"]:
            for op in ("copy_temp", "upload_s3", "download_s3"):
                doc = json.loads((stage / op / fmt / f"{tile}_{year}.json").read_text())
                assert doc["format"] == fmt and doc["objects"] >= 1 and doc["bytes"] > 0
        zipped = json.loads((stage / "zip_temp" / f"{tile}_{year}.json").read_text())
        unzipped = json.loads((stage / "unzip_temp" / f"{tile}_{year}.json").read_text())
        assert zipped["objects"] == unzipped["objects"] > 1  # every store file, and back
        streamed = json.loads((stage / "unzip_s3" / f"{tile}_{year}.json").read_text())
        assert streamed["operation"] == "unzip-s3"
        assert (streamed["objects"], streamed["bytes"]) == (unzipped["objects"], unzipped["bytes"])
        for name in ("file_sizes", "load_times", "throughput"):
            png = demo_run / "results" / "report" / f"{name}_{tile}_{year}.png"
            raw = png.read_bytes()
            assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 10_000
        # the demo runs no train-feed benchmark: the throughput chart says it is calculated
        log = demo_run / "results" / "logs" / "plot_patch_load" / f"{tile}_{year}.log"
        assert "throughput: calculated (no train-feed)" in log.read_text()


def test_snakemake_report_builds(demo_run):
    out = demo_run / "results" / "report" / "report.html"
    proc = run_snakemake(demo_run, "--report", str(out), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = out.read_text(errors="replace")
    assert "load_times_" in html and "throughput_" in html and "file_sizes_" in html
    assert "feeds training fastest" in html  # the workflow description, report/workflow.rst


def test_bench_config_validates_and_plans(tmp_path):
    # planned into an empty results folder: whatever a local bench run left is irrelevant
    proc = run_snakemake(
        ROOT,
        *("-n", "--quiet", "rules", "--nolock", "--configfile", "config/bench.yaml"),
        *("--config", f"results={tmp_path / 'bench'}"),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "benchmark_patch_load" in proc.stdout + proc.stderr


def _overlay(tmp_path, doc):
    """A config file laid over config/config.yaml (--config turns nested numbers into text)."""
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_dry_run_passes_the_region_and_public_read_to_the_commands(tmp_path):
    from workflow_util import make_workflow_copy

    region = {"x1": 300060.0, "y1": 6799980.0, "x2": 303000.0, "y2": 6797040.0}
    overlay = {
        "benchmark": {"patch_load": {"region": region}},
        "storage": {"s3": {"public_read": True}},
    }
    proc = run_snakemake(
        make_workflow_copy(tmp_path / "wf"),
        *("-n", "-p", "lab", "--configfile", "config/config.yaml", _overlay(tmp_path, overlay)),
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    lines = out.splitlines()
    bench = [line for line in lines if "eolab bench patch-load" in line]
    assert bench
    for line in bench:
        assert " --x1 300060.0 --y1 6799980.0 --x2 303000.0 --y2 6797040.0 " in line
        assert " --s3-public-read" in line
    assert any("eolab stage upload" in line and "--s3-public-read" in line for line in lines)
    assert not any("--x1" in line for line in lines if "eolab stage" in line)


def test_a_region_in_the_wrong_order_fails_before_any_job(tmp_path):
    from workflow_util import make_workflow_copy

    overlay = {"benchmark": {"patch_load": {"region": {"x1": 5.0, "x2": 1.0}}}}
    proc = run_snakemake(
        make_workflow_copy(tmp_path / "wf"),
        *("-n", "lab", "--configfile", "config/config.yaml", _overlay(tmp_path, overlay)),
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "x1=5.0 must be less than x2=1.0" in out
    assert "Job stats" not in out
