"""``eolab bench download`` on a few tiny assets from a loopback server (our threaded server in
its own process): the downloader fetches and verifies everything the bare GET loop fetches,
the JSON's ratios and headline follow from its runs, and the memory curve has one point per
catalog size."""

import json

from eolab.download.bench import run_benchmark


def test_download_benchmark_json_ratios_and_counts(tmp_path):
    out = tmp_path / "download.json"
    result = run_benchmark(
        assets=30, asset_bytes=1024, sizes=[20, 60], workers=4, repeats=1, server="python",
        workdir=tmp_path / "work", out=out,
    )  # fmt: skip
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    speed = result["throughput"]
    assert speed["server"] == "python (own process)" and speed["workers"] == 4
    (run,) = speed["runs"]
    (bare,) = speed["baseline_bare_get_loop"]
    (bare_write,) = speed["baseline_bare_get_and_write_loop"]
    assert run["exit_code"] == 0, run["stderr_tail"]
    download = run["download"]
    # the downloader gets exactly what the bare loops get, all verified, nothing failed
    assert download["downloaded"] == bare["files"] == bare_write["files"] == speed["files"]
    assert download["bytes"] == bare["bytes"] == bare_write["bytes"]
    assert download["failed"] == 0 and download["verified"] == {"file:checksum": speed["files"]}
    assert speed["rerun_all_present"]["exit_code"] == 0
    assert speed["files_per_second_median"] == download["files_per_second"]
    assert speed["ratio_to_baseline"] == round(
        download["files_per_second"] / bare["files_per_second"], 3
    )
    assert speed["ratio_to_get_and_write_baseline"] == round(
        download["files_per_second"] / bare_write["files_per_second"], 3
    )
    memory = result["memory"]
    assert [p["items"] for p in memory["points"]] == [20, 60]
    assert all(p["exit_code"] == 0 and p["peak_rss_mib"] > 0 for p in memory["points"])
    rss = [p["peak_rss_mib"] for p in memory["points"]]
    assert memory["rss_ratio_largest_to_smallest"] == round(rss[-1] / rss[0], 3)
    headline = result["headline"]
    assert headline["files"] == speed["files"]
    assert headline["ratio_to_baseline"] == speed["ratio_to_baseline"]
    assert headline["peak_rss_mib_by_items"] == {"20": rss[0], "60": rss[1]}
    assert not (tmp_path / "work" / "bare").exists()  # the bare loop's files are removed
