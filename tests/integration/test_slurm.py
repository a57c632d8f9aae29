"""The workflow through `snakemake --profile profiles/slurm` on a real single-node Slurm.

The Slurm is shaped like CSC Puhti (tests/slurm_harness.py): partitions small/large/longrun/
hugemem/test, an ``nvme`` GRES that a TaskProlog turns into ``$LOCAL_SCRATCH``, accounting with
the project account. The run builds one tile-year of the tiny config through the heavy rules
(fixtures, the four conversions, staging to node-local temp) plus a probe rule that asks for NVMe
like heavy rules do (``gres_nvme`` from rules/common.smk); ``EOLAB_SLURM_TARGETS=all`` runs the
whole demo instead (slower). The test then checks from Slurm's own records (``scontrol show job``,
kept for MinJobAge) that every job got the partition, time, memory, cores, account and GRES that
the profile and the rules ask for, that ``$LOCAL_SCRATCH`` reached the jobs and was removed
afterwards, and that the outputs equal a local run (byte for byte; JSON run records without
their provenance, clocks and timings). One more run indexes that tile-year's STAC items as an
item list in batches (chips_index_batch Slurm jobs, a local merge) and compares the merged index
with the unbatched one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from slurm_harness import ACCOUNT, SlurmCluster, SlurmUnavailable

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROFILE = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.v8+.yaml").read_text())
WORKFLOW_PARTS = ("rules", "scripts", "config", "envs", "profiles", "report")
TINY = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
TILE, YEAR = TINY["sentinel2"]["tiles"][0], TINY["sentinel2"]["year"]
# One tile-year through the heavy rules (output paths: docs/architecture.md).
DATA_TARGETS = [
    f"results/sentinel2/cog/{TILE}_{YEAR}.json",
    f"results/sentinel2/zarr/{TILE}_{YEAR}.zarr.summary.json",  # the store is beside it
    f"results/sentinel2/zarr-sharded/{TILE}_{YEAR}.zarr.summary.json",
    f"results/sentinel2/zarr-zip/{TILE}_{YEAR}.zarr.zip",
]
STAGE_TARGET = f"results/stage/copy_temp/zarr-zip/{TILE}_{YEAR}.json"  # node-local temp
PROBE_TARGET = f"results/slurm_probe/{TILE}_{YEAR}.json"
FULL = os.environ.get("EOLAB_SLURM_TARGETS") == "all"
# Test-only overrides of the profile: quick status checks, no retries, keep the Slurm logs.
FAST = (
    "--slurm-init-seconds-before-status-checks", "2",
    "--max-status-checks-per-second", "10",
    "--latency-wait", "5",
    "--retries", "0",
    "--jobs", "8",
    "--slurm-keep-successful-logs",
)  # fmt: skip
SHOWN = ("Partition", "Account", "TimeLimit", "MinMemoryNode", "NumCPUs", "CPUs/Task",
         "TresPerNode", "TRES", "Comment", "JobState")  # fmt: skip
# Outputs that record timings, hosts or job paths rather than data.
NOT_COMPARED = ("logs", "benchmarks", "slurm_probe", "stage", "benchmark", "report")
# JSON keys that describe a run, not data: provenance (host, Slurm job, versions), clocks and
# timings (every key ending in _s: seconds, per second).
RUN_RECORD_KEYS = {"environment", "created", "timestamp", "free_gb"}

# A rule that asks for NVMe like a heavy rule and reports what it found inside the job.
PROBE_RULE = """
include: "eolab.smk"


rule slurm_probe:
    input:
        manifest=s2_products_manifest,
    output:
        results("slurm_probe", "{tile}_{year}.json"),
    log:
        log_path("slurm_probe", "{tile}_{year}"),
    benchmark:
        benchmark_path("slurm_probe", "{tile}_{year}")
    conda:
        "envs/eolab.yaml"
    resources:
        gres=gres_nvme(factor=2.0, margin_gb=1),
    shell:
        "python probe.py {output} > {log} 2>&1"
"""
PROBE_SCRIPT = """
import json, os, sys
from eolab.core.scratch import resolve_node_local

node = resolve_node_local()
(node.path / "probe.txt").write_text("written inside the job")
doc = {"LOCAL_SCRATCH": os.environ.get("LOCAL_SCRATCH"), "path": str(node.path),
       "source": node.source, "written": (node.path / "probe.txt").is_file()}
with open(sys.argv[1], "w") as f:
    json.dump(doc, f)
"""


def workflow_copy(dest: Path, probe: bool) -> Path:
    """Link the workflow into ``dest``; with ``probe``, a Snakefile that adds the probe rule."""
    dest.mkdir(parents=True)
    for part in WORKFLOW_PARTS:
        if (ROOT / part).exists():
            (dest / part).symlink_to(ROOT / part)
    if probe:
        (dest / "eolab.smk").symlink_to(ROOT / "Snakefile")
        (dest / "Snakefile").write_text(PROBE_RULE)
        (dest / "probe.py").write_text(PROBE_SCRIPT)
    else:
        (dest / "Snakefile").symlink_to(ROOT / "Snakefile")
    return dest


def snakemake(workdir: Path, *args: str, env: dict | None = None, timeout: float = 600):
    env = dict(env or os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([str(BIN / "snakemake"), *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


@pytest.fixture(scope="module")
def cluster():
    try:
        with SlurmCluster() as c:
            yield c
    except SlurmUnavailable as exc:
        pytest.skip(f"no test Slurm: {exc}")


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    """The targets and the probe through the Slurm profile; returns (workdir, jobs by rule)."""
    workdir = workflow_copy(tmp_path_factory.mktemp("slurm") / "wf", probe=True)
    env = dict(cluster.env, CSC_PROJECT=ACCOUNT)
    env.pop("SLURM_CONF")  # as for a user: the executor and srun use /etc/slurm/slurm.conf
    targets = ["all"] if FULL else [*DATA_TARGETS, STAGE_TARGET]
    proc = snakemake(workdir, "--profile", "profiles/slurm", *FAST, *targets, PROBE_TARGET, env=env)
    jobs = {}
    for job in cluster.jobs():
        jobs.setdefault(rule_of(job), []).append(job)
    assert proc.returncode == 0, proc.stderr[-6000:] + "\n" + json.dumps(jobs)[:3000]
    return workdir, jobs


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    workdir = workflow_copy(tmp_path_factory.mktemp("local") / "wf", probe=False)
    proc = snakemake(workdir, "--profile", "profiles/local", *(["all"] if FULL else DATA_TARGETS))
    assert proc.returncode == 0, proc.stderr[-5000:]
    return workdir


def rule_of(job: dict[str, str]) -> str:
    """The rule of a job, from the plugin's log path .snakemake/slurm_logs/rule_<name>/…"""
    part = next(p for p in Path(job["StdOut"]).parts if p.startswith("rule_"))
    return part.removeprefix("rule_")


def expected(rule: str, key: str, attempt: int = 1):
    """A resource the profile gives ``rule`` (set-resources, else default-resources)."""
    value = PROFILE.get("set-resources", {}).get(rule, {}).get(key)
    if value is None:
        value = PROFILE["default-resources"].get(key)
    if isinstance(value, str) and "attempt" in value:
        value = eval(value, {"attempt": attempt})  # the profile's own expression
    return value


def minutes(limit: str) -> int:
    """Slurm's [D-]HH:MM:SS as minutes."""
    days, _, hms = limit.rpartition("-")
    h, m, s = (int(v) for v in hms.split(":"))
    return int(days or 0) * 1440 + h * 60 + m + (1 if s else 0)


def megabytes(value: str) -> float:
    """Slurm's memory with a unit (8000M, 62.50G) in MB as sbatch --mem counts them."""
    units = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}
    return float(value[:-1]) * units[value[-1]]


def tree_digests(results: Path) -> dict[str, object]:
    """Every output file's content: a hash, or for JSON run records the document without the
    keys that record the run rather than the data (provenance, clocks, timings)."""
    out: dict[str, object] = {}
    for path in sorted(results.rglob("*")):
        rel = path.relative_to(results)
        if not path.is_file() or rel.parts[0] in NOT_COMPARED:
            continue
        if path.suffix == ".json":
            out[str(rel)] = without_run_records(json.loads(path.read_text()))
        elif path.suffix == ".jsonl":
            lines = path.read_text().splitlines()
            out[str(rel)] = [without_run_records(json.loads(line)) for line in lines]
        else:
            out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def without_run_records(doc):
    if isinstance(doc, dict):
        return {k: without_run_records(v) for k, v in doc.items()
                if k not in RUN_RECORD_KEYS and not k.endswith("_s")}  # fmt: skip
    if isinstance(doc, list):
        return [without_run_records(v) for v in doc]
    return doc


def test_every_rule_ran_as_a_slurm_job_with_the_profiles_resources(slurm_run):
    workdir, jobs = slurm_run
    ran = {p.name.removesuffix(".log") for p in (workdir / "results" / "logs").iterdir()}
    assert ran - {"slurm_probe"}, "the demo ran no rule"
    assert set(jobs) == ran, f"rules without a Slurm job: {ran - set(jobs)}"
    threads = PROFILE.get("set-threads", {})
    for rule, rule_jobs in jobs.items():
        for job in rule_jobs:
            where = f"{rule} (job {job['JobId']})"
            print(where, *(f"{k}={job.get(k)}" for k in SHOWN))  # the record, for `pytest -rA`
            assert job["JobState"] == "COMPLETED", where
            assert job["Account"] == ACCOUNT, where
            assert job["Partition"] == expected(rule, "slurm_partition"), where
            assert minutes(job["TimeLimit"]) == expected(rule, "runtime"), where
            assert megabytes(job["MinMemoryNode"]) == expected(rule, "mem_mb"), where
            if rule in threads:
                assert int(job["CPUs/Task"]) == threads[rule], where


def nvme_dir(cluster: SlurmCluster, job: dict[str, str]) -> Path:
    """The $LOCAL_SCRATCH the TaskProlog makes for a job (as /run/nvme/job_<id>/data on Puhti)."""
    return cluster.nvme_root / f"job_{job['JobId']}" / "data"


def test_nvme_jobs_got_the_gres_and_local_scratch_inside_the_job(slurm_run, cluster):
    workdir, jobs = slurm_run
    exported = {r["job"]: r["local_scratch"] for r in cluster.prolog_records() if r["step"]}
    nvme_jobs = [j for js in jobs.values() for j in js if "nvme" in j.get("TresPerNode", "")]
    assert {"slurm_probe", "stage_copy_temp"} <= {rule_of(j) for j in nvme_jobs}
    for job in nvme_jobs:
        gib = int(job["TresPerNode"].rsplit(":", 1)[1])
        assert job["TresPerNode"] == f"gres:nvme:{gib}" and f"gres/nvme={gib}" in job["TRES"]
        assert exported[job["JobId"]] == str(nvme_dir(cluster, job))  # TaskProlog -> job step
        assert not nvme_dir(cluster, job).parent.exists()  # the Epilog cleaned it up
    # The probe's request: 2 x the SAFE bytes its manifest lists, rounded up, + 1 GiB.
    (probe,) = jobs["slurm_probe"]
    manifest = workdir / "results" / "fixtures" / "sentinel2" / f"{TILE}_{YEAR}.json"
    nbytes = sum(p["bytes"] for p in json.loads(manifest.read_text())["products"])
    assert nbytes > 0
    assert probe["TresPerNode"] == f"gres:nvme:{math.ceil(2 * nbytes / 2**30) + 1}"
    # Inside the job, eolab resolved $LOCAL_SCRATCH and could write there.
    found = json.loads((workdir / PROBE_TARGET).read_text())
    assert found == {"LOCAL_SCRATCH": str(nvme_dir(cluster, probe)),
                     "path": str(nvme_dir(cluster, probe)), "source": "$LOCAL_SCRATCH",
                     "written": True}  # fmt: skip
    # A real rule used it: the staging copy went to its job's $LOCAL_SCRATCH.
    (stage,) = [j for j in jobs["stage_copy_temp"] if "zarr-zip" in j["Comment"]]
    timing = json.loads((workdir / STAGE_TARGET).read_text())
    assert timing["destination"].startswith(str(nvme_dir(cluster, stage)) + os.sep)
    assert timing["environment"]["slurm_job_id"] == stage["JobId"]
    # Jobs without an NVMe request get no LOCAL_SCRATCH, as on Puhti.
    plain = [j for js in jobs.values() for j in js if j not in nvme_jobs]
    assert plain and all(exported[j["JobId"]] == "" for j in plain)


def test_outputs_equal_a_local_run(slurm_run, local_run):
    on_slurm = tree_digests(slurm_run[0] / "results")
    local = tree_digests(local_run / "results")
    assert on_slurm, "no outputs to compare"
    assert on_slurm.keys() == local.keys()
    differ = [name for name in local if local[name] != on_slurm[name]]
    assert not differ, f"outputs differ between Slurm and local runs: {differ[:20]}"


def test_a_missing_project_stops_before_any_job_is_submitted(cluster, tmp_path):
    workdir = workflow_copy(tmp_path / "wf", probe=False)
    env = {k: v for k, v in cluster.env.items() if k not in ("CSC_PROJECT", "SLURM_CONF")}
    before = len(cluster.jobs())
    proc = snakemake(workdir, "--profile", "profiles/slurm", *FAST, "all", env=env, timeout=300)
    assert proc.returncode != 0
    # The plan stops before any job with one line naming the unset variable.
    out = proc.stdout + proc.stderr
    assert re.search(r"eolab: error: the Slurm account is \$CSC_PROJECT, an unset", out), out
    assert "Traceback" not in out
    assert len(cluster.jobs()) == before


def test_an_item_list_is_indexed_in_batches_as_slurm_jobs(slurm_run, cluster, tmp_path):
    """The tile-year's STAC items as an item list of 4 items, batches of 3: 2 chips_index_batch
    Slurm jobs with the profile's resources, one local merge, equal to the unbatched index."""
    import pyarrow.parquet as pq

    done = slurm_run[0] / "results"
    stac = tmp_path / "stac"
    listing = done / "sentinel2" / "cog" / f"{TILE}_{YEAR}.json"
    manifest = done / "fixtures" / "sentinel2" / f"{TILE}_{YEAR}.json"
    subprocess.run(
        [str(BIN / "eolab"), "chips", "items", str(listing), "--products", str(manifest),
         "--out", str(stac)],
        check=True, capture_output=True,
    )  # fmt: skip
    items = sorted(stac.glob("*/*.json"))
    assert len(items) == TINY["fixtures"]["sentinel2"]["dates"] == 4
    item_list = tmp_path / "items.txt"
    item_list.write_text("".join(f"{p}\n" for p in items))
    workdir = workflow_copy(tmp_path / "wf", probe=False)
    (workdir / "batches.yaml").write_text(yaml.safe_dump(
        {"chips": {"item_lists": {"tiny": str(item_list)}, "index_batch_size": 3}}
    ))  # fmt: skip
    env = dict(cluster.env, CSC_PROJECT=ACCOUNT)
    env.pop("SLURM_CONF")
    before = {job["JobId"] for job in cluster.jobs()}
    target = "results/chips/index_lists/tiny"
    proc = snakemake(workdir, "--profile", "profiles/slurm", *FAST, target, "--configfile",
                     "batches.yaml", env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-6000:]
    new = [job for job in cluster.jobs() if job["JobId"] not in before]
    assert sorted(rule_of(job) for job in new) == ["chips_index_batch"] * 2  # the merge is local
    for job in new:
        assert job["JobState"] == "COMPLETED" and job["Account"] == ACCOUNT
        assert minutes(job["TimeLimit"]) == expected("chips_index_batch", "runtime")
        assert megabytes(job["MinMemoryNode"]) == expected("chips_index_batch", "mem_mb")
    # The same items indexed one file per item and merged: the same dataset, file for file.
    chip_size = str(TINY["chips"]["chip_size"])
    for args in (
        ["index", *map(str, items), "--out", str(tmp_path / "per_item")],
        ["merge", str(tmp_path / "per_item"), "--out", str(tmp_path / "merged")],
    ):
        subprocess.run([str(BIN / "eolab"), "chips", *args]
                       + (["--chip-size", chip_size] if args[0] == "index" else []),
                       check=True, capture_output=True)  # fmt: skip
    merged, batched = tmp_path / "merged", workdir / target
    files = sorted(p.relative_to(merged) for p in merged.rglob("*.parquet"))
    assert len(files) == 4
    assert files == sorted(p.relative_to(batched) for p in batched.rglob("*.parquet"))
    for rel in files:
        assert pq.read_table(batched / rel).equals(pq.read_table(merged / rel)), rel
