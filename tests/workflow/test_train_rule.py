"""The training-feed benchmark rule: planned on request and for the configured tiles only."""

import pytest
from workflow_util import make_workflow_copy, run_snakemake


@pytest.mark.workflow
def test_train_feed_is_planned_for_the_configured_tiles_only(tmp_path):
    workdir = make_workflow_copy(tmp_path / "wf")
    default = run_snakemake(workdir, "-n", "--quiet", "rules")
    assert default.returncode == 0, default.stderr[-3000:]
    assert "benchmark_train_feed" not in default.stdout + default.stderr
    extra = tmp_path / "feed.yaml"
    extra.write_text("benchmark:\n  train_feed:\n    tiles: [35VLH]\n    loader_workers: [0, 3]\n")
    proc = run_snakemake(workdir, "-n", "-p", "--configfile", "config/config.yaml", extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "benchmark_train_feed" in out and "results/lab/train_feed/35VLH_2024.json" in out
    (command,) = [line for line in out.splitlines() if "eolab bench train-feed" in line]
    assert "--loader-workers 0,3" in command and "--zarr-zip " in command
    assert "--safe" not in command  # the SAFE format is not a training format
    bad = run_snakemake(
        workdir, "-n", "--config", "benchmark={'train_feed': {'storages': ['tape']}}"
    )
    assert bad.returncode != 0 and "tape" in bad.stdout + bad.stderr
