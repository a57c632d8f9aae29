"""Per-stage targets (rules/collect.smk) and one results folder per config."""

import re

import pytest
import yaml
from workflow_util import ROOT, make_workflow_copy, run_snakemake

pytestmark = pytest.mark.workflow

STAGES = ("fixtures", "intake", "download", "sentinel2", "benv2", "chips", "lab", "report")


def planned(proc) -> dict[str, int]:
    """Job counts per rule from a dry run's "Job stats" table."""
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    if "Job stats:" not in out:
        return {}
    table = out.split("Job stats:")[1].split("Reasons:")[0]
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", table, re.M) if k != "total"}


def test_each_stage_target_plans_its_own_rules_and_what_they_need(tmp_path):
    workdir = make_workflow_copy(tmp_path / "wf")
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    tiles = len(config["sentinel2"]["tiles"])
    plan = planned(run_snakemake(workdir, "-n", "sentinel2"))
    want = {"safe_to_cog", "safe_to_zarr", "safe_to_zarr_sharded", "zip_zarr"}
    assert {rule: plan[rule] for rule in want} == dict.fromkeys(want, tiles)
    assert plan["fixtures_sentinel2"] == tiles  # what the conversions need
    assert not {"benv2_tiles", "chips_items", "benchmark_patch_load"} & set(plan)
    plan = planned(run_snakemake(workdir, "-n", "benv2"))
    assert set(plan) == {"fixtures_benv2", "benv2_tiles", "benv2"}
    plan = planned(run_snakemake(workdir, "-n", "intake"))  # fixtures source: nothing to download
    assert set(plan) == {"intake"}


def test_rule_all_is_the_union_of_the_demo_stages(tmp_path):
    workdir = make_workflow_copy(tmp_path / "wf")
    everything = planned(run_snakemake(workdir, "-n"))
    union: set[str] = set()
    for stage in set(STAGES) - {"download"}:
        union |= set(planned(run_snakemake(workdir, "-n", stage))) - {stage}
    assert set(everything) - {"all"} == union


def test_the_stage_targets_of_a_finished_demo_have_nothing_to_do(demo_run):
    for stage in STAGES:
        proc = run_snakemake(demo_run, "-n", stage)
        plan = planned(proc)
        assert set(plan) <= {stage}, f"{stage} plans {plan}"


@pytest.mark.parametrize(
    "configfile, folder",
    [
        ("config/puhti-35VLH-2024.yaml", "results/puhti-35VLH-2024"),
        ("config/bench.yaml", "results/bench"),
        ("config/train-feed.yaml", "results/train-feed"),
    ],
)
def test_another_config_after_the_demo_plans_in_its_own_folder_and_reruns_nothing(
    demo_run, configfile, folder
):
    proc = run_snakemake(demo_run, "-n", "--nolock", "--configfile", configfile)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Params have changed" not in out and "Code has changed" not in out
    outputs = re.findall(r"^    output: (.*)$", out, re.M)
    assert outputs
    for line in outputs:
        for path in line.split(", "):
            assert path.startswith(folder + "/"), path
