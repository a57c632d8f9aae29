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

With ``http=True`` the same zip is also served by a local nginx (``sendfile``, far faster than
moto, so the server is not the bottleneck) and two more variants run: ``http-get+unzip`` (one
GET to a file, then ``unzip``) and ``http-stream`` (``unzip_stream`` over the same GET); their
ratio is the overlap's gain when transfer and extraction cost about the same.
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


HTTP_GET = "http-get+unzip"
HTTP_STREAM = "http-stream"


def _variant(
    name: str,
    zipped: Any,
    client: Any,
    bucket: str,
    prefix: str,
    area: Path,
    workers: int,
    url: str | None = None,
) -> tuple[float, Path]:
    import shutil
    import urllib.request

    from eolab.lab.staging import download_dataset, unzip_from_s3, unzip_store
    from eolab.zarrio.stream_unzip import unzip_stream

    store = area / "store" / zipped.entry.removesuffix(".zip")
    start = time.perf_counter()
    if name == HTTP_GET:
        local = area / "zip" / zipped.entry
        local.parent.mkdir(parents=True)
        with urllib.request.urlopen(url) as resp, open(local, "wb") as out:
            shutil.copyfileobj(resp, out, 1 << 20)
        unzip_store(zipped.relocated(local.parent), store, workers)
    elif name == HTTP_STREAM:
        with urllib.request.urlopen(url) as resp:
            unzip_stream(resp, store, name=url)
    elif name == BASELINE:
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
    http: bool = False,
    only: list[str] | None = None,
) -> dict[str, Any]:
    """Time every variant (or those in ``only``) ``repeats`` times on the zip at ``zip_path``
    (uploaded first)."""
    import contextlib

    from eolab.fixtures.localhttp import NginxServer
    from eolab.lab.staging import dataset, ensure_uploaded

    zipped = dataset("zarr-zip", zip_path)
    ensure_uploaded(zipped, client, bucket, prefix, workers)
    variants = [BASELINE, SINGLE_GET] + [("stream" if n == 1 else f"ranged-{n}") for n in streams]
    variants += [HTTP_GET, HTTP_STREAM] if http else []
    if only:
        unknown = sorted(set(only) - set(variants))
        if unknown:
            raise InputError(f"unknown benchmark variants {unknown}; choose from {variants}")
        variants = [v for v in variants if v in only]
    with contextlib.ExitStack() as stack:
        url = None
        if http:
            server = stack.enter_context(NginxServer(zip_path.parent))
            url = f"{server.url}/{zip_path.name}"
        seconds, members = _repeat(variants, zipped, client, bucket, prefix, temp_root,
                                   repeats, workers, url, echo)  # fmt: skip
    return _summary(zip_path, seconds, members, repeats, workers)


def _repeat(
    variants: list[str],
    zipped: Any,
    client: Any,
    bucket: str,
    prefix: str,
    temp_root: Path,
    repeats: int,
    workers: int,
    url: str | None,
    echo: Any,
) -> tuple[dict[str, list[float]], int]:
    from eolab.lab.staging import scratch_area

    seconds: dict[str, list[float]] = {v: [] for v in variants}
    reference: dict[str, tuple[int, int]] | None = None
    for rep in range(repeats):
        order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
        for name in order:
            with scratch_area(temp_root) as area:
                took, store = _variant(name, zipped, client, bucket, prefix, area, workers, url)
                if rep == 0:
                    digest = tree_digest(store)
                    if reference is None:
                        reference = digest
                    elif digest != reference:
                        raise InputError(f"{name}: extracted store differs from the others")
            seconds[name].append(took)
            echo(f"repeat {rep + 1}/{repeats} {name}: {took:.2f} s")
    return seconds, len(reference or {})


#: The download-then-unzip variant each streamed variant is paired with (same server, one GET).
PAIRED = {"stream": SINGLE_GET, HTTP_STREAM: HTTP_GET}


def _paired(name: str) -> str:
    return PAIRED.get(name, SINGLE_GET if name.startswith("ranged-") else BASELINE)


def _summary(
    zip_path: Path,
    seconds: dict[str, list[float]],
    members: int,
    repeats: int,
    workers: int,
) -> dict[str, Any]:
    size = zip_path.stat().st_size
    median = {name: statistics.median(times) for name, times in seconds.items()}

    def ratio(name: str, base: str) -> float | None:
        return median[name] / median[base] if base in median else None

    def per_repeat(name: str, base: str) -> float | None:
        # the median of same-repeat ratios: robust to the machine's load drifting between repeats
        if base not in seconds:
            return None
        return statistics.median(a / b for a, b in zip(seconds[name], seconds[base], strict=True))

    results = {
        name: {
            "seconds": times,
            "median_s": median[name],
            "mb_per_s": size / 1e6 / median[name],
            "ratio_to_download_unzip": ratio(name, BASELINE),
            "paired_with": _paired(name),
            "ratio_to_paired": ratio(name, _paired(name)),
            "ratio_to_paired_per_repeat": per_repeat(name, _paired(name)),
        }
        for name, times in seconds.items()
    }
    return {
        "zip": str(zip_path),
        "zip_bytes": size,
        "members": members,
        "repeats": repeats,
        "workers": workers,
        "results": results,
    }


def format_report(doc: dict[str, Any]) -> str:
    """The benchmark result as a text table: median, MB/s and ratios per variant."""
    lines = [
        f"zip {doc['zip_bytes'] / 1e9:.2f} GB, {doc['members']} files, "
        f"median of {doc['repeats']} repeats",
        f"{'variant':<16} {'median s':>9} {'MB/s':>8} {'vs download+unzip':>18}  "
        "vs paired (ratio of medians / median of per-repeat ratios)",
    ]

    def times(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}x"

    for name, r in doc["results"].items():
        lines.append(
            f"{name:<16} {r['median_s']:>9.2f} {r['mb_per_s']:>8.1f} "
            f"{times(r['ratio_to_download_unzip']):>18}  {times(r['ratio_to_paired'])} / "
            f"{times(r['ratio_to_paired_per_repeat'])} {r['paired_with']}"
        )
    return "\n".join(lines)
