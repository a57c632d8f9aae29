"""``eolab bench convert`` on a tiny generated product: the JSON it writes, the ratios to
decoding, and the reuse of its fixture."""

import json

import pytest

from eolab.sentinel2 import decode, safe
from eolab.sentinel2.bench import BASELINE, TARGET_ZARR_RATIO, fixture_product, run_benchmark


def test_convert_benchmark_json_shape_and_ratios(tmp_path):
    out = tmp_path / "bench"
    result = run_benchmark(out, scale=183, seed=3, repeats=1, workers=1, steps=("zarr", "cog"))
    assert json.loads((out / "convert.json").read_text()) == json.loads(json.dumps(result))
    assert result["benchmark"] == "convert" and result["scale"] == 183
    assert list(result["runs"]) == [BASELINE, "zarr", "cog"]  # decode first, always
    for name, runs in result["runs"].items():
        assert len(runs) == 1 and runs[0]["seconds"] > 0 and runs[0]["peak_rss_mib"] > 0, name
    summary = result["summary"]
    seconds = {s: r[0]["seconds"] for s, r in result["runs"].items()}
    for step, ratio in summary["ratio_to_decode"].items():
        assert ratio == pytest.approx(round(seconds[step] / seconds[BASELINE], 3), abs=1e-3)
    assert summary["ratio_to_decode"][BASELINE] == 1.0
    assert summary["zarr_within_target"] is (
        seconds["zarr"] / seconds[BASELINE] <= TARGET_ZARR_RATIO
    )
    product = safe.read_safe(result["safe"])
    decoded = sum(decode.group_nbytes(product, g) for g in decode.GROUPS)
    assert result["runs"][BASELINE][0]["bytes"] == decoded  # decode reports what it decoded
    assert summary["decoded_mib"] == round(decoded / 2**20, 1)
    assert set(summary["output_mib"]) == {"zarr", "cog"}
    assert all(result["runs"][s][0]["bytes"] > 0 for s in ("zarr", "cog"))
    assert summary["workers"] == 1 and summary["product"] == product.id
    assert not any((out / "work").iterdir())  # each step's output is removed after it


def test_fixture_product_is_generated_once(tmp_path):
    first = fixture_product(tmp_path, "35VLH", 183, 3)
    stamp = (first / "manifest.safe").stat().st_mtime_ns
    assert fixture_product(tmp_path, "35VLH", 183, 3) == first
    assert (first / "manifest.safe").stat().st_mtime_ns == stamp
