"""Download a STAC dataset (Radiant MLHub style): catalog archive or catalog -> asset files.

Pipeline (each step skips what a previous run already did):

1. resolve the source (archive URL or path, catalog URL, folder or file) and fetch the archive;
2. extract it safely into ``<out>/<dataset>/_catalog/``;
3. index the catalog into ``<out>/<dataset>/_assets.sqlite`` in one streaming pass, unless its
   fingerprint (archive sha256, or the catalog files' names/sizes/mtimes) is unchanged;
4. select files with the filters (SQL + shapely), then download them with a worker pool
   (resume, retries, checksums) to ``<out>/<dataset>/<collection>/<item>/<key><ext>``;
5. write ``_download-errors.csv`` and ``_download-summary.json``; fail listing what failed.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import sqlite3
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eolab.core import disk
from eolab.core.atomic import atomic_open, write_json
from eolab.core.errors import DiskSpaceError, InputError, RemoteError, from_sqlite_error
from eolab.core.hashing import MultiHasher, file_hexdigest
from eolab.core.redact import redact_text, redact_url
from eolab.download.assetdb import AssetDB, safe_component
from eolab.download.catalog import CatalogWalker, is_remote
from eolab.download.extract import archive_stem, extract_archive, is_archive_name
from eolab.download.fetch import (
    Fetcher,
    FetchError,
    RetryPolicy,
    bounded_map,
    expected_checksum,
    part_path,
    split_s3,
)
from eolab.download.filters import Filters

DEFAULT_WORKERS = 16
INDEX_BATCH = 500
RECORD_BATCH = 500
SUMMARY_NAME = "_download-summary.json"
ERRORS_NAME = "_download-errors.csv"
DB_NAME = "_assets.sqlite"
CATALOG_DIR = "_catalog"
ARCHIVE_DIR = "_archive"


class DownloadFailed(RemoteError):
    """Some selected assets could not be downloaded; the message lists them."""


@dataclass
class StacDatasetOptions:
    """Everything `download_stac_dataset` needs besides the source."""

    out: Path
    filters: Filters = field(default_factory=Filters)
    dataset: str | None = None
    catalog_only: bool = False
    workers: int = DEFAULT_WORKERS
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 60.0
    checksum_retries: int = 1
    s3_endpoint: str | None = None
    s3_unsigned: bool = False
    reindex: bool = False
    common_min_items: int = 2
    progress: bool = True


@dataclass(frozen=True)
class Source:
    """What SOURCE is: an archive (local or remote) or a catalog (folder, file or URL)."""

    kind: str  # "archive" | "catalog"
    location: str
    remote: bool

    @property
    def name(self) -> str:
        path = urllib.parse.urlsplit(self.location).path if self.remote else self.location
        return os.path.basename(path.rstrip("/"))


def classify_source(source: str) -> Source:
    """Tell archives from catalogs by the name (and, for local paths, by what exists)."""
    remote = is_remote(source)
    if remote:
        path = urllib.parse.urlsplit(source).path
        kind = "archive" if is_archive_name(path) else "catalog"
        return Source(kind, source, True)
    path = Path(source)
    if not path.exists():
        raise InputError(f"source not found: {source}")
    if path.is_dir():
        return Source("catalog", str(find_root_document(path)), False)
    if is_archive_name(path.name):
        return Source("archive", str(path.resolve()), False)
    if path.suffix.lower() == ".json":
        return Source("catalog", str(path.resolve()), False)
    raise InputError(f"{source}: neither a catalog (.json, folder) nor an archive ({path.suffix})")


def find_root_document(folder: Path, max_depth: int = 4) -> Path:
    """The shallowest ``catalog.json`` (else ``collection.json``) under ``folder``."""
    for name in ("catalog.json", "collection.json"):
        level = [folder]
        for _depth in range(max_depth):
            hits = sorted(p / name for p in level if (p / name).is_file())
            if hits:
                return hits[0]
            level = sorted(d for p in level for d in p.iterdir() if d.is_dir())
    raise InputError(f"{folder}: no catalog.json or collection.json found")


def _iter_json_files(folder: Path):
    """Every ``*.json`` under ``folder`` (DirEntry), depth first with a stack of open scandir
    iterators, so memory grows with the depth, not with the number of items in a folder."""
    stack = [os.scandir(folder)]
    try:
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop().close()
            elif entry.is_dir(follow_symlinks=False):
                stack.append(os.scandir(entry.path))
            elif entry.name.endswith(".json"):
                yield entry
    finally:
        for it in stack:
            it.close()


def tree_fingerprint(folder: Path) -> str:
    """An order-independent digest of every JSON file's relative path, size and mtime."""
    total = 0
    count = 0
    prefix = len(str(folder)) + 1
    for entry in _iter_json_files(folder):
        st = entry.stat(follow_symlinks=False)
        key = f"{entry.path[prefix:]}\0{st.st_size}\0{st.st_mtime_ns}".encode()
        total = (total + int.from_bytes(hashlib.sha256(key).digest(), "big")) % (1 << 256)
        count += 1
    return f"tree:{count}:{total:064x}"


class StacDatasetDownloader:
    """One run of the pipeline for one source (see the module docstring)."""

    def __init__(self, source: str, options: StacDatasetOptions):
        self.options = options
        self.source = classify_source(source)
        self.fetcher = Fetcher(
            retry=options.retry,
            timeout=(min(10.0, options.timeout), options.timeout),
            checksum_retries=options.checksum_retries,
            s3_endpoint=options.s3_endpoint,
            s3_unsigned=options.s3_unsigned,
            pool_size=max(10, options.workers),
        )
        self.dataset = options.dataset or self._dataset_name()
        self.dir = Path(options.out) / safe_component(self.dataset)
        self.stats: dict[str, Any] = {}

    def _dataset_name(self) -> str:
        if self.source.kind == "archive":
            return archive_stem(self.source.name)
        walker = CatalogWalker(self.source.location, self.fetcher.get_bytes)
        _kind, doc_id = walker.header(self.source.location)
        return doc_id or Path(self.source.name).stem

    # --- steps ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        except sqlite3.OperationalError as exc:  # a full disk surfaces here without a file name
            known = from_sqlite_error(exc, self.dir / DB_NAME)
            if known is None:
                raise
            raise known from exc

    def _run(self) -> dict[str, Any]:
        t0 = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        with run_lock(self.dir), AssetDB(self.dir / DB_NAME) as db:
            root, fingerprint = self.prepare_catalog(db)
            indexed = self.index(db, root, fingerprint)
            selection = db.select(self.options.filters)
            summary: dict[str, Any] = {
                "dataset": self.dataset,
                "source": self.source.location,
                "folder": str(self.dir),
                "catalog": {**db.counts(), "fingerprint": fingerprint, "reindexed": indexed},
                "filters": self.options.filters.describe(),
                "unknown_collections": selection.unknown_collections,
                "selected": {"files": selection.files, "bytes_known": selection.bytes_known},
                "catalog_only": self.options.catalog_only,
                "workers": self.options.workers,
            }
            failures: list[tuple] = []
            if not self.options.catalog_only:
                check_free_space(self.dir, db.selected_pending_bytes())
                summary["download"] = self.download(db, selection.files)
                failures = db.failed_selected()
                self.write_errors(failures)
            summary.update(self.stats)  # extraction counts, an archive check that failed
            summary["seconds"] = round(time.monotonic() - t0, 3)
            write_json(self.dir / SUMMARY_NAME, summary)
        if failures:
            raise DownloadFailed(failure_message(failures, self.dir / ERRORS_NAME))
        return summary

    def prepare_catalog(self, db: AssetDB) -> tuple[str, str]:
        """(root document path or URL, catalog fingerprint), fetching/extracting as needed."""
        src = self.source
        if src.kind == "catalog":
            if src.remote:
                digest = hashlib.sha256(self.fetcher.get_bytes(src.location)).hexdigest()
                return src.location, f"url:{src.location}:{digest}"
            return src.location, tree_fingerprint(Path(src.location).parent)
        archive = Path(src.location)
        if src.remote:
            archive = self.dir / ARCHIVE_DIR / src.name
            self._ensure_archive(db, src.location, archive)
        fingerprint = "sha256:" + self._archive_digest(db, archive)
        catalog_dir = self.dir / CATALOG_DIR
        if self.options.reindex or not db.is_indexed(fingerprint) or not catalog_dir.is_dir():
            self.stats["extract"] = extract_archive(archive, catalog_dir).__dict__
            db.set_meta(index_complete="0")
        return str(find_root_document(catalog_dir)), fingerprint

    def _archive_digest(self, db: AssetDB, archive: Path) -> str:
        """sha256 of the archive, reused from the database while size and mtime are the same."""
        st = archive.stat()
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
        if db.get_meta("archive_stamp") == stamp and db.get_meta("archive_sha256"):
            return db.get_meta("archive_sha256")  # type: ignore[return-value]
        digest = file_hexdigest(archive, "sha256")
        db.set_meta(archive_stamp=stamp, archive_sha256=digest)
        return digest

    def _ensure_archive(self, db: AssetDB, url: str, archive: Path) -> None:
        """Download the archive unless the copy here still matches the server's validators."""
        validators = self._validators(url)
        if archive.is_file():
            if validators is None or validators == db.get_meta("archive_validators"):
                return  # offline rerun, or unchanged on the server
            archive.unlink()
        self.fetcher.fetch(url, archive)
        db.set_meta(archive_validators=validators)

    def _validators(self, url: str) -> str | None:
        """ETag, Last-Modified and size of a remote file, or None when it cannot be asked."""
        try:
            if url.startswith("s3://"):
                bucket, key = split_s3(url)
                head = self.fetcher.s3().head_object(Bucket=bucket, Key=key)
                return f"{head.get('ETag')}|{head.get('LastModified')}|{head['ContentLength']}"
            resp = self.fetcher.request("HEAD", url)
            resp.release_conn()
            if resp.status >= 400:
                return None
            h = resp.headers
            return f"{h.get('ETag')}|{h.get('Last-Modified')}|{h.get('Content-Length')}"
        except Exception as exc:  # offline or refused: the caller keeps the copy it has
            self.stats["archive_check"] = redact_text(
                f"could not ask {redact_url(url)}: {type(exc).__name__}: {exc}"
            )
            return None

    def index(self, db: AssetDB, root: str, fingerprint: str) -> bool:
        """Walk the catalog into the database unless this exact catalog is indexed already."""
        if not self.options.reindex and db.is_indexed(fingerprint):
            return False
        from eolab.core.progress import bar as progress_bar

        walker = CatalogWalker(root, self.fetcher.get_bytes, workers=self.options.workers)
        db.begin_index()
        batch = []
        with progress_bar(
            desc="indexing", unit="item", disable=not self.options.progress, mininterval=0.5
        ) as bar:
            for record in walker.items():
                batch.append(record)
                if len(batch) >= INDEX_BATCH:
                    bar.update(db.add_items(batch))
                    batch = []
            bar.update(db.add_items(batch))
        db.finish_index(
            fingerprint,
            common_min_items=self.options.common_min_items,
            catalog_root=root,
            documents=walker.documents,
        )
        return True

    def download(self, db: AssetDB, total: int) -> dict[str, Any]:
        """Download every selected file that is not already here; returns the counters."""
        from eolab.core.progress import bar as progress_bar

        counts: Counter = Counter()
        verified: Counter = Counter()
        pending: list[tuple] = []
        t0 = time.monotonic()
        last_flush = t0
        workers = max(1, self.options.workers)
        pool = ThreadPoolExecutor(workers, thread_name_prefix="stac-dl")
        bar = progress_bar(
            total=total,
            desc="downloading",
            unit="file",
            disable=not self.options.progress,
            mininterval=0.5,
        )
        try:
            for _task, fut in bounded_map(
                pool, self._download_one, db.iter_selected(), workers * 4
            ):
                outcome = fut.result()
                counts[outcome["status"]] += 1
                counts["bytes"] += outcome["bytes"] if outcome["status"] == "downloaded" else 0
                counts["resumed"] += bool(outcome["resumed_from"])
                counts["refetched"] += outcome["refetched"]
                counts["retries"] += max(0, outcome["attempts"] - 1 - outcome["refetched"])
                if outcome["status"] == "downloaded":
                    verified[outcome["verified"]] += 1
                pending.append(outcome["row"])
                bar.update(1)
                now = time.monotonic()
                if len(pending) >= RECORD_BATCH or now - last_flush > 2.0:
                    db.record(pending)
                    pending = []
                    last_flush = now
                    bar.set_postfix(failed=counts["failed"], MB=counts["bytes"] >> 20)
        finally:
            if pending:
                db.record(pending)
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
        seconds = time.monotonic() - t0
        fetched = counts["downloaded"] + counts["failed"]
        return {
            "downloaded": counts["downloaded"],
            "present": counts["present"],
            "failed": counts["failed"],
            "bytes": counts["bytes"],
            "resumed": counts["resumed"],
            "retries": counts["retries"],
            "refetched": counts["refetched"],
            "verified": dict(verified),
            "seconds": round(seconds, 3),
            "files_per_second": round(fetched / seconds, 1) if seconds > 0 and fetched else None,
        }

    def _download_one(self, task: tuple) -> dict[str, Any]:
        """One file: skip it when already verified here, else fetch it; never raises except
        for a full disk (which stops the run)."""
        pk, dest_rel, href, size, checksum, status, done_bytes = task
        dest = self.dir / dest_rel
        outcome: dict[str, Any] = {
            "status": "present",
            "bytes": 0,
            "verified": None,
            "attempts": 0,
            "resumed_from": [],
            "refetched": 0,
        }
        if status == "stale":
            dest.unlink(missing_ok=True)
            part_path(dest).unlink(missing_ok=True)
        elif dest.is_file() and local_copy_ok(dest, size, checksum, status, done_bytes):
            nbytes = dest.stat().st_size
            outcome["bytes"] = nbytes
            outcome["row"] = ("done", nbytes, None, "present", 0, None, None, pk)
            return outcome
        try:
            res = self.fetcher.fetch(href, dest, size=size, checksum=checksum)
        except FetchError as exc:
            outcome.update(status="failed", attempts=exc.attempts)
            outcome["row"] = ("failed", None, None, None, exc.attempts, exc.status, exc.reason, pk)
            return outcome
        except OSError as exc:
            if disk.is_disk_full(exc):
                raise DiskSpaceError(f"{dest}: no space left on device") from exc
            outcome.update(status="failed")
            row = ("failed", None, None, None, 1, None, f"local error: {exc}", pk)
            outcome["row"] = row
            return outcome
        outcome.update(
            status="downloaded",
            bytes=res.bytes,
            verified=res.verified,
            attempts=res.attempts,
            resumed_from=res.resumed_from,
            refetched=res.refetched,
        )
        outcome["row"] = ("done", res.bytes, res.sha256, res.verified, res.attempts, None, None, pk)
        return outcome

    def write_errors(self, failures: list[tuple]) -> None:
        """The error report (always written, so a clean rerun empties it)."""
        with atomic_open(self.dir / ERRORS_NAME, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "href", "error", "http_status", "attempts"])
            # a signed href's query string is a credential: never in a report
            writer.writerows((dest, redact_url(href), *rest) for dest, href, *rest in failures)


@contextlib.contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Refuse a second run on the same dataset folder at the same time (it would race on the
    part files and the database); the lock dies with the process."""
    import fcntl

    fh = open(folder / "_lock", "a+")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise InputError(f"{folder}: another download is running in this folder") from exc
        yield
    finally:
        fh.close()


def check_free_space(folder: Path, needed: int, margin: float = 1.05) -> None:
    """`DiskSpaceError` before starting when the known sizes do not fit on the disk."""
    disk.check_free_space(
        folder,
        needed,
        what="the selected files (what they need by file:size)",
        hint="narrow the filters or free some space",
        margin=margin,
    )


def local_copy_ok(
    dest: Path, size: int | None, checksum: str | None, status: str, done_bytes: int | None
) -> bool:
    """Whether a file already at ``dest`` can be kept. A final name only ever appears after
    verification; a file recorded as done is checked by size, any other one by size and checksum
    (it may come from a run that stopped before recording)."""
    actual = dest.stat().st_size
    if status == "done":
        return done_bytes is None or actual == done_bytes
    if size is not None and actual != size:
        return False
    expected = expected_checksum(checksum)
    if expected is None:
        return True
    hasher = MultiHasher({expected.algorithm})
    with open(dest, "rb") as fh:
        while chunk := fh.read(1 << 20):
            hasher.update(chunk)
    return hasher.digest(expected.algorithm) == expected.digest


def failure_message(failures: list[tuple], report: Path, show: int = 10) -> str:
    """One paragraph naming the failed files (the first ``show``) and the report."""
    lines = [f"{len(failures)} asset(s) failed to download (details in {report}):"]
    for dest, href, error, _status, _attempts in failures[:show]:
        lines.append(f"  {dest} <- {redact_url(href)}: {redact_text(str(error))}")
    if len(failures) > show:
        lines.append(f"  ... and {len(failures) - show} more")
    lines.append("Rerun the same command to retry them; finished files are kept.")
    return "\n".join(lines)


def download_stac_dataset(source: str, options: StacDatasetOptions) -> dict[str, Any]:
    """Run the whole pipeline; returns the summary (also written to ``_download-summary.json``)
    and raises `DownloadFailed` naming the assets that could not be fetched."""
    return StacDatasetDownloader(source, options).run()
