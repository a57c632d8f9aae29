"""Charts: written as real, non-blank PNGs; throughput arithmetic."""

import numpy as np
import pytest

from eolab.lab.plots import (
    group_of,
    log_bins,
    plot_file_sizes,
    plot_load_times,
    plot_throughput,
    staging_seconds,
    throughput_curves,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_real_png(path):
    import matplotlib.image as mpimg

    raw = path.read_bytes()
    assert raw[:8] == PNG_MAGIC
    assert len(raw) > 10_000
    img = mpimg.imread(path)[..., :3]
    not_white = np.any(img < 0.95, axis=-1).mean()
    assert 0.01 < not_white < 0.9  # something is drawn, and not a solid block
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20  # several colours, not one fill


def _result():
    rng = np.random.default_rng(3)
    results = {}
    for storage, scale in (("network", 3.0), ("temp", 1.0), ("s3", 8.0)):
        results[storage] = {}
        for fmt, base in (
            ("safe", 100),
            ("cog", 15),
            ("zarr", 1.2),
            ("zarr-zip", 1.3),
            ("zarr-xarray", 3.0),
        ):
            d = list(base * scale * (1 + 0.1 * rng.standard_normal(5)))
            results[storage][fmt] = {
                "durations": d,
                "mean_durations": float(np.mean(d)),
                "stderr_durations": float(np.std(d, ddof=1) / np.sqrt(5)),
            }
    return {"tile": "35VLH", "year": 2024, "results": results}


def test_load_time_chart(tmp_path):
    out = plot_load_times(_result(), tmp_path / "load.png")
    assert_real_png(out)


def test_throughput_chart_and_curves(tmp_path):
    staging = {"download:zarr": 600.0, "download:zarr-zip": 300.0, "unzip": 120.0}
    out = plot_throughput(_result(), staging, tmp_path / "tp.png")
    assert_real_png(out)
    load = {"s3": {"zarr": 10.0}, "temp": {"zarr": 1.0, "zarr-zip": 1.1}}
    budgets = np.array([300.0, 600.0, 3600.0, 36000.0])
    curves = throughput_curves(load, staging, budgets)
    direct = curves["read Zarr from S3 directly"]
    copied = curves["copy S3 → NVMe, then read"]
    unzipped = curves["zipped S3 → NVMe, unzip, then read"]
    np.testing.assert_allclose(direct, 0.1)
    np.testing.assert_allclose(copied, [0.0, 0.0, 3000 / 3600, 35400 / 36000])
    np.testing.assert_allclose(unzipped[2], (3600 - 420) / 3600)
    assert copied[-1] > direct[-1] and copied[0] < direct[0]  # long jobs amortise the copy


def test_file_size_histograms(tmp_path):
    rng = np.random.default_rng(0)
    sizes = {
        "safe": {"10m": list(rng.integers(10**7, 10**8, 40)), "other": [300, 5000, 12000]},
        "zarr": {g: list(rng.integers(10**3, 10**6, 500)) for g in ("10m", "20m", "60m")},
        "zarr-zip": {"other": [123_456_789]},
    }
    out = plot_file_sizes(sizes, tmp_path / "sizes.png")
    assert_real_png(out)


def test_groups_from_paths_and_log_bins():
    assert group_of("35VLH/2024/20m/data/c/0/0/1/2") == "20m"
    assert group_of("35VLH/2024/S2B_x/60m.tif") == "60m"
    assert group_of("Sentinel-2/x.SAFE/GRANULE/g/IMG_DATA/T35VLH_20240221T095029_B8A.jp2") == "20m"
    assert group_of("Sentinel-2/x.SAFE/MTD_MSIL1C.xml") == "other"
    bins = log_bins([3, 40_000, 2_000_000])
    assert bins[0] <= 3 and bins[-1] >= 2_000_000
    assert np.allclose(np.diff(np.log10(bins)), 1 / 8)


def test_staging_seconds_from_timing_docs():
    docs = [
        {"operation": "download", "format": "zarr", "seconds": 5},
        {"operation": "upload", "format": "zarr", "seconds": 9},
        {"operation": "unzip", "format": "zarr-zip", "seconds": 2.5},
    ]
    assert staging_seconds(docs) == {"download:zarr": 5.0, "unzip": 2.5}


@pytest.mark.parametrize("missing", ["s3", "temp"])
def test_throughput_without_a_storage_still_draws(tmp_path, missing):
    result = _result()
    del result["results"][missing]
    assert_real_png(plot_throughput(result, {"unzip": 1.0}, tmp_path / "t.png"))
