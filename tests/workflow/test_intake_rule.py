"""Rule ``intake_cdse``: wired in when ``sentinel2.source`` is cdse, and runs end to end against
a real STAC API (``rustac serve``) and moto_server on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from workflow_util import BIN, make_workflow_copy, run_snakemake

from eolab.fixtures.s3server import LOCAL_KEY_ID, LOCAL_SECRET, free_port

TILE, YEAR = "35VLH", 2024


def _config(path: Path, **cdse) -> Path:
    doc = {"sentinel2": {"source": "cdse", "tiles": [TILE], "year": YEAR}, "cdse": cdse}
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.workflow
def test_cdse_source_schedules_one_intake_per_tile_year(tmp_path):
    work = make_workflow_copy(tmp_path / "wf")
    cfg = _config(tmp_path / "cdse.yaml", profile="my cdse", max_cloud_cover=30)
    target = f"results/intake/cdse/{TILE}_{YEAR}.json"
    proc = run_snakemake(work, target, "-n", "-p", "--configfile", str(cfg))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "rule intake_cdse:" in out
    assert f"--tile {TILE} --year {YEAR}" in out
    assert "--profile 'my cdse'" in out and "--max-cloud-cover 30" in out
    assert "--workers 4" in out and "cdse_connections=4" in out


@pytest.mark.workflow
@pytest.mark.integration
def test_intake_rule_downloads_a_verified_tile_year(tmp_path, s3_server, monkeypatch):
    import boto3

    from eolab.fixtures.sentinel2 import generate_tile_year
    from eolab.intake.items import item_from_safe
    from eolab.sentinel2.products import product_paths, read_manifest

    src = tmp_path / "src"
    generate_tile_year(
        src, tile=TILE, year=YEAR, dates=2, scale=183, seed=3, manifest=src / "f.json"
    )
    ndjson = tmp_path / "items.ndjson"
    ndjson.write_text(
        "".join(json.dumps(item_from_safe(p)) + "\n" for p in product_paths(src / "f.json"))
    )
    s3_server.reset()
    client = boto3.client("s3", **s3_server.client_kwargs())
    client.create_bucket(Bucket="eodata")
    for path in (src / "Sentinel-2").rglob("*"):
        if path.is_file():
            key = path.relative_to(src).as_posix()
            client.put_object(Bucket="eodata", Key=key, Body=path.read_bytes())
    addr = f"127.0.0.1:{free_port()}"
    stac = subprocess.Popen(
        [str(BIN / "rustac"), "serve", "--create-collections", "--addr", addr, str(ndjson)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://{addr}/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        work = make_workflow_copy(tmp_path / "wf")
        cfg = _config(
            tmp_path / "cdse.yaml",
            stac_url=f"http://{addr}/",
            endpoint_url=s3_server.endpoint_url,
            region="us-east-1",
            requests_per_minute=0,
            window_hours=744,
        )
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", LOCAL_KEY_ID)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        target = f"results/intake/cdse/{TILE}_{YEAR}.json"
        proc = run_snakemake(work, target, "-c1", "--configfile", str(cfg), timeout=300)
    finally:
        stac.terminate()
        stac.wait(timeout=10)
        s3_server.reset()
    log = work / "results/logs/intake_cdse" / f"{TILE}_{YEAR}.log"
    assert proc.returncode == 0, proc.stderr + (log.read_text() if log.exists() else "")
    doc = read_manifest(work / target)
    assert doc["source"] == "cdse" and len(doc["products"]) == 2
    assert all(p["verified"] for p in doc["products"])
    for got, want in zip(product_paths(work / target), product_paths(src / "f.json"), strict=True):
        files = sorted(p.relative_to(want) for p in want.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(got) for p in got.rglob("*") if p.is_file())
        assert all((got / f).read_bytes() == (want / f).read_bytes() for f in files)
    assert (work / "results/benchmarks/intake_cdse" / f"{TILE}_{YEAR}.tsv").exists()
