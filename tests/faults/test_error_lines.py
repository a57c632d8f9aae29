"""Every ordinary fault is one line ``eolab: error: <file>: <what> (<hint>)`` and a non-zero exit.

Each case runs the real ``eolab`` command in a subprocess three times: plainly (exactly one
``eolab: error:`` line naming the file or URL, no traceback), with ``--debug`` and with
``EOLAB_DEBUG=1`` (the traceback appears, the line still ends the output). Read-only and full
filesystems are real tmpfs mounts (root only: as root a chmod 0o555 folder is still writable).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eolab.fixtures.localhttp import LocalHTTPServer
from eolab.fixtures.s3server import free_port
from eolab.fixtures.stac_dataset import generate as generate_stac

BIN = Path(sys.executable).parent
EOLAB = BIN / "eolab"
ERROR = "eolab: error:"
SECRET = "X-Amz-Signature=0123456789abcdef"
TALLY = {"faults": 0, "one_line": 0, "tracebacks": 0}


def eolab(*args, cwd: Path | None = None, debug_env: bool = False, timeout: float = 300):
    env = {k: v for k, v in os.environ.items() if k != "EOLAB_DEBUG"}
    if debug_env:
        env["EOLAB_DEBUG"] = "1"
    return subprocess.run(
        [str(EOLAB), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The single ``eolab: error:`` line of a failed run (asserts there is exactly one), with the
    indented detail lines that follow it (urls-to-s3 lists each failed link on one)."""
    assert proc.returncode not in (0, None), proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(ERROR)]
    assert len(starts) == 1, proc.stderr
    block = [lines[starts[0]]]
    block += [line for line in lines[starts[0] + 1 :] if line.startswith("  ")]
    return "\n".join(block)


def check_fault(*args, names: tuple[str, ...], cwd: Path | None = None) -> tuple[str, str]:
    """Run a faulty command plainly, with --debug and with EOLAB_DEBUG=1; return its error line
    and the whole output of the plain run."""
    TALLY["faults"] += 1
    plain = eolab(*args, cwd=cwd)
    line = error_line(plain)
    if "Traceback" in plain.stdout + plain.stderr:
        TALLY["tracebacks"] += 1
    assert "Traceback" not in plain.stdout + plain.stderr, plain.stderr
    for name in names:
        assert name in line, line
    TALLY["one_line"] += 1
    for debug in (eolab("--debug", *args, cwd=cwd), eolab(*args, cwd=cwd, debug_env=True)):
        assert "Traceback (most recent call last)" in debug.stderr
        assert error_line(debug) == line
    return line, plain.stdout + plain.stderr


@pytest.fixture(scope="module", autouse=True)
def report_tally(pytestconfig) -> Iterator[None]:
    yield
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"\nerror lines: faults tried {TALLY['faults']}, clear one-line errors "
                f"{TALLY['one_line']}, tracebacks {TALLY['tracebacks']}"
            )


# --- mounts ---------------------------------------------------------------------------------
def _mount_tmpfs(path: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs (a chmod'ed folder does not stop root)")
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")


@pytest.fixture()
def read_only_dir(tmp_path) -> Iterator[Path]:
    path = tmp_path / "ro"
    _mount_tmpfs(path, "ro,size=1m")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.fixture()
def full_dir(tmp_path) -> Iterator[Path]:
    path = tmp_path / "full"
    _mount_tmpfs(path, "size=64k")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


# --- inputs ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def products(tmp_path_factory) -> Path:
    """A two-date Sentinel-2 fixture of 35VLH and one product of 35VMH beside it."""
    root = tmp_path_factory.mktemp("s2")
    for tile, dates in (("35VLH", 2), ("35VMH", 1)):
        proc = eolab("fixtures", "sentinel2", "--out", root, "--tile", tile,
                     "--dates", dates, "--scale", 61)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    return root


def manifest(products: Path) -> Path:
    return products / "35VLH_2024.json"


def edited_manifest(products: Path, name: str, edit) -> Path:
    doc = json.loads(manifest(products).read_text())
    edit(doc)
    path = products / name
    path.write_text(json.dumps(doc))
    return path


# --- output folders -------------------------------------------------------------------------
def test_read_only_output_folder_of_to_cog(products, read_only_dir):
    out = read_only_dir / "cogs"
    line, _ = check_fault(
        "sentinel2", "to-cog", "--manifest", manifest(products), out, "--quiet",
        names=(str(out), "read-only file system", "writable"),
    )  # fmt: skip
    assert line.startswith(f"{ERROR} {out}: ")


def test_read_only_store_of_to_zarr(products, read_only_dir):
    store = read_only_dir / "cube.zarr"
    check_fault(
        "sentinel2", "to-zarr", "--manifest", manifest(products), "--store", store, "--quiet",
        names=(str(read_only_dir), "read-only file system"),
    )  # fmt: skip


def test_read_only_folder_of_a_listing_names_the_listing_not_its_temporary(
    products, read_only_dir, tmp_path
):
    listing = read_only_dir / "listing.json"
    line, _ = check_fault(
        "sentinel2", "to-cog", "--manifest", manifest(products), tmp_path / "cogs",
        "--listing", listing, "--quiet",
        names=(f"{listing}: read-only file system",),
    )  # fmt: skip
    assert ".tmp" not in line


def test_store_that_is_a_regular_file(products, tmp_path):
    store = tmp_path / "cube.zarr"
    store.write_text("not a folder")
    check_fault(
        "sentinel2", "to-zarr", "--manifest", manifest(products), "--store", store, "--quiet",
        names=(str(store), "a file is in the way"),
    )  # fmt: skip
    assert store.read_text() == "not a folder"


def test_full_disk_under_the_stac_downloader_database(tmp_path, full_dir):
    catalog = generate_stac(tmp_path / "stac", items=200, asset_bytes=64)["catalog"]
    check_fault(
        "download", "stac-dataset", catalog, "--out", full_dir, "--catalog-only", "--no-progress",
        names=("_assets.sqlite", "disk is full", "free some space"),
    )  # fmt: skip


def test_full_disk_under_a_transfer_destination(tmp_path, full_dir):
    with LocalHTTPServer(tmp_path / "www") as web:
        links = tmp_path / "links.json"
        url = f"{web.url}/_gen/1000000/1/big.bin?{SECRET}"
        links.write_text(json.dumps([{"url": url, "name": "big.bin"}]))
        _, output = check_fault(
            "transfer", "urls-to-s3", links, "--dest", full_dir / "t", "--no-progress",
            names=("big.bin.part", "no space left on device"),
        )  # fmt: skip
    assert SECRET not in output


# --- remote sources -------------------------------------------------------------------------
def test_archive_url_answering_404(tmp_path):
    with LocalHTTPServer(tmp_path / "www") as web:
        url = f"{web.url}/missing.tar.gz"
        check_fault(
            "download", "stac-dataset", url, "--out", tmp_path / "dl", "--no-progress",
            names=(url, "HTTP 404"),
        )  # fmt: skip


def test_archive_url_refusing_connections_hides_the_signature(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/archive.tar.gz"
    _, output = check_fault(
        "download", "stac-dataset", f"{url}?{SECRET}", "--out", tmp_path / "dl",
        "--retries", 1, "--no-progress",
        names=(url + "?…", "Connection refused"),
    )  # fmt: skip
    assert SECRET not in output


def test_signed_link_refusing_connections_is_redacted_everywhere(tmp_path):
    links = tmp_path / "links.json"
    url = f"http://127.0.0.1:{free_port()}/train.tar.gz?{SECRET}"
    links.write_text(json.dumps([{"url": url, "name": "train.tar.gz"}]))
    args = ("transfer", "urls-to-s3", links, "--dest", tmp_path / "out", "--retries", 1,
            "--no-progress", "--summary", tmp_path / "summary.json")  # fmt: skip
    _, output = check_fault(*args, names=("train.tar.gz", "ConnectionError"))
    assert SECRET not in output
    assert SECRET not in (tmp_path / "summary.json").read_text()


# --- inputs that were silently accepted or crashed ------------------------------------------
def test_manifest_entry_without_path(products):
    def drop_path(doc):
        del doc["products"][1]["path"]

    bad = edited_manifest(products, "no-path.json", drop_path)
    pid = json.loads(manifest(products).read_text())["products"][1]["id"]
    check_fault(
        "sentinel2", "to-cog", "--manifest", bad, products / "cogs", "--quiet",
        names=(str(bad), pid, "lacks 'path'"),
    )  # fmt: skip


def test_manifest_with_a_product_of_another_tile(products, tmp_path):
    other = json.loads((products / "35VMH_2024.json").read_text())["products"][0]
    bad = edited_manifest(products, "mixed.json", lambda doc: doc["products"].append(other))
    out = tmp_path / "cogs"
    check_fault(
        "sentinel2", "to-cog", "--manifest", bad, out, "--listing", out / "listing.json",
        "--quiet",
        names=(str(bad), other["id"], "35VMH", "35VLH"),
    )  # fmt: skip
    assert not out.exists()  # refused before any conversion


def test_catalog_that_is_not_stac(tmp_path):
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"hello": "world", "links": []}))
    check_fault(
        "download", "stac-dataset", catalog, "--out", tmp_path / "dl", "--no-progress",
        names=(str(catalog), "not a STAC catalog"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def benv2_fixture(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("benv2") / "benv2"
    assert eolab("fixtures", "benv2", "--out", root, "--patches", 6).returncode == 0
    return root


def test_benv2_on_a_full_disk_names_the_log_and_the_reason(benv2_fixture, full_dir):
    out = full_dir / "tiles"
    args = ("benv2", "tiles", "--root", benv2_fixture, "--out_dir", out, "--workers", 1,
            "--no-progress")  # fmt: skip
    check_fault(*args, names=(str(out / "log.jsonl"), "6 of 6", "disk_full"))
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert {r["reason"] for r in log} == {"disk_full"}
    assert all(": no space left on device" in r["detail"] for r in log)


def test_benv2_row_without_s1_name_fails_the_run_and_resumes(benv2_fixture, tmp_path):
    root, out = tmp_path / "benv2", tmp_path / "tiles"
    shutil.copytree(benv2_fixture, root)
    table = pq.read_table(root / "metadata.parquet")
    rows = table.to_pydict()
    rows["s1_name"][0] = None
    pq.write_table(pa.table(rows, schema=table.schema), root / "metadata.parquet")
    args = ("benv2", "tiles", "--root", root, "--out_dir", out, "--workers", 1, "--no-progress")
    check_fault(*args, names=(str(out / "log.jsonl"), "1 of 6", "missing_s1_name"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["done"] == 5 and summary["failures_by_reason"] == {"missing_s1_name": 1}
    assert summary["converted_this_run"] == 0  # the reruns kept the 5 done patches
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    skipped = {r["id"] for r in log if r["reason"] == "missing_s1_name"}
    assert skipped == {rows["patch_id"][0]}


def test_unexpected_exception_is_one_line_with_a_hint(tmp_path):
    script = (
        "import sys, click\n"
        "from eolab.cli import cli, main\n"
        "@cli.command('boom')\n"
        "def boom():\n"
        "    raise RuntimeError('something\\nunforeseen')\n"
        "main(sys.argv[1:])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "EOLAB_DEBUG"}
    run = [sys.executable, "-c", script]
    plain = subprocess.run([*run, "boom"], capture_output=True, text=True, env=env)
    line = error_line(plain)
    assert line == (
        f"{ERROR} RuntimeError: something unforeseen "
        "(unexpected; rerun with --debug for the traceback)"
    )
    assert "Traceback" not in plain.stderr
    debug = subprocess.run([*run, "--debug", "boom"], capture_output=True, text=True, env=env)
    assert "Traceback (most recent call last)" in debug.stderr and error_line(debug) == line
