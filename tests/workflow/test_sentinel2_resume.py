"""The Zarr conversion rules keep their store between runs: Snakemake deletes a job's declared
outputs before running it, so the stores are not declared outputs (their summaries are), and a
rerun appends to the store instead of starting from nothing."""

from __future__ import annotations

import json

import pytest
import yaml
from workflow_util import make_workflow_copy, run_snakemake

from eolab.sentinel2.products import read_manifest, write_manifest

pytestmark = pytest.mark.workflow
TILE, YEAR = "35VLH", 2024


def test_a_rerun_appends_to_the_existing_stores_instead_of_rebuilding_them(tmp_path):
    work = make_workflow_copy(tmp_path / "wf")
    config = tmp_path / "small.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "sentinel2": {"tiles": [TILE], "year": YEAR},
                "fixtures": {"sentinel2": {"dates": 3, "scale": 183, "seed": 5}},
            }
        )
    )
    args = ("--cores", "2", "--configfile", str(config))
    manifest = work / "results" / "fixtures" / "sentinel2" / f"{TILE}_{YEAR}.json"
    proc = run_snakemake(work, str(manifest.relative_to(work)), *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    full = read_manifest(manifest)
    # A first run sees two products (as a job that died after two would have left the store).
    write_manifest(manifest, TILE, YEAR, full["source"], full["products"][:2])
    summaries = {
        kind: work / "results" / "sentinel2" / kind / f"{TILE}_{YEAR}.zarr.summary.json"
        for kind in ("zarr", "zarr-sharded")
    }
    targets = [str(p.relative_to(work)) for p in summaries.values()]
    proc = run_snakemake(work, *targets, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for path in summaries.values():
        assert json.loads(path.read_text())["decoded"] == 2
    # The third product arrives: the manifest is newer, both jobs run again and append it.
    write_manifest(manifest, TILE, YEAR, full["source"], full["products"])
    proc = run_snakemake(work, *targets, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("rule safe_to_zarr") >= 1
    for path in summaries.values():
        doc = json.loads(path.read_text())
        assert doc["decoded"] == 1, doc  # a rebuilt store would have decoded all three
        assert {g["length"] for g in doc["groups"].values()} == {3}


def test_a_deleted_store_behind_its_summary_is_built_again(tmp_path):
    """Deleting a store while its .summary.json remains must not be "Nothing to be done": the
    summary is removed at parse time (with a warning) and the conversion runs again."""
    import shutil

    work = make_workflow_copy(tmp_path / "wf")
    config = tmp_path / "small.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "sentinel2": {"tiles": [TILE], "year": YEAR},
                "fixtures": {"sentinel2": {"dates": 2, "scale": 183, "seed": 5}},
            }
        )
    )
    args = ("--cores", "2", "--configfile", str(config))
    base = work / "results" / "sentinel2" / "zarr"
    summary, store = base / f"{TILE}_{YEAR}.zarr.summary.json", base / f"{TILE}_{YEAR}.zarr"
    target = str(summary.relative_to(work))
    proc = run_snakemake(work, target, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shutil.rmtree(store)
    proc = run_snakemake(work, target, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "removed so the store is built again" in proc.stderr
    assert "rule safe_to_zarr:" in proc.stderr
    doc = json.loads(summary.read_text())
    assert {g["length"] for g in doc["groups"].values()} == {2}
    assert (store / "zarr.json").is_file()
    proc = run_snakemake(work, target, *args)  # complete again: nothing to do, no warning
    assert proc.returncode == 0 and "removed so" not in proc.stderr
