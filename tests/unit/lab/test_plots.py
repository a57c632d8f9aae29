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


# --- what a reviewer checks on every chart: title, units, data, integer counts, plurals,
# --- legend colours from the shared style -------------------------------------------------


def _texts(fig):
    """Every string drawn on the figure (titles, labels, ticks, legends, captions)."""
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        out += [t.get_text() for t in ax.texts]
        legend = ax.get_legend()
        if legend:
            out += [legend.get_title().get_text()] + [t.get_text() for t in legend.get_texts()]
    return out


def _assert_reviewable(fig, x_unit, y_unit):
    import re

    assert fig.get_suptitle()
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert shown
    for ax in shown:
        assert x_unit in ax.get_xlabel() and y_unit in ax.get_ylabel()
    texts = _texts(fig)
    assert not [t for t in texts if re.search(r"(?<![\d.])1 (files|dates|samples|workers)\b", t)]
    assert not [t for t in texts if "download:" in t or "NVMe" in t]  # readable labels only
    return texts


def _legend_colours(ax):
    from matplotlib.colors import to_hex

    legend = ax.get_legend()
    out = {}
    for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
        colour = handle.get_color() if hasattr(handle, "get_xdata") else handle.get_facecolor()
        out[text.get_text()] = to_hex(colour)
    return out


def _close(fig):
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_file_size_chart_is_reviewable():
    from eolab.lab.plots import draw_file_sizes
    from eolab.report import style

    sizes = {
        "zarr-zip": {"other": [3_000_000]},
        "zarr": {"10m": [4000, 9000, 70_000], "other": [300]},
        "zarr-sharded": {"10m": [5000, 9000, 80_000], "other": [310]},
        "safe": {"20m": [2_000_000], "other": [900, 1200]},
    }
    fig = draw_file_sizes(sizes, "35VLH", 2024)
    texts = _assert_reviewable(fig, "bytes", "count")
    assert "35VLH 2024" in fig.get_suptitle()
    assert any(t.startswith(style.DEMO_LABEL) for t in texts)  # a few MB: demo-size
    axes = [ax for ax in fig.axes if ax.get_visible()]
    titles = [ax.get_title() for ax in axes]
    assert [t.split(":")[0] for t in titles] == ["SAFE", "Zarr", "Zarr (sharded)", "Zarr (zipped)"]
    assert "Zarr (zipped): 1 file, 2.86 MiB" in titles
    assert "one chunk per shard" in titles[2] and "one chunk" not in titles[1]
    assert len({ax.get_xlim() for ax in axes}) == 1  # one x range for every panel
    for ax in axes:
        assert sum(p.get_height() for p in ax.patches) > 0
        ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
        for label, colour in _legend_colours(ax).items():
            assert colour == style.group_colour(label.split(":")[0])  # "other" grey everywhere
    assert "other: 1 file, mean 300 B" in _texts(fig)
    _close(fig)


def _rich_result():
    result = _result()
    result.update(
        dates=4,
        repeats=2,
        patch_size_m=5100.0,
        page_cache={"dropped": False},
        storage_devices={"network": "/dev/vda (ext4) at /", "temp": "/dev/vda (ext4) at /"},
        same_device=True,
        dataset_bytes={"zarr": 4e6, "safe": 5e6},
    )
    for storage in result["results"].values():
        for entry in storage.values():
            entry["durations"] = entry["durations"][:2]
            entry["mean_durations"] = float(np.mean(entry["durations"]))
            entry["std_durations"] = float(np.std(entry["durations"], ddof=1))
    result["results"]["temp"]["zarr"]["decode_bound_s"] = 0.5
    return result


def test_load_time_chart_is_reviewable():
    from matplotlib.container import BarContainer

    from eolab.lab.plots import draw_load_times
    from eolab.report import style

    fig = draw_load_times(_rich_result())
    ax = fig.axes[0]
    texts = _assert_reviewable(fig, "format", "(s, log scale)")
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0] == "Zarr via xarray/dask (reference)" and ticks[1:3] == ["SAFE", "COG"]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 3 and all(b.patches[0].get_height() > 0 for b in bars)
    assert ax.get_legend().get_title().get_text() == "bars: mean ± sd, n=2"
    colours = _legend_colours(ax)
    assert colours["network drive (/dev/vda (ext4) at /)"] == style.storage_colour("network")
    temp = "node-local temp (/dev/vda (ext4) at /), same disk as the network drive"
    assert colours[temp] == style.storage_colour("temp")
    assert colours["S3"] == style.storage_colour("s3")
    assert "decode lower bound (2 threads)" in colours
    caption = fig.get_supxlabel()
    assert "4 dates" in caption and "patch 5100 m" in caption and "2 timed repeats" in caption
    assert "warm page cache" in caption and "network drive: /dev/vda" in caption
    labels = [t.get_text() for t in ax.texts]
    assert labels and all(t.endswith((" s", " ms", " min")) for t in labels)
    assert any(t.startswith(style.DEMO_LABEL) for t in texts)
    # value labels sit above the error bars' caps, not on them
    for bar_group in bars:
        err = bar_group.errorbar.lines[2][0].get_segments()
        tops = {round(seg[0][0], 6): seg[1][1] for seg in err}
        for text in ax.texts:
            x, y = text.xy
            if round(x, 6) in tops:
                assert y >= tops[round(x, 6)] - 1e-9
    _close(fig)


def _feed():
    def runs(rates):
        return [{"workers": w, "samples_per_s": r} for w, r in enumerate(rates)]

    results = {
        "network": {"zarr": {"dataloader": runs([10, 30, 50])}},
        "s3": {"zarr": {"dataloader": runs([2, 5, 8])}},
        "s3-temp": {"zarr": {"staging_s": 40.0, "dataloader": runs([12, 60, 55])}},
        "unzip-temp": {"zarr-zip": {"staging_s": 10.0, "dataloader": runs([11, 35, 58])}},
    }
    return {
        "tile": "35VLH",
        "year": 2024,
        "dates": 4,
        "patch_size_m": 1280.0,
        "samples": 64,
        "batch_size": 4,
        "workers": [0, 1, 2],
        "cores": 2,
        "storage_devices": {"network": "/dev/vda (ext4) at /"},
        "results": results,
    }


def test_measured_throughput_chart_uses_the_train_feed_numbers():
    from eolab.lab.plots import draw_throughput, measured_curves
    from eolab.report import style

    feed = _feed()
    result = _rich_result()
    fig = draw_throughput(result, {"download:zarr": 1.0}, feed=feed)
    texts = _assert_reviewable(fig, "(s, log scale)", "/ s")
    assert "Measured" in fig.get_suptitle() and "calculated" not in " ".join(texts)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["Zarr", "Zarr (zipped)"]
    for ax in axes:
        assert ax.get_legend().get_title().get_text() == "measured"
        for line in ax.get_lines():
            if line.get_label().startswith("_"):
                continue  # the 1 min / 1 h marks
            assert max(line.get_ydata()) > 0
    colours = {k.split(":")[0]: v for ax in axes for k, v in _legend_colours(ax).items()}
    for storage in feed["results"]:
        assert colours[style.storage_label(storage)] == style.storage_colour(storage)
    lo, hi = axes[0].get_xlim()
    assert lo <= 10.0 / 2 and hi >= 40.0 * 10
    # most of the axis shows the staged curves rising, not flat at their plateau
    budgets = np.logspace(np.log10(lo), np.log10(hi), 400)
    staged = next(c for c in measured_curves(feed, budgets) if c["storage"] == "s3-temp")
    assert staged["workers"] == 1 and staged["samples_per_s"] == 60
    np.testing.assert_allclose(staged["values"], np.maximum(0, budgets - 40) / budgets * 60)
    assert np.mean(staged["values"] > 0.95 * 60) < 0.5
    _close(fig)


def test_calculated_throughput_chart_says_it_is_calculated():
    from eolab.lab.plots import draw_throughput

    staging = {"download:zarr": 600.0, "download:zarr-zip": 300.0, "unzip": 120.0}
    fig = draw_throughput(_rich_result(), staging)
    _assert_reviewable(fig, "(s, log scale)", "/ s")
    ax = fig.axes[0]
    assert "calculated from single-process load times" in fig.get_suptitle()
    assert ax.get_legend().get_title().get_text() == "calculated, not measured"
    assert "download Zarr S3 → temp 10.0 min" in fig.get_supxlabel()
    lo, hi = ax.get_xlim()
    assert lo <= 300 / 2 and hi <= 600 * 30 * 1.01
    assert all(max(line.get_ydata()) > 0 for line in ax.get_lines() if line.get_label()[0] != "_")
    _close(fig)
