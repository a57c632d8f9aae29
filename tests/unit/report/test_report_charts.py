"""Every report chart: drawn from small, seeded inputs through `figure.save`, which refuses a chart
without a title, with an unlabelled axis or an empty panel; plus the numbers each chart shows."""

import json

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from eolab.benv2.names import LABELS
from eolab.core.errors import OutputError
from eolab.report import benv2, chips, figure, provenance, sentinel2, style


def assert_png(path):
    image = mpimg.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.01  # not a blank canvas


# --- the chart check itself -------------------------------------------------------------------


def test_save_refuses_a_chart_without_title_labels_or_data(tmp_path):
    fig, axes = figure.figure(ncols=2)
    axes[0, 0].plot([1, 2], [3, 4])
    axes[0, 0].set_xlabel("x (s)")
    problems = figure.chart_problems(fig)
    assert problems == [
        "no title",
        "panel 0: no y label",
        "panel 1: no data",
        "panel 1: no x label",
        "panel 1: no y label",
    ]
    with pytest.raises(OutputError, match="no title"):
        figure.save(fig, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_titled_chart_with_labels_passes_and_says_demo_size(tmp_path):
    fig, axes = figure.figure()
    axes[0, 0].bar(["a"], [1])
    axes[0, 0].set_xlabel("format")
    axes[0, 0].set_ylabel("size (MB)")
    figure.titled(fig, "Title", "tile 35VLH", demo=True)
    assert figure.chart_problems(fig) == []
    assert any(style.DEMO_LABEL in t.get_text() for t in fig.texts)
    assert_png(figure.save(fig, tmp_path / "ok.png"))


# --- BigEarthNet v2 ---------------------------------------------------------------------------


@pytest.fixture
def benv2_run():
    rng = np.random.default_rng(7)
    rows = [
        {
            "split": ["train", "validation", "test"][i % 3],
            "country": ["Austria", "Finland"][i % 2],
            "labels": list(rng.choice(LABELS[:6], size=2, replace=False)),
        }
        for i in range(12)
    ]
    summary = {
        "selected": 14,
        "done": 12,
        "options": {"workers": 2, "dtype": "float32", "normalise": "patch"},
        "environment": {"cpu": "Test CPU", "cpu_count": 2},
        "timings_s": {"convert_s": 1.5, "plan_s": 0.2, "store_s": 0.4, "total_s": 2.1},
        "throughput_patches_per_s": 8.0,
        "failures_by_reason": {"no_s1": 2},
    }
    log = [{"status": "converted"}] * 12 + [{"status": "skipped", "reason": "no_s1"}] * 2
    return rows, summary, log


def test_benv2_counts(benv2_run):
    rows, summary, log = benv2_run
    splits, countries, counts = benv2.split_country_counts(rows)
    assert splits == ["train", "validation", "test"] and countries == ["Austria", "Finland"]
    assert counts.sum() == 12 and counts.tolist() == [[2, 2], [2, 2], [2, 2]]
    freq = benv2.label_frequencies(rows)
    assert list(freq) == list(LABELS) and sum(freq.values()) == 24
    assert benv2.skip_reasons(summary, log) == {"skipped: no_s1": 2}


def test_benv2_charts(benv2_run, tmp_path):
    rows, summary, log = benv2_run
    assert_png(benv2.plot_split_country(rows, summary, tmp_path / "a.png", demo=True))
    assert_png(benv2.plot_label_frequencies(rows, summary, tmp_path / "b.png", demo=False))
    assert_png(benv2.plot_conversion(summary, log, tmp_path / "c.png", demo=True))


# --- chips ------------------------------------------------------------------------------------


@pytest.fixture
def chip_table():
    rng = np.random.default_rng(3)
    rows = []
    for tile, item_date in (
        ("35VLH", "2024-02-15"),
        ("35VLH", "2024-05-17"),
        ("51CVP", "2024-02-15"),
    ):
        for y in range(3):
            for x in range(4):
                if item_date == "2024-05-17" and x == 3:
                    continue  # dropped chips (too much nodata)
                rows.append(
                    {
                        "item_id": f"S2A_MSIL1C_{item_date.replace('-', '')}_T{tile}_X",
                        "datetime": pd.Timestamp(item_date),
                        "chip_index_x": x,
                        "chip_index_y": y,
                        "cloud_cover_percentage": rng.random(),
                        "nodata_percentage": rng.random() * 0.3,
                        "native_crs": "EPSG:32635",
                        "native_xmin": 300000 + 640 * x,
                        "native_xmax": 300640 + 640 * x,
                        "native_ymax": 6800000 - 640 * y,
                        "native_ymin": 6799360 - 640 * y,
                    }
                )
    table = pd.DataFrame(rows)
    table["tile"] = [chips.tile_of(i) for i in table["item_id"]]
    return table


def test_chip_grid_places_chips_and_marks_dropped_ones(chip_table):
    item = chip_table[chip_table["item_id"].str.contains("20240517")]
    values, extent = chips.grid(item, "cloud_cover_percentage", shape=(3, 4))
    assert values.shape == (3, 4) and np.isnan(values[:, 3]).all()
    assert not np.isnan(values[:, :3]).any()
    assert extent == pytest.approx((300.0, 302.56, 6798.08, 6800.0))
    assert chips.tile_of("S2B_MSIL1C_20240101T000000_N0510_R001_T51CVP_2024") == "51CVP"


def test_chip_charts(chip_table, tmp_path):
    assert_png(chips.plot_tile_maps(chip_table, "35VLH", tmp_path / "m.png", demo=True))
    assert_png(chips.plot_distributions(chip_table, tmp_path / "d.png", demo=True))


# --- Sentinel-2 -------------------------------------------------------------------------------


def test_quicklook_marks_nodata(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(500, 3000, size=(3, 60, 80, 3), dtype=np.uint16)
    rgb[1, :, 50:] = 0  # a nodata strip on the second date
    cube = {
        "rgb": rgb,
        "dates": ["2024-01-01", "2024-02-01", "2024-03-01"],
        "step_m": 10,
        "cloud_band": None,
    }
    stretched = sentinel2.stretch(rgb[0], np.ones((60, 80), bool))
    assert stretched.min() == 0.0 and stretched.max() == 1.0
    assert_png(sentinel2.plot_quicklooks(cube, "35VLH", 2024, tmp_path / "q.png", demo=True))


def test_conversion_times_from_benchmark_tsvs(tmp_path):
    benchmarks = {}
    for fmt, seconds in (("cog", 8.0), ("zarr", 12.0)):
        path = tmp_path / f"{fmt}.tsv"
        path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:08\t120.5\n", encoding="utf-8")
        benchmarks[fmt] = path
    times = sentinel2.conversion_seconds(benchmarks, products=4)
    assert times == {
        "cog": {"job_s": 8.0, "per_product_s": 2.0},
        "zarr": {"job_s": 12.0, "per_product_s": 3.0},
    }
    assert_png(sentinel2.plot_conversion_times(times, 4, "35VLH", 2024, tmp_path / "t.png", True))


def test_sizes_chart(tmp_path):
    store = tmp_path / "t.zarr"
    (store / "c").mkdir(parents=True)
    (store / "zarr.json").write_text("{}", encoding="utf-8")
    (store / "c" / "0").write_bytes(b"x" * 1000)
    sizes = sentinel2.format_sizes({"zarr": store})
    assert sizes == {"zarr": {"objects": 2, "bytes": 1002}}
    sizes["zarr-zip"] = {"objects": 1, "bytes": 900}
    assert_png(sentinel2.plot_sizes(sizes, "35VLH", 2024, tmp_path / "s.png", demo=True))


# --- provenance -------------------------------------------------------------------------------


def test_provenance_page(tmp_path):
    bench = tmp_path / "benchmarks" / "safe_to_cog"
    bench.mkdir(parents=True)
    (bench / "35VLH_2024.tsv").write_text("s\th:m:s\tmax_rss\n8.5\t0:00:08\t300\n", "utf-8")
    (tmp_path / "benchmarks" / "benv2_tiles.tsv").write_text("s\tmax_rss\n3\t50\n", "utf-8")
    record = tmp_path / "summary.json"
    env = {
        "created": "2026-12-06T10:00:00+00:00",
        "cpu": "Test CPU",
        "cpu_count": 2,
        "hostname": "node1",
        "python": "3.11.7",
        "versions": {"eolab": "0.1", "gdal": "3.9"},
    }
    record.write_text(json.dumps({"environment": env}), encoding="utf-8")
    config = {"results": "results", "sentinel2": {"tiles": ["35VLH"], "year": 2024}}
    out = provenance.write_page(config, tmp_path / "benchmarks", [record], tmp_path / "p.html")
    page = out.read_text(encoding="utf-8")
    assert provenance.config_hash(config) in page
    assert provenance.config_hash(config) != provenance.config_hash({**config, "results": "x"})
    assert "<td>safe_to_cog</td><td>35VLH_2024</td><td>8.50</td><td>300</td>" in page
    assert "<td>benv2_tiles</td><td></td><td>3.00</td><td>50</td>" in page
    assert "Test CPU (2 CPUs)" in page and "eolab 0.1, gdal 3.9" in page
    assert "<td>sentinel2.tiles</td><td>[&quot;35VLH&quot;]</td>" in page


# --- downloads --------------------------------------------------------------------------------


def test_downloads_chart(tmp_path):
    from eolab.report import downloads

    done = {
        "dataset": "gen",
        "workers": 4,
        "download": {
            "downloaded": 5,
            "present": 2,
            "failed": 1,
            "bytes": 4 * 2**20,
            "verified": {"md5": 3, "size": 2},
            "seconds": 2.0,
        },
    }
    catalog_only = {"dataset": "cat", "workers": 4}
    assert downloads.outcomes(done) == {
        "downloaded (md5)": 3,
        "downloaded (size)": 2,
        "present": 2,
        "failed": 1,
    }
    assert downloads.throughput(done) == {"mib_per_s": 2.0, "files_per_s": 2.5}
    assert downloads.throughput(catalog_only) is None
    paths = []
    for i, summary in enumerate((done, catalog_only)):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps(summary), encoding="utf-8")
    summaries = downloads.read_summaries(paths)
    assert_png(downloads.plot_downloads(summaries, tmp_path / "dl.png", demo=False))


def test_intake_chart(tmp_path):
    from eolab.report import downloads

    manifest = {
        "products": [
            {"id": "a", "verified": True, "bytes": 3 * 2**20, "fetched_bytes": 2**20},
            {"id": "b", "verified": False, "bytes": 2**20, "fetched_bytes": 2**20},
        ]
    }
    assert downloads.intake_counts(manifest) == {
        "verified": 1,
        "not verified": 1,
        "fetched_bytes": 2 * 2**20,
        "present_bytes": 2 * 2**20,
    }
    out = downloads.plot_intake(
        {"35VLH 2024": manifest}, {"35VLH 2024": 2.0}, tmp_path / "i.png", demo=False
    )
    assert_png(out)
