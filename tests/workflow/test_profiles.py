"""The cluster profiles: every key is a real Snakemake flag, every resource a real resource, and a
dry run of one real tile-year with each profile plans the expected jobs on the expected partitions.

Snakemake silently ignores a misspelt profile key whose value is a mapping and accepts flag
prefixes, and the Slurm executor passes unknown resources on silently, so these are checked here;
tests/integration/test_slurm.py checks what a real Slurm recorded.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.workflow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REAL_CONFIG = ROOT / "config" / "puhti-35VLH-2024.yaml"
# Partitions and time limits (minutes) per cluster; Roihu's limits are assumed like Puhti's.
PARTITIONS = {
    "slurm": {"small": 4320, "large": 4320, "longrun": 20160, "hugemem": 4320, "test": 15},
    "roihu": {"small": 4320, "medium": 4320, "large": 4320, "hugemem": 4320, "test": 15},
}
# Resources the Slurm executor 2.8 turns into sbatch flags, plus Snakemake's standard ones.
KNOWN_RESOURCES = {
    "slurm_account", "slurm_partition", "runtime", "mem_mb", "mem_mb_per_cpu", "cpus_per_task",
    "gres", "gpu", "gpu_model", "constraint", "qos", "nodes", "tasks", "tasks_per_node",
    "slurm_extra", "clusters", "tmpdir", "disk_mb", "mpi",
}  # fmt: skip
# Rules whose jobs a real tile-year needs, when the workflow defines them.
HEAVY = (
    "intake_cdse", "safe_to_cog", "safe_to_zarr", "safe_to_zarr_sharded", "zip_zarr",
    "benv2_tiles", "chips_index", "benchmark_patch_load",
)  # fmt: skip


def load(profile: str) -> dict:
    return yaml.safe_load((ROOT / "profiles" / profile / "config.v8+.yaml").read_text())


def snakemake(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(env or os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([str(BIN / "snakemake"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@cache
def long_flags() -> frozenset[str]:
    proc = snakemake("--help")
    assert proc.returncode == 0, proc.stderr
    return frozenset(re.findall(r"--([a-z0-9][a-z0-9-]*)", proc.stdout))


@cache
def workflow_rules() -> frozenset[str]:
    proc = snakemake("--list-rules")
    assert proc.returncode == 0, proc.stderr
    return frozenset(proc.stdout.split())


def minutes(value, attempt: int = 1) -> int:
    return eval(value, {"attempt": attempt}) if isinstance(value, str) else value


@pytest.mark.parametrize("profile", ["slurm", "roihu", "local"])
def test_every_profile_key_is_a_snakemake_flag_spelt_out(profile):
    unknown = set(load(profile)) - long_flags()
    assert not unknown, f"profiles/{profile}: not Snakemake flags (typo or prefix?): {unknown}"


@pytest.mark.parametrize("profile", ["slurm", "roihu"])
def test_resources_partitions_and_time_limits_are_real(profile):
    doc = load(profile)
    limits = PARTITIONS[profile]
    default = doc["default-resources"]
    assert default["slurm_account"] == "$CSC_PROJECT"
    assert default["slurm_partition"] in limits and "mem_mb_per_cpu" not in default
    per_rule = {"(default)": default, **doc["set-resources"]}
    for rule, resources in per_rule.items():
        assert set(resources) <= KNOWN_RESOURCES, f"{rule}: {set(resources) - KNOWN_RESOURCES}"
        partition = resources.get("slurm_partition", default["slurm_partition"])
        assert partition in limits, f"{rule}: partition {partition}"
        for attempt in (1, 2):  # the profile retries once
            runtime = minutes(resources.get("runtime", default["runtime"]), attempt)
            assert 0 < runtime <= limits[partition], f"{rule}: {runtime} min on {partition}"
    for rule, threads in doc.get("set-threads", {}).items():
        assert isinstance(threads, int) and threads >= 1, rule


def test_roihu_asks_for_no_nvme_gres():
    text = (ROOT / "profiles" / "roihu" / "config.v8+.yaml").read_text()
    assert "gres" not in yaml.safe_load(text).get("default-resources", {})
    assert all("gres" not in r for r in load("roihu")["set-resources"].values())


@pytest.mark.parametrize("profile", ["slurm", "roihu"])
def test_dry_run_of_a_real_tile_year_plans_the_heavy_jobs_on_the_profiles_partitions(profile):
    env = dict(os.environ, CSC_PROJECT="project_2001234")
    proc = snakemake("-n", "--profile", f"profiles/{profile}", "--configfile", str(REAL_CONFIG),
                     env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stdout + proc.stderr
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1], re.M))
    config = yaml.safe_load(REAL_CONFIG.read_text())
    tiles = len(config["sentinel2"]["tiles"])
    assert stats["intake_cdse"] == str(tiles) and "fixtures_sentinel2" not in stats
    for rule in set(HEAVY) & workflow_rules() - {"benv2_tiles", "chips_index"}:
        assert int(stats.get(rule, 0)) >= 1, f"{rule} not in the plan:\n{stats}"
    doc = load(profile)
    blocks = re.findall(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", out, re.M | re.S)
    assert blocks
    for rule, body in blocks:
        resources = re.search(r"resources: (.*)", body)
        if rule == "all":
            continue
        assert resources, rule
        res = dict(kv.split("=", 1) for kv in resources.group(1).split(", "))
        want = doc["set-resources"].get(rule, {})
        default = doc["default-resources"]
        assert res["slurm_account"] == "project_2001234", rule
        assert res["slurm_partition"] == want.get("slurm_partition", default["slurm_partition"])
        assert int(res["runtime"]) == minutes(want.get("runtime", default["runtime"])), rule
        assert int(res["mem_mb"]) == want.get("mem_mb", default["mem_mb"]), rule


def test_the_local_profile_keeps_intake_jobs_within_the_cdse_connection_quota(tmp_path):
    """Two jobs that each declare the 4 CDSE connections of intake_cdse never run at once, though
    cores would allow it: the profile's global `cdse_connections: 4` is what serialises them."""
    (tmp_path / "Snakefile").write_text(
        "rule all:\n    input: ['a', 'b']\n"
        "rule intake:\n    output: '{x}'\n    resources: cdse_connections=4\n"
        "    shell: 'date +%s.%N > {output}; sleep 1.5; date +%s.%N >> {output}'\n"
    )
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(
        [str(BIN / "snakemake"), "--profile", str(ROOT / "profiles" / "local"), "--cores", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (a0, a1), (b0, b1) = (
        [float(v) for v in (tmp_path / x).read_text().split()] for x in ("a", "b")
    )
    assert a1 <= b0 or b1 <= a0, "two 4-connection jobs overlapped"
    for profile in ("slurm", "roihu", "local"):
        assert load(profile)["resources"] == {"cdse_connections": 4}


@pytest.mark.parametrize("profile", ["slurm", "roihu"])
def test_a_plan_without_csc_project_stops_with_one_line_naming_it(profile):
    env = {k: v for k, v in os.environ.items() if k != "CSC_PROJECT"}
    proc = snakemake("-n", "--profile", f"profiles/{profile}", "--configfile", str(REAL_CONFIG),
                     env=env)  # fmt: skip
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    errors = [line for line in out.splitlines() if line.startswith("eolab: error:")]
    assert len(errors) == 1 and "$CSC_PROJECT" in errors[0] and "export CSC_PROJECT=" in errors[0]
    assert "Job stats" not in out and "slurm_account=$CSC_PROJECT" not in out


def test_tiny_jobs_are_local_rules_not_slurm_jobs():
    """Under profiles/slurm, a rule not in `localrules` becomes a Slurm job of the defaults."""
    text = (ROOT / "Snakefile").read_text()
    block = re.search(r"^localrules:\n((?:    \w+,\n)+)", text, re.M)
    assert block, "no localrules block in the Snakefile"
    local = set(re.findall(r"(\w+),", block.group(1)))
    tiny = {"all", "chips_catalog", "chips_items", "chips_merge", "plot_file_sizes",
            "plot_patch_load"}  # fmt: skip
    stages = {"fixtures", "intake", "download", "sentinel2", "benv2", "chips", "lab", "report"}
    assert tiny | stages <= local
    assert local <= workflow_rules(), local - workflow_rules()
    assert not local & set(HEAVY)
