"""``eolab bench benv2`` on a tiny fixture: the JSON it writes, its ratios and target checks."""

import json

import pytest

from eolab.benv2.bench import format_report, run_benchmark


def test_benv2_benchmark_json_ratios_and_report(tmp_path):
    out_json = tmp_path / "benv2.json"
    result = run_benchmark(
        workdir=tmp_path / "work", patches=12, seed=4, repeats=1, reads=6, workers=1,
        out_json=out_json, cold=True,
    )  # fmt: skip
    assert json.loads(out_json.read_text()) == json.loads(json.dumps(result))
    assert result["benchmark"] == "benv2"
    params = result["params"]
    assert (params["patches"], params["repeats"], params["workers"]) == (12, 1, 1)
    assert 0 < params["train_patches"] < 12
    (run,) = result["conversion_runs"]
    assert run["convert_patches_per_s"] > 0 and run["tiff_read_patches_per_s"] > 0
    assert run["ratio_convert_vs_tiff_read"] == pytest.approx(
        run["convert_patches_per_s"] / run["tiff_read_patches_per_s"]
    )
    assert run["output_bytes"] > 0 and run["deleted_mb"] > 0  # the copy's sources were deleted
    assert result["conversion_median"]["convert_patches_per_s"] == run["convert_patches_per_s"]
    train = result["training_reads_patches_per_s"]
    assert all(v > 0 for v in train.values())
    ratios = result["ratios"]
    best_tiff = max(train["tiff_per_patch_tifffile"], train["tiff_per_patch_rasterio"])
    assert ratios["store_vs_best_tiff"] == pytest.approx(train["store_fast_reader"] / best_tiff)
    assert ratios["store_vs_npz"] == pytest.approx(
        train["store_fast_reader"] / train["npz_per_patch"]
    )
    assert result["meets_targets"] == {
        "convert_vs_tiff_read": ratios["convert_vs_tiff_read"] >= 0.7,
        "store_vs_best_tiff": ratios["store_vs_best_tiff"] >= 20.0,
    }
    # the layouts: same arrays (checked by the benchmark), compact and LMDB smaller than dense
    lay = result["layouts"]
    assert lay["arrays_equal"] is True and lay["patches"] == params["train_patches"]
    size = lay["bytes_per_patch"]
    assert size["compact_store"] < 0.5 * size["dense_store"]
    assert size["lmdb_safetensors_values"] < 0.5 * size["dense_store"]
    assert set(lay["warm"]) == {"dense_store", "compact_store", "lmdb_safetensors"}
    assert all(v > 0 for rates in lay["warm"].values() for v in rates.values())
    cold = lay["cold"]
    assert isinstance(cold["page_cache_dropped"], bool) and cold["reason"]
    assert cold["blocks"] == 1 and set(cold["single_patches_per_s"]) == set(lay["warm"])
    assert run["convert_compact_patches_per_s"] > 0
    report = format_report(result)
    assert "lmdb_safetensors" in report and "convert compact" in report
    assert report.startswith("BigEarthNet v2 benchmark: 12 patches, 1 workers, median of 1")
    assert all(name in report for name in train)
    # the fixture is reused when patches and seed match
    marker = tmp_path / "work" / "fixture" / "bench-fixture.json"
    stamp = marker.stat().st_mtime_ns
    run_benchmark(
        workdir=tmp_path / "work", patches=12, seed=4, repeats=1, reads=2, workers=1,
        out_json=None,
    )  # fmt: skip
    assert marker.stat().st_mtime_ns == stamp
