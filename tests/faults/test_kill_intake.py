"""kill -9 at seeded random points of ``eolab intake cdse`` against real servers on 127.0.0.1
(``rustac serve`` as the STAC API, moto_server as the ``eodata`` bucket), then a rerun: the
local tree is byte-equal to the bucket, the manifest equals a clean run's, no temporary is left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from fault_util import EOLAB, run, run_killed, timed

from eolab.fixtures.s3server import LOCAL_KEY_ID, LOCAL_SECRET, free_port

TILE, YEAR = "35VLH", 2024
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    from eolab.fixtures.sentinel2 import generate_tile_year

    root = tmp_path_factory.mktemp("intake-src")
    generate_tile_year(root, tile=TILE, year=YEAR, dates=3, scale=183, seed=7,
                       manifest=root / "fixtures.json")  # fmt: skip
    return root


@pytest.fixture(scope="module")
def stac_api(tmp_path_factory, fixture_root) -> str:
    from eolab.intake.items import item_from_safe
    from eolab.sentinel2.products import product_paths

    exe = BIN / "rustac"
    if not exe.exists():
        pytest.skip("rustac CLI not installed (pip install rustac)")
    items = [
        item_from_safe(p, "s3://eodata/") for p in product_paths(fixture_root / "fixtures.json")
    ]
    ndjson = tmp_path_factory.mktemp("stac") / "items.ndjson"
    ndjson.write_text("".join(json.dumps(i) + "\n" for i in items))
    addr = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [str(exe), "serve", "--create-collections", "--addr", addr, str(ndjson)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(400):
            try:
                with urllib.request.urlopen(f"http://{addr}/", timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, "rustac serve exited"
                subprocess.run(["sleep", "0.05"], check=True)
        yield f"http://{addr}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def eodata(s3_server, fixture_root) -> dict[str, bytes]:
    import boto3

    s3_server.reset()
    client = boto3.client("s3", **s3_server.client_kwargs())
    client.create_bucket(Bucket="eodata")
    objects = {}
    for path in sorted((fixture_root / "Sentinel-2").rglob("*")):
        if path.is_file():
            key = path.relative_to(fixture_root).as_posix()
            objects[key] = path.read_bytes()
            client.put_object(Bucket="eodata", Key=key, Body=objects[key])
    yield objects
    s3_server.reset()


def local_files(out: Path) -> dict[str, bytes]:
    root = out / "Sentinel-2"
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def manifest_products(out: Path) -> list:
    """The manifest's products without what this run transferred (a rerun fetches less)."""
    products = json.loads((out / f"{TILE}_{YEAR}.json").read_text())["products"]
    return [{k: v for k, v in p.items() if not k.startswith("fetched_")} for p in products]


def test_kill_9_during_the_cdse_intake_then_rerun_equals_a_clean_run(
    tmp_path, stac_api, eodata, s3_server, tally, monkeypatch
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", LOCAL_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)

    def intake(out: Path) -> list[str]:
        return [*EOLAB, "intake", "cdse", "--tile", TILE, "--start", f"{YEAR}-01-01", "--end",
                f"{YEAR + 1}-01-01", "--out", str(out), "--stac-url", stac_api, "--endpoint-url",
                s3_server.endpoint_url, "--region", "us-east-1", "--window-hours", "744",
                "--no-progress"]  # fmt: skip

    wall = timed(intake(tmp_path / "clean"))
    want = manifest_products(tmp_path / "clean")
    assert local_files(tmp_path / "clean") == eodata
    killed = 0
    for k, frac in enumerate(np.random.default_rng(505).uniform(0.45, 1.0, 3)):
        out = tmp_path / f"k{k}"
        if not run_killed(intake(out), frac * wall):
            continue
        killed += 1
        tally["kills"] += 1
        rerun = run(intake(out))
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        same = local_files(out) == eodata and manifest_products(out) == want
        tally["recovered"] += same
        tally["lost"] += not same
        assert same, f"{out}: differs from a clean intake after kill -9 and rerun"
        assert not [p for p in out.rglob("*.tmp")], "a temporary is left"
    assert killed, "no kill landed while the run was going"
    assert os.environ["AWS_ACCESS_KEY_ID"] == LOCAL_KEY_ID
