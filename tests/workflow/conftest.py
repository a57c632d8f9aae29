"""Workflow fixtures: the demo run once per session in an isolated copy."""

import pytest
from workflow_util import make_workflow_copy, run_snakemake


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The whole demo (`rule all` on the embedded default) run once in an isolated copy."""
    workdir = make_workflow_copy(tmp_path_factory.mktemp("demo"))
    proc = run_snakemake(workdir, "--profile", "profiles/local")
    assert proc.returncode == 0, proc.stderr[-5000:]
    return workdir
