"""``eolab bench download``: how fast the STAC downloader fetches small assets on loopback, and
how its memory behaves as the catalog grows.

* Throughput: a generated dataset of ~N small assets served by nginx (or our threaded server in
  its own process) on 127.0.0.1; the downloader (default workers, checksums on, files written,
  database updated) runs as the real command in a child process. Baseline measured in the same
  run: a bare loop of GETs with the same threads and urllib3 pool that discards the bodies (what
  Python HTTP can do here at all), and the same loop writing each body to a new file (adding the
  file-system cost any downloader pays).
* Memory: peak RSS (the child's own rusage) of index + select (``--catalog-only``) for catalogs
  of 1 000 ... 100 000 items; flat means the catalog is streamed, not loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import urllib3

from eolab.core.atomic import write_json
from eolab.core.provenance import environment
from eolab.download.stac_dataset import DEFAULT_WORKERS
from eolab.fixtures.localhttp import NginxServer, nginx_available
from eolab.fixtures.stac_dataset import generate


class PythonServerProcess:
    """`eolab.fixtures.localhttp` serving a folder from a child process."""

    def __init__(self, root: Path):
        self.root = root
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PythonServerProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "eolab.fixtures.localhttp", str(self.root)],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        self.port = int(line.split()[1])
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


# Runs a command and writes its peak RSS (KiB, from wait4) to argv[1]. It is a separate small
# process on purpose: Linux keeps the RSS high-water mark of the process that spawned a child
# (vfork shares its memory until exec), so a child spawned by a large parent would report at
# least the parent's RSS. This launcher is tiny (python -S), so the floor is a few MiB.
_LAUNCHER = (
    "import os, sys\n"
    "pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a command; return its wall time, its own peak RSS (MiB) and its exit code."""
    with tempfile.NamedTemporaryFile("r", suffix=".maxrss") as report:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-S", "-c", _LAUNCHER, report.name, *cmd],
            env=env or _child_env(),
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - t0
        text = Path(report.name).read_text().strip()
    return {
        "seconds": round(seconds, 3),
        "peak_rss_mib": round(int(text) / 1024, 1) if text else None,
        "exit_code": proc.returncode,
        "stderr_tail": proc.stderr[-500:] if proc.returncode else "",
    }


def measurement_floor_mib() -> float | None:
    """The peak RSS `run_measured` reports for a process that does nothing (``true``)."""
    return run_measured(["true"])["peak_rss_mib"]


def bare_get_loop(urls: list[str], workers: int, write_to: Path | None = None) -> dict[str, Any]:
    """GET every URL with ``workers`` threads through one urllib3 pool (the downloader's HTTP
    library): no checksums, no database, no resume; bodies discarded, or written each to its
    own new file under ``write_to`` (the file-system cost every downloader pays)."""
    pool = urllib3.PoolManager(maxsize=workers, block=False)

    def get(job: tuple[int, str]) -> int:
        index, url = job
        resp = pool.request("GET", url, preload_content=False, retries=False)
        try:
            if resp.status != 200:
                raise RuntimeError(f"{url}: HTTP {resp.status}")
            body = resp.read()
        finally:
            resp.release_conn()
        if write_to is not None:
            folder = write_to / str(index % 1000)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{index}.bin").write_bytes(body)
        return len(body)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool_threads:
        total = sum(pool_threads.map(get, enumerate(urls), chunksize=64))
    seconds = time.perf_counter() - t0
    return {
        "seconds": round(seconds, 3),
        "files": len(urls),
        "bytes": total,
        "files_per_second": round(len(urls) / seconds, 1),
    }


def download_cmd(catalog: Path, out: Path, workers: int, catalog_only: bool = False) -> list[str]:
    """The ``eolab download stac-dataset`` command the benchmark runs as a child process
    (``catalog_only``: index and select, no download)."""
    cmd = [
        sys.executable,
        "-m",
        "eolab",
        "download",
        "stac-dataset",
        str(catalog),
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--no-progress",
    ]
    return cmd + (["--catalog-only"] if catalog_only else [])


def throughput(
    work: Path, assets: int, asset_bytes: int, workers: int, repeats: int, server: str
) -> dict[str, Any]:
    """Assets/s of the downloader vs. the bare GET loop, on the same loopback server."""
    www = work / "www"
    www.mkdir(parents=True, exist_ok=True)
    items = max(2, -(-assets * 2 // 3))  # 2 source items: 2 bands, 1 label item: 1 file
    use_nginx = server == "nginx" or (server == "auto" and nginx_available())
    srv = NginxServer(www) if use_nginx else PythonServerProcess(www)
    with srv:
        gen = generate(www / "ds", items=items, base_url=f"{srv.url}/ds", asset_bytes=asset_bytes)
        catalog = gen["catalog"].parent
        urls = list(gen["files"])
        baseline = [bare_get_loop(urls, workers) for _ in range(repeats)]
        baseline_files = []
        for _ in range(repeats):
            shutil.rmtree(work / "bare", ignore_errors=True)
            baseline_files.append(bare_get_loop(urls, workers, write_to=work / "bare"))
        shutil.rmtree(work / "bare", ignore_errors=True)
        runs = []
        for _ in range(repeats):
            out = work / "out"
            shutil.rmtree(out, ignore_errors=True)
            run = run_measured(download_cmd(catalog, out, workers))
            summary_path = out / "eolab_test_dataset" / "_download-summary.json"
            summary = json.loads(summary_path.read_text())
            run["download"] = summary["download"]
            run["index_and_select_seconds"] = round(
                summary["seconds"] - summary["download"]["seconds"], 3
            )
            runs.append(run)
        rerun = run_measured(download_cmd(catalog, work / "out", workers))
    best = statistics.median(r["download"]["files_per_second"] for r in runs)
    base = statistics.median(b["files_per_second"] for b in baseline)
    base_files = statistics.median(b["files_per_second"] for b in baseline_files)
    return {
        "server": "nginx" if use_nginx else "python (own process)",
        "items": items,
        "files": len(urls),
        "asset_bytes": asset_bytes,
        "workers": workers,
        "runs": runs,
        "baseline_bare_get_loop": baseline,
        "baseline_bare_get_and_write_loop": baseline_files,
        "rerun_all_present": rerun,
        "files_per_second_median": best,
        "baseline_files_per_second_median": base,
        "ratio_to_baseline": round(best / base, 3) if base else None,
        "baseline_get_and_write_files_per_second_median": base_files,
        "ratio_to_get_and_write_baseline": round(best / base_files, 3) if base_files else None,
    }


def memory_curve(work: Path, sizes: list[int], workers: int) -> dict[str, Any]:
    """Peak RSS and time of index + select for growing catalogs (no assets fetched)."""
    points = []
    for n in sizes:
        root = work / f"cat{n}"
        t0 = time.perf_counter()
        gen = generate(root, items=n, base_url="http://127.0.0.1:9/none", write_assets=False)
        gen_seconds = time.perf_counter() - t0
        run = run_measured(
            download_cmd(gen["catalog"].parent, root / "out", workers, catalog_only=True)
        )
        db = root / "out" / "eolab_test_dataset" / "_assets.sqlite"
        run.update(
            items=n,
            generate_seconds=round(gen_seconds, 2),
            db_mib=round(db.stat().st_size / 2**20, 1) if db.exists() else None,
            items_per_second=round(n / run["seconds"], 1),
        )
        points.append(run)
        shutil.rmtree(root, ignore_errors=True)
    rss = [p["peak_rss_mib"] for p in points]
    return {"points": points, "rss_ratio_largest_to_smallest": round(rss[-1] / rss[0], 3)}


def run_benchmark(
    assets: int = 10_000,
    asset_bytes: int = 16_384,
    sizes: list[int] | None = None,
    workers: int | None = None,
    repeats: int = 2,
    server: str = "auto",
    workdir: Path | None = None,
    out: Path = Path("results/benchmark/download/download.json"),
) -> dict[str, Any]:
    """Run both measurements, write JSON with provenance to ``out``, return it."""
    workers = workers or DEFAULT_WORKERS
    sizes = sizes or [1_000, 10_000, 100_000]
    own_tmp = workdir is None
    work = Path(tempfile.mkdtemp(prefix="eolab-bench-dl-")) if own_tmp else Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        speed = throughput(work, assets, asset_bytes, workers, repeats, server)
        memory = memory_curve(work, sizes, workers)
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)
    result = {
        "benchmark": "download",
        "rss_measurement_floor_mib": measurement_floor_mib(),
        "what": "STAC dataset downloader: small assets from a loopback server, and peak RSS of "
        "index+select as the catalog grows",
        "parameters": {
            "assets": assets,
            "asset_bytes": asset_bytes,
            "sizes": sizes,
            "workers": workers,
            "repeats": repeats,
            "server": server,
        },
        "throughput": speed,
        "memory": memory,
        "headline": {
            "files": speed["files"],
            "workers": workers,
            "server": speed["server"],
            "files_per_second": speed["files_per_second_median"],
            "baseline_bare_get_files_per_second": speed["baseline_files_per_second_median"],
            "ratio_to_baseline": speed["ratio_to_baseline"],
            "baseline_get_and_write_files_per_second": speed[
                "baseline_get_and_write_files_per_second_median"
            ],
            "ratio_to_get_and_write_baseline": speed["ratio_to_get_and_write_baseline"],
            "target_files_per_second": 500,
            "rerun_all_present_seconds": speed["rerun_all_present"]["seconds"],
            "peak_rss_mib_by_items": {str(p["items"]): p["peak_rss_mib"] for p in memory["points"]},
            "rss_ratio_largest_to_smallest": memory["rss_ratio_largest_to_smallest"],
        },
        "environment": environment(),
    }
    write_json(out, result)
    return result
