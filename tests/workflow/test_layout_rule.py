"""The layout-sweep rule: planned on request only, with the configured options."""

import pytest
from workflow_util import make_workflow_copy, run_snakemake


@pytest.mark.workflow
def test_layout_sweep_is_planned_on_request_only(tmp_path):
    workdir = make_workflow_copy(tmp_path / "wf")
    default = run_snakemake(workdir, "-n", "--quiet", "rules")
    assert default.returncode == 0, default.stderr[-3000:]
    assert "benchmark_layout" not in default.stdout + default.stderr
    extra = tmp_path / "layout.yaml"
    extra.write_text(
        "benchmark:\n  layout:\n    layouts: [reference, year-120-zstd3-sharded]\n"
        "    repeats: 3\n    drop_caches: false\n"
    )
    target = "results/lab/layout/35VLH_2024.json"
    proc = run_snakemake(
        workdir, "-n", "-p", "--configfile", "config/config.yaml", extra, "--", target
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "benchmark_layout" in out
    (command,) = [line for line in out.splitlines() if "eolab bench layout" in line]
    assert "--layouts reference,year-120-zstd3-sharded" in command
    assert "--repeats 3" in command and "--no-drop-caches" in command
    assert "--safe " in command and "--shard-mb 4096" in command
    bad = run_snakemake(
        workdir, "-n", "--config", "benchmark={'layout': {'layouts': ['year-7-gzip']}}"
    )
    assert bad.returncode != 0 and "year-7-gzip" in bad.stdout + bad.stderr
