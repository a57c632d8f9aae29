"""The workflow's config is validated before any job runs; lint and formatting are clean."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_util import make_workflow_copy, run_snakemake

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*args, cwd=ROOT):
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def snakemake(*args):
    return run(BIN / "snakemake", *args)


@pytest.mark.workflow
def test_dry_run_on_default_config(tmp_path):
    # In a copy of the workflow: the plan must not depend on what the user's results/ holds
    # (after `make demo` nothing would be left to plan there).
    workdir = make_workflow_copy(tmp_path / "wf")
    proc = run_snakemake(workdir, "-n", "--quiet", "rules")
    assert proc.returncode == 0, proc.stderr
    assert "fixtures_sentinel2" in proc.stdout + proc.stderr


@pytest.mark.workflow
@pytest.mark.parametrize(
    "override, key",
    [
        ("fixtures={'sentinel2': {'scale': 7}}", "scale"),
        ("sentinel2={'tiles': ['35VLX']}", "tiles"),
        ("no_such_key=1", "no_such_key"),
    ],
)
def test_bad_config_fails_before_any_job_and_names_the_key(tmp_path, override, key):
    proc = run_snakemake(make_workflow_copy(tmp_path / "wf"), "-n", "--config", override)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert key in out
    assert "Job stats" not in out


@pytest.mark.workflow
def test_snakemake_lint_clean():
    proc = snakemake("--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakefmt_clean():
    proc = run(BIN / "snakefmt", "--check", "Snakefile", "rules")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_clean():
    proc = run(BIN / "ruff", "check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme
    assert ci.strip().splitlines()[-1] == "make test"
    assert shutil.which("make"), "make is needed by the README's commands"
