"""``eolab bench train-feed`` on the tiny fixture: the result document (numbers not asserted)."""

import json

import pytest
from click.testing import CliRunner

from eolab.cli import cli
from eolab.core.disk import mount_of


def test_train_feed_writes_measured_throughput(ty2024, tmp_path):
    out = tmp_path / "feed.json"
    e = ty2024.entries
    args = ["bench", "train-feed", "--zarr-zip", str(e["zarr-zip"]), "--cog", str(e["cog"])]
    args += ["--tile", "35VLH", "--year", "2024", "--storages", "network,temp,unzip-temp"]
    args += ["--skip", "temp:cog"]
    args += ["--samples", "4", "--warmup", "1", "--batch-size", "2", "--loader-workers", "0,1"]
    args += ["--patch-size", "600", "--temp-dir", str(tmp_path / "temp"), "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert set(doc["results"]) == {"network", "temp", "unzip-temp"}
    assert doc["storage_devices"]["unzip-temp"] == mount_of(tmp_path / "temp")
    assert set(doc["results"]["temp"]) == {"zarr-zip"} and doc["skipped"] == ["temp:cog"]
    assert set(doc["results"]["network"]) == {"zarr-zip", "cog"}
    unzipped = doc["results"]["unzip-temp"]
    assert set(unzipped) == {"zarr-zip"}  # staged: zip copied to temp, unzipped, then read
    copied, extracted = doc["staging"]["unzip_temp:zarr-zip"]
    assert (copied["operation"], extracted["operation"]) == ("copy", "unzip")
    assert unzipped["zarr-zip"]["staging_s"] == pytest.approx(
        copied["seconds"] + extracted["seconds"]
    )
    for m in unzipped["zarr-zip"]["dataloader"]:
        assert m["end_to_end_s"] == pytest.approx(
            unzipped["zarr-zip"]["staging_s"] + m["total_seconds"]
        )
    assert len(doc["patches"]) == 1 * 2 + 4 and doc["patch_size_m"] == 600
    assert doc["environment"]["versions"]["torch"].startswith("2.13.0")
    assert "copy_temp:zarr-zip" in doc["staging"] and "copy_temp:cog" not in doc["staging"]
    for per_format in doc["results"].values():
        for entry in per_format.values():
            bare = entry["bare"]
            assert bare["samples"] == 4 and bare["cpu_s_per_sample"] > 0
            assert bare["cpu_bound_samples_per_s"] == pytest.approx(
                doc["cores"] / bare["cpu_s_per_sample"]
            )
            assert [m["workers"] for m in entry["dataloader"]] == [0, 1]
            for m in entry["dataloader"]:
                assert m["samples"] == 4 and m["time_to_first_batch_s"] > 0
                assert 0 < m["overall_samples_per_s"] and m["total_seconds"] >= m["seconds"]
                assert m["ratio_to_cpu_bound"] == pytest.approx(
                    m["samples_per_s"] / bare["cpu_bound_samples_per_s"]
                )
            summary, (serial, one) = entry["summary"], entry["dataloader"]
            best = serial if serial["samples_per_s"] >= one["samples_per_s"] else one
            assert summary["best_workers"] == best["workers"]
            assert summary["best_ratio_to_cpu_bound"] == best["ratio_to_cpu_bound"]
            assert summary["loader0_over_bare"] == pytest.approx(
                1 / serial["samples_per_s"] / bare["wall_s_per_sample"]
            )
            assert summary["first_batch_s"] == min(
                serial["time_to_first_batch_s"], one["time_to_first_batch_s"]
            )
    assert "ratio to CPU bound" in result.output and "x bare; first batch" in result.output


def test_train_feed_refuses_bad_input(ty2024, tmp_path):
    base = [
        "bench",
        "train-feed",
        "--tile",
        "35VLH",
        "--year",
        "2024",
        "--out",
        str(tmp_path / "x"),
    ]
    result = CliRunner().invoke(cli, base)
    assert result.exit_code != 0 and "give at least one of" in result.output
    zipped = ["--zarr-zip", str(ty2024.entries["zarr-zip"])]
    result = CliRunner().invoke(cli, [*base, *zipped, "--loader-workers", "0,x"])
    assert result.exit_code != 0 and "comma-separated integers" in result.output
    result = CliRunner().invoke(cli, [*base, *zipped, "--skip", "s3:cog"])
    assert result.exit_code != 0 and "no measured storage:format" in str(result.exception)
    result = CliRunner().invoke(cli, [*base, *zipped, "--storages", "tape"])
    assert result.exit_code != 0 and "tape" in str(result.output) + str(result.exception)
