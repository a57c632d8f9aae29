"""A bad config stops `snakemake -n` with one `eolab: error:` line naming the key, before any job
(and so before Snakemake deletes an old output of a job that would fail on the value)."""

import pytest
import yaml
from workflow_util import make_workflow_copy, run_snakemake

pytestmark = pytest.mark.workflow


@pytest.mark.parametrize(
    "override, expected",
    [
        (
            {"sentinal2": {"year": 2024}},
            "config key 'sentinal2' is unknown (did you mean 'sentinel2'?)",
        ),
        (
            {"benv2": {"shard_patchs": 64}},
            "config key 'benv2.shard_patchs' is unknown (did you mean 'shard_patches'?)",
        ),
        (
            {
                "sentinel2_convert": {
                    "zarr": {
                        "shards": {
                            "10m": [30, 2048, 2048],
                            "20m": [40, 1024, 1024],
                            "60m": [80, 1024, 1024],
                        }
                    }
                }
            },
            "config sentinel2_convert.zarr: shards for 10m: expected (time, y, x) multiples of "
            "chunks (20, 512, 512), got (30, 2048, 2048)",
        ),
        (
            {"benv2": {"split": "resplit", "train_ratio": 0.8, "val_ratio": 0.3}},
            "config benv2.train_ratio 0.8 + benv2.val_ratio 0.3 must be at most 1",
        ),
        ({"benv2": {"countries": "drop=XX"}}, "config benv2.countries 'drop=XX': unknown country"),
        (
            {"sentinel2_convert": {"zarr": {"compressor": {"clevel": 12}}}},
            "config sentinel2_convert.zarr.compressor.clevel: 12 is greater than the maximum of 9",
        ),
    ],
    ids=["misspelt-key", "misspelt-nested-key", "shards", "ratios", "countries", "clevel"],
)
def test_bad_config_is_one_line_before_any_job(tmp_path, override, expected):  # fmt: skip
    workdir = make_workflow_copy(tmp_path / "wf")
    (workdir / "bad.yaml").write_text(yaml.safe_dump(override))
    proc = run_snakemake(workdir, "-n", "--configfile", "bad.yaml")
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"eolab: error: {expected}"), proc.stderr
    assert "Job stats" not in proc.stdout + proc.stderr
    assert len((proc.stdout + proc.stderr).splitlines()) <= 3  # not the 1 459-line schema dump
