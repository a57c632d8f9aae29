"""Benchmark: streamed unzip S3 -> temp against download + unzip of the same zip, same server.

Each repeat runs every variant in a fresh folder under the temp root (removed afterwards), the
variants' order rotating between repeats so none always runs on a warmer server:

- ``download+unzip``: the staging operations ``download`` (boto3 transfer: parallel ranged
  parts of 16 MB) then ``unzip`` (members extracted in threads) — the zip is on disk in between;
- ``get+unzip``: the same with the zip downloaded by one plain GET (no ranged parts: fairer on
  a local moto server, which reads the whole object for every ranged GET);
- ``stream`` (``streams=1``): one sequential GET parsed as it arrives;
- ``ranged-N``: N contiguous member groups fetched concurrently with ranged GETs.

The first repeat checks that every variant produced the same files with the same bytes. The
report gives the median seconds of each and its ratio to download+unzip.
"""

from __future__ import annotations

import statistics
import time
import zlib
from pathlib import Path
from typing import Any

from eolab.core.errors import InputError

BASELINE = "download+unzip"
SINGLE_GET = "get+unzip"


def tree_digest(root: Path) -> dict[str, tuple[int, int]]:
    """``{relative path: (size, CRC-32)}`` of every file under ``root``."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        crc = 0
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                crc = zlib.crc32(block, crc)
        out[path.relative_to(root).as_posix()] = (path.stat().st_size, crc)
    return out


def _variant(
    name: str, zipped: Any, client: Any, bucket: str, prefix: str, area: Path, workers: int
) -> tuple[float, Path]:
    from eolab.lab.staging import download_dataset, unzip_from_s3, unzip_store

    store = area / "store" / zipped.entry.removesuffix(".zip")
    start = time.perf_counter()
    if name == BASELINE:
        staged, _ = download_dataset(zipped, client, bucket, prefix, area / "zip", workers)
        unzip_store(staged, store, workers)
    elif name == SINGLE_GET:
        from boto3.s3.transfer import TransferConfig

        local = area / "zip" / zipped.entry
        local.parent.mkdir(parents=True)
        whole = TransferConfig(multipart_threshold=1 << 62, use_threads=False)
        key = f"{prefix.strip('/')}/{zipped.entry}" if prefix.strip("/") else zipped.entry
        client.download_file(bucket, key, str(local), Config=whole)
        unzip_store(zipped.relocated(local.parent), store, workers)
    else:
        streams = 1 if name == "stream" else int(name.split("-")[1])
        unzip_from_s3(zipped, client, bucket, prefix, store, streams)
    return time.perf_counter() - start, store


def run(
    zip_path: Path,
    client: Any,
    bucket: str,
    prefix: str,
    temp_root: Path,
    streams: list[int],
    repeats: int = 3,
    workers: int = 8,
    echo: Any = print,
) -> dict[str, Any]:
    """Time every variant ``repeats`` times on the zip at ``zip_path`` (uploaded first)."""
    from eolab.lab.staging import dataset, ensure_uploaded, scratch_area

    zipped = dataset("zarr-zip", zip_path)
    ensure_uploaded(zipped, client, bucket, prefix, workers)
    variants = [BASELINE, SINGLE_GET] + [("stream" if n == 1 else f"ranged-{n}") for n in streams]
    seconds: dict[str, list[float]] = {v: [] for v in variants}
    reference: dict[str, tuple[int, int]] | None = None
    for rep in range(repeats):
        order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
        for name in order:
            with scratch_area(temp_root) as area:
                took, store = _variant(name, zipped, client, bucket, prefix, area, workers)
                if rep == 0:
                    digest = tree_digest(store)
                    if reference is None:
                        reference = digest
                    elif digest != reference:
                        raise InputError(f"{name}: extracted store differs from the others")
            seconds[name].append(took)
            echo(f"repeat {rep + 1}/{repeats} {name}: {took:.2f} s")
    size = zip_path.stat().st_size
    base = statistics.median(seconds[BASELINE])
    results = {
        name: {
            "seconds": times,
            "median_s": statistics.median(times),
            "mb_per_s": size / 1e6 / statistics.median(times),
            "ratio_to_download_unzip": statistics.median(times) / base,
        }
        for name, times in seconds.items()
    }
    return {
        "zip": str(zip_path),
        "zip_bytes": size,
        "members": len(reference or {}),
        "repeats": repeats,
        "workers": workers,
        "results": results,
    }


def format_report(doc: dict[str, Any]) -> str:
    lines = [
        f"zip {doc['zip_bytes'] / 1e9:.2f} GB, {doc['members']} files, "
        f"median of {doc['repeats']} repeats",
        f"{'variant':<16} {'median s':>9} {'MB/s':>8} {'ratio':>7}",
    ]
    for name, r in doc["results"].items():
        lines.append(
            f"{name:<16} {r['median_s']:>9.2f} {r['mb_per_s']:>8.1f} "
            f"{r['ratio_to_download_unzip']:>6.2f}x"
        )
    return "\n".join(lines)
