"""Fetch the SAFE folders of STAC items from S3, resumably and verified.

Layout: ``<out>/<key of the SAFE folder>``, i.e. ``Sentinel-2/MSI/L1C/YYYY/MM/DD/<name>.SAFE``
as on CDSE. Per product: list the folder, fetch and verify ``manifest.safe`` first, then every
listed file through a shared pool of ``workers`` threads (the CDSE quota is 4 connections). A file
already present with the right size and checksum is not fetched again; a product is verified
only when every file is present and checked, and manifest.safe agrees with the listing.
"""

from __future__ import annotations

import collections
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eolab.core.disk import check_free_space, is_disk_full
from eolab.core.errors import ConfigError, DiskSpaceError, EolabError, InputError
from eolab.intake import s3
from eolab.intake.plan import MANIFEST, RemoteFile, asset_checksums, plan_files, safe_prefix
from eolab.intake.verify import local_file_ok

log = logging.getLogger(__name__)

#: Errors that stop the whole run (bad credentials, no endpoint, bad config), not one product.
FATAL = (s3.AccessDenied, s3.EndpointUnreachable, ConfigError, DiskSpaceError)


@dataclass
class ProductFetch:
    """What happened to one product: its files, which were fetched, and what went wrong."""

    item: dict[str, Any]
    bucket: str
    prefix: str
    local: Path
    files: list[RemoteFile] = field(default_factory=list)
    outcome: dict[str, str] = field(default_factory=dict)  # rel -> present | fetched | failed
    fetched_bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.item["id"])

    @property
    def verified(self) -> bool:
        return (
            bool(self.files)
            and not self.problems
            and all(self.outcome.get(f.rel) in ("present", "fetched") for f in self.files)
        )

    def checks(self) -> dict[str, int]:
        """How many files were checked by each algorithm (``size`` = size only)."""
        counts = collections.Counter(
            f.checksum.algorithm if f.checksum else "size" for f in self.files
        )
        return dict(sorted(counts.items()))

    def count(self, what: str) -> int:
        return sum(1 for v in self.outcome.values() if v == what)


class _Progress:
    """Two tqdm bars (products, bytes) updated from worker threads under one lock."""

    def __init__(self, products: int, enabled: bool | None):
        from eolab.core.progress import bar as progress_bar

        self._lock = threading.Lock()
        disable = enabled is False  # None: a bar, as lines when not on a terminal
        self.products = progress_bar(
            total=products, desc="products", unit="product", disable=disable
        )
        self.bytes = progress_bar(
            total=0, desc="bytes", unit="B", unit_scale=True, unit_divisor=1024, disable=disable
        )

    def add_total(self, n: int) -> None:
        with self._lock:
            self.bytes.total += n
            self.bytes.refresh()

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes.update(n)

    def product_done(self) -> None:
        with self._lock:
            self.products.update(1)

    def close(self) -> None:
        self.bytes.close()
        self.products.close()


def _clean_partials(folder: Path) -> None:
    """Remove temporary files left by a run that was killed (atomic writes use ``.name.*.tmp``)."""
    if folder.is_dir():
        for tmp in folder.rglob(".*.tmp"):
            if tmp.is_file():
                tmp.unlink()


def _local_path(root: Path, rel: str) -> Path:
    path = root.joinpath(*rel.split("/"))
    if ".." in rel.split("/") or not path.resolve().is_relative_to(root.resolve()):
        raise InputError(f"{root}: S3 key {rel!r} would leave the SAFE folder")
    return path


class Fetcher:
    """Downloads products with one client and one thread pool; see `fetch_products`."""

    def __init__(self, client, bucket: str, out: Path, workers: int, retries: int, progress):
        self.client = client
        self.bucket = bucket
        self.out = Path(out)
        self.workers = max(int(workers), 1)
        self.retries = retries
        self.progress = progress

    def ensure(self, prod: ProductFetch, rf: RemoteFile) -> tuple[str, int, str | None]:
        """Make one local file complete: keep it if verified, else fetch it.

        Returns (outcome, bytes transferred, problem); the caller records it on the product.
        """
        dest = _local_path(prod.local, rf.rel)
        if local_file_ok(dest, rf.size, rf.checksum):
            self.progress.add_bytes(rf.size)
            return "present", 0, None
        try:
            n = s3.fetch_object(
                self.client,
                self.bucket,
                prod.prefix + rf.rel,
                dest,
                rf.size,
                rf.checksum,
                retries=self.retries,
                on_bytes=self.progress.add_bytes,
            )
        except s3.TransferError as exc:
            return "failed", 0, str(exc)
        return "fetched", n, None

    @staticmethod
    def record(prod: ProductFetch, rel: str, result: tuple[str, int, str | None]) -> None:
        outcome, n, problem = result
        prod.outcome[rel] = outcome
        prod.fetched_bytes += n
        if problem:
            prod.problems.append(problem)

    def prepare(self, prod: ProductFetch) -> None:
        """List the folder, fetch and verify manifest.safe, and plan the files."""
        from eolab.sentinel2.safe import read_manifest_safe

        _clean_partials(prod.local)
        listing = s3.list_prefix(self.client, self.bucket, prod.prefix, self.retries)
        if not listing:
            prod.problems.append(f"s3://{self.bucket}/{prod.prefix}: no objects")
            return
        sums = asset_checksums(prod.item, prod.bucket, prod.prefix)
        entries = None
        if MANIFEST in listing:
            self.progress.add_total(listing[MANIFEST])
            manifest = RemoteFile(MANIFEST, listing[MANIFEST], sums.get(MANIFEST))
            self.record(prod, MANIFEST, self.ensure(prod, manifest))
            if prod.outcome[MANIFEST] != "failed":
                try:
                    entries = read_manifest_safe(prod.local / MANIFEST)
                except InputError as exc:
                    prod.problems.append(str(exc))
        else:
            prod.problems.append(f"s3://{self.bucket}/{prod.prefix}: no {MANIFEST}")
        prod.files, problems = plan_files(listing, entries, sums)
        prod.problems += problems
        self.progress.add_total(sum(f.size for f in prod.files if f.rel != MANIFEST))

    def run(self, prods: list[ProductFetch]) -> None:
        """Prepare every product (in the pool), check disk space, then fetch every file."""
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="cdse")
        try:
            preps = {pool.submit(self.prepare, p): p for p in prods}
            for fut in as_completed(preps):
                self._settle(fut, preps[fut])
            self._check_space(prods)
            jobs: dict[Future, tuple[ProductFetch, str]] = {}
            remaining: dict[str, int] = {}
            for prod in prods:
                todo = [f for f in prod.files if f.rel not in prod.outcome]
                remaining[prod.id] = len(todo)
                if not todo:
                    self._product_done(prod)
                for rf in todo:
                    jobs[pool.submit(self.ensure, prod, rf)] = (prod, rf.rel)
            for fut in as_completed(jobs):
                prod, rel = jobs[fut]
                if self._settle(fut, prod):
                    self.record(prod, rel, fut.result())
                remaining[prod.id] -= 1
                if remaining[prod.id] == 0:
                    self._product_done(prod)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def _settle(self, fut: Future, prod: ProductFetch) -> bool:
        """True if the task succeeded; re-raise fatal errors; record a product-level one."""
        exc = fut.exception()
        if exc is None:
            return True
        # local disk: full, read-only, permissions (network errors that got past the retries
        # are OSErrors too, but without a file name: those fail only their product)
        if isinstance(exc, OSError) and not isinstance(exc, ConnectionError | TimeoutError):
            if is_disk_full(exc):
                raise DiskSpaceError(f"{exc.filename or self.out}: no space left") from exc
            raise EolabError(f"{exc.filename or self.out}: {exc.strerror or exc}") from exc
        if isinstance(exc, FATAL) or not isinstance(
            exc, EolabError | ConnectionError | TimeoutError
        ):
            raise exc
        prod.problems.append(str(exc))
        return False

    def _check_space(self, prods: list[ProductFetch]) -> None:
        """Refuse to start when the disk cannot hold what is still missing (by size)."""
        need = 0
        for prod in prods:
            for rf in prod.files:
                path = prod.local.joinpath(*rf.rel.split("/"))
                have = path.stat().st_size if path.exists() else -1
                need += rf.size if have != rf.size else 0
        self.out.mkdir(parents=True, exist_ok=True)
        check_free_space(self.out, need, what="what is still to download", margin=1.0)

    def _product_done(self, prod: ProductFetch) -> None:
        self.progress.product_done()
        state = "verified" if prod.verified else "NOT verified"
        log.info(
            "%s: %s (%d files, %d fetched, %d present)%s",
            prod.id,
            state,
            len(prod.files),
            prod.count("fetched"),
            prod.count("present"),
            "; " + "; ".join(prod.problems[:3]) if prod.problems else "",
        )


def fetch_products(
    items: list[dict[str, Any]],
    out: str | Path,
    client,
    *,
    bucket: str = s3.BUCKET,
    workers: int = s3.WORKERS,
    retries: int = s3.RETRIES,
    progress: bool | None = None,
) -> list[ProductFetch]:
    """Download and verify the SAFE folders of ``items`` under ``out`` (``bucket`` overrides the
    bucket named in the items' hrefs, so a mirror can serve the same keys)."""
    out = Path(out)
    prods: dict[str, ProductFetch] = {}
    unplannable: list[ProductFetch] = []  # no usable S3 folder: listed unverified, not fetched
    for item in items:
        try:
            item_bucket, prefix = safe_prefix(item)
            local = _local_path(out, prefix.rstrip("/"))
        except InputError as exc:
            name = f"{item.get('id')}.SAFE"
            prod = ProductFetch(item, bucket, "", out / name, problems=[str(exc)])
            log.warning("%s", exc)
            unplannable.append(prod)
            continue
        if prefix in prods:  # a catalog error; fetching one folder twice at once would race
            log.warning("%s: same SAFE folder as %s; skipped", item["id"], prods[prefix].id)
            continue
        prods[prefix] = ProductFetch(item, item_bucket, prefix, local)
    from tqdm.contrib.logging import logging_redirect_tqdm

    bars = _Progress(len(prods), progress)
    try:
        with logging_redirect_tqdm():  # log lines above the bars, not through them
            Fetcher(client, bucket, out, workers, retries, bars).run(list(prods.values()))
    finally:
        bars.close()
    return list(prods.values()) + unplannable
