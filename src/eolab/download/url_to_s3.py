"""Stream files behind (signed, soon expiring) links straight into S3 or a local folder.

``LINKS.json`` is either a list of objects or a mapping::

    [{"url": "https://host/train.tar.gz?X-Amz-Signature=…", "name": "train.tar.gz",
      "sha256": "<optional hex>", "size": 8381754539}, …]
    {"train.tar.gz": "https://…", "test.tar.gz": {"url": "https://…", "sha256": "…"}}

``name`` (default: the last segment of the URL path) becomes the object key under the
destination prefix; it may contain ``/`` but no ``..``.

Every link is streamed in parts of ``part_size`` through an S3 multipart upload (one part in
memory per worker; no temporary file), hashed with sha256 on the way, and the digest is stored
with the object as ``x-amz-meta-sha256`` (set at creation when LINKS.json gives it, and then
verified; otherwise set right after the upload with a server-side copy). A local destination gets
``<name>`` plus ``<name>.sha256``, and resumes a ``<name>.part`` left by an interrupted run.
A dropped connection resumes at the last part boundary with ``Range``; a failed upload is
aborted. An object that already carries the same sha256 (or the same size and a stored sha256)
is skipped. A link answering 401/403/410 is reported by name as expired while the others go on.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import posixpath
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests
import urllib3

from eolab.core.atomic import write_bytes
from eolab.core.errors import InputError, RemoteError, from_os_error
from eolab.core.redact import redact_text, redact_url
from eolab.download.fetch import (
    USER_AGENT,
    RetryPolicy,
    make_s3_client,
    parse_content_range,
    parse_retry_after,
)

MiB = 1 << 20
DEFAULT_PART_SIZE = 16 * MiB
S3_MIN_PART = 5 * MiB
S3_MAX_PARTS = 10_000
EXPIRED_STATUSES = frozenset({401, 403, 410})
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Link:
    """One file to transfer: where it is, what to call it, what it should hash to."""

    name: str
    url: str
    sha256: str | None = None
    size: int | None = None


@dataclass
class TransferResult:
    """The outcome of one link: status, destination, bytes and sha256, seconds, the error (and
    whether the link had expired), and how often a dropped connection was resumed."""

    name: str
    status: str  # "uploaded" | "skipped" | "failed"
    destination: str
    bytes: int = 0
    sha256: str | None = None
    seconds: float = 0.0
    error: str | None = None
    expired: bool = False
    resumes: int = 0


class TransferError(Exception):
    """A link that could not be transferred (the message says why)."""

    def __init__(self, message: str, expired: bool = False):
        super().__init__(message)
        self.expired = expired


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


def wait_or_give_up(
    name: str,
    retry: RetryPolicy,
    attempt: int,
    exc: _Retryable,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Sleep before the next try of link ``name``, or raise `TransferError` after the last."""
    if attempt >= retry.attempts:
        raise TransferError(f"link {name!r}: {exc} (gave up after {attempt} tries)")
    sleep(retry.delay(attempt, exc.retry_after))


def check_name(name: str) -> str:
    """A safe relative object name (no absolute path, no ``..``, no empty segment)."""
    clean = name.strip()
    parts = clean.split("/")
    if not clean or clean.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InputError(f"link name {name!r} must be a relative path without '..'")
    return clean


def _link(name: str | None, entry: Any, where: str) -> Link:
    if isinstance(entry, str):
        entry = {"url": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
        raise InputError(f"{where}: each link needs a 'url' string")
    url = entry["url"]
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise InputError(f"{where}: {redact_url(url)} is not an http(s) URL")
    name = entry.get("name") or name or posixpath.basename(urllib.parse.urlsplit(url).path)
    sha = entry.get("sha256")
    if sha is not None and not _SHA256.match(str(sha).lower()):
        raise InputError(f"{where}: sha256 of {name!r} is not 64 hex digits")
    size = entry.get("size")
    if size is not None and (not isinstance(size, int) or size < 0):
        raise InputError(f"{where}: size of {name!r} must be a non-negative integer")
    return Link(check_name(str(name)), url, sha.lower() if sha else None, size)


def load_links(path: str | os.PathLike) -> list[Link]:
    """Read LINKS.json (a list of {url, name?, sha256?, size?} or a mapping name -> url)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON: {exc}") from exc
    if isinstance(doc, dict):
        links = [_link(str(k), v, f"{path} [{k}]") for k, v in doc.items()]
    elif isinstance(doc, list):
        links = [_link(None, v, f"{path} [{i}]") for i, v in enumerate(doc)]
    else:
        raise InputError(f"{path}: expected a list of links or a mapping name -> url")
    names = [lk.name for lk in links]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"{path}: duplicate link names: {', '.join(dupes)}")
    if not links:
        raise InputError(f"{path}: no links")
    return links


def _error_detail(resp: requests.Response) -> str:
    """The S3/Azure-style <Code>/<Message> of an error body, if any (first 4 KiB only)."""
    try:
        text = resp.raw.read(4096, decode_content=True).decode("utf-8", "replace")
    except Exception:
        return ""
    found = [m.group(1).strip() for m in re.finditer(r"<(?:Code|Message)>([^<]*)<", text)]
    return ": " + " - ".join(found) if found else ""


def _expired_message(name: str, resp: requests.Response, detail: str) -> str:
    return (
        f"link {name!r} answered HTTP {resp.status_code} {resp.reason}{detail}; the signed link "
        "has probably expired: get fresh links and rerun (finished links are skipped)"
    )


def _check_status(name: str, resp: requests.Response) -> None:
    status = resp.status_code
    if status < 400:
        return
    detail = _error_detail(resp)
    if status in EXPIRED_STATUSES or (status == 400 and "xpired" in detail):
        raise TransferError(_expired_message(name, resp, detail), expired=True)
    if status == 429 or status >= 500:
        raise _Retryable(
            f"HTTP {status} {resp.reason}", parse_retry_after(resp.headers.get("Retry-After"))
        )
    raise TransferError(f"link {name!r} answered HTTP {status} {resp.reason}{detail}")


class RangeStream:
    """The body of a URL as exact ``part_size`` parts, from ``offset``; a dropped connection or
    a 5xx/429 is retried (backoff with jitter) and resumed at the last whole part with Range."""

    def __init__(
        self,
        session: requests.Session,
        link: Link,
        part_size: int,
        offset: int = 0,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.session = session
        self.link = link
        self.part_size = part_size
        self.offset = offset
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.sleep = sleep
        self.total: int | None = None
        self.content_type: str | None = None
        self.resumes = 0
        self._resp: requests.Response | None = None

    def open(self) -> None:
        """Start (or restart) the body at ``self.offset``; learns ``total``."""
        attempt = 0
        while True:
            attempt += 1
            try:
                self._open_once()
                return
            except _Retryable as exc:
                self._wait(attempt, exc)
            except (requests.ConnectionError, requests.Timeout) as exc:
                self._wait(attempt, _Retryable(f"{type(exc).__name__}: {exc}"))

    def _wait(self, attempt: int, exc: _Retryable) -> None:
        wait_or_give_up(self.link.name, self.retry, attempt, exc, self.sleep)

    def _open_once(self) -> None:
        self.close()
        headers = {"Accept-Encoding": "identity"}
        if self.offset:
            headers["Range"] = f"bytes={self.offset}-"
        resp = self.session.get(self.link.url, headers=headers, stream=True, timeout=self.timeout)
        if resp.status_code == 416 and self.offset:
            _, total = parse_content_range(resp.headers.get("Content-Range"))
            resp.close()
            if total == self.offset:
                self.total = total
                self._resp = None
                return
            raise TransferError(f"link {self.link.name!r}: range {self.offset}- refused (416)")
        try:
            _check_status(self.link.name, resp)
        except BaseException:
            resp.close()
            raise
        if resp.status_code == 206:
            start, total = parse_content_range(resp.headers.get("Content-Range"))
            if start != self.offset:
                resp.close()
                raise TransferError(f"link {self.link.name!r}: server answered another range")
        else:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            skip = self.offset  # the server ignored Range: drop what we already have
            while skip:
                chunk = resp.raw.read(min(skip, MiB))
                if not chunk:
                    raise _Retryable("body ended while skipping to the resume offset")
                skip -= len(chunk)
        self.total = total
        self.content_type = resp.headers.get("Content-Type")
        self._resp = resp

    def close(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    def _read_part(self) -> bytes:
        assert self._resp is not None
        buf = bytearray()
        raw = self._resp.raw
        while len(buf) < self.part_size:
            chunk = raw.read(min(self.part_size - len(buf), MiB), decode_content=False)
            if not chunk:
                break
            buf += chunk
        return bytes(buf)

    def parts(self) -> Iterator[bytes]:
        """Yield whole parts; ``offset`` counts the bytes yielded so far."""
        if self._resp is None and self.total != self.offset:
            self.open()
        attempt = 0
        while self._resp is not None:
            try:
                part = self._read_part()
            except (
                urllib3.exceptions.HTTPError,
                requests.ConnectionError,
                requests.Timeout,
                ConnectionError,
            ) as exc:
                part, problem = None, f"connection lost: {type(exc).__name__}"
            else:
                remaining = None if self.total is None else self.total - self.offset
                if not part and not remaining:
                    self.close()  # the end
                    return
                short = remaining is not None and len(part) < min(self.part_size, remaining)
                problem = f"body ended {remaining - len(part)} bytes early" if short else None
            if problem is not None:
                attempt += 1
                self.resumes += 1
                self._wait(attempt, _Retryable(problem))
                self.open()  # resumes at self.offset: the partial part is read again
                continue
            attempt = 0
            self.offset += len(part)
            yield part
            if self.total is not None and self.offset >= self.total:
                self.close()
                return


# --- destinations ------------------------------------------------------------------------
class S3Target:
    """``s3://bucket/prefix``: one object per link, sha256 in its metadata."""

    def __init__(self, url: str, client):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise InputError(f"destination {url!r} is not s3://bucket[/prefix]")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.client = client

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def check_bucket(self) -> None:
        """Fail once, clearly, before any link is fetched, when the bucket is not usable."""
        import botocore.exceptions

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise RemoteError(
                f"s3://{self.bucket}: bucket not found or not accessible (HTTP {status})"
            ) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise RemoteError(f"s3://{self.bucket}: {exc}") from exc

    def describe(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.key(name)}"

    def existing(self, name: str) -> tuple[int, str | None] | None:
        import botocore.exceptions

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(name))
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise
        return head["ContentLength"], head.get("Metadata", {}).get("sha256")

    def writer(self, name: str, link: Link, stream: RangeStream) -> S3Writer:
        return S3Writer(self, name, link, stream)


class S3Writer:
    """A multipart upload fed part by part; ``abort()`` on any failure."""

    def __init__(self, target: S3Target, name: str, link: Link, stream: RangeStream):
        self.t = target
        self.key = target.key(name)
        self.link = link
        self.stream = stream
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.single: bytes | None = None

    def start_offset(self) -> int:
        return 0  # an S3 upload cannot be resumed across runs without re-reading its parts

    def prime(self, hasher) -> None:
        pass

    def _metadata(self, sha256: str | None) -> dict[str, str]:
        return {"sha256": sha256} if sha256 else {}

    def write(self, part: bytes) -> None:
        total = self.stream.total
        if total is not None and total <= self.stream.part_size and not self.parts:
            self.single = part  # small file: one PUT at the end, metadata included
            return
        if self.upload_id is None:
            kwargs: dict[str, Any] = {"Bucket": self.t.bucket, "Key": self.key}
            kwargs["Metadata"] = self._metadata(self.link.sha256)
            if self.stream.content_type:
                kwargs["ContentType"] = self.stream.content_type
            self.upload_id = self.t.client.create_multipart_upload(**kwargs)["UploadId"]
        number = len(self.parts) + 1
        resp = self.t.client.upload_part(
            Bucket=self.t.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=part,
        )
        self.parts.append({"PartNumber": number, "ETag": resp["ETag"]})

    def complete(self, sha256: str) -> None:
        client = self.t.client
        if self.upload_id is None:
            kwargs: dict[str, Any] = {
                "Bucket": self.t.bucket,
                "Key": self.key,
                "Body": self.single or b"",
                "Metadata": self._metadata(sha256),
            }
            if self.stream.content_type:
                kwargs["ContentType"] = self.stream.content_type
            client.put_object(**kwargs)
            return
        client.complete_multipart_upload(
            Bucket=self.t.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )
        self.upload_id = None
        if not self.link.sha256:
            # the digest is known only now: set it with a server-side copy onto itself
            # (managed copy: multipart UploadPartCopy above 5 GiB, no bytes through us)
            extra: dict[str, Any] = {
                "Metadata": self._metadata(sha256),
                "MetadataDirective": "REPLACE",
            }
            if self.stream.content_type:
                extra["ContentType"] = self.stream.content_type
            client.copy(
                {"Bucket": self.t.bucket, "Key": self.key}, self.t.bucket, self.key, ExtraArgs=extra
            )

    def abort(self) -> None:
        if self.upload_id is not None:
            try:
                self.t.client.abort_multipart_upload(
                    Bucket=self.t.bucket, Key=self.key, UploadId=self.upload_id
                )
            finally:
                self.upload_id = None


class LocalTarget:
    """A local folder: ``<name>`` and ``<name>.sha256`` (sha256sum format)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, name: str) -> Path:
        return self.root / name

    def describe(self, name: str) -> str:
        return str(self.path(name))

    def existing(self, name: str) -> tuple[int, str | None] | None:
        path = self.path(name)
        if not path.is_file():
            return None
        sidecar = path.with_name(path.name + ".sha256")
        sha = None
        if sidecar.is_file():
            sha = sidecar.read_text(encoding="utf-8").split()[0].lower() or None
        return path.stat().st_size, sha

    def writer(self, name: str, link: Link, stream: RangeStream) -> LocalWriter:
        return LocalWriter(self.path(name))


class LocalWriter:
    """Appends to ``<name>.part`` (resumed across runs) and renames it when verified."""

    def __init__(self, path: Path):
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = None

    def start_offset(self) -> int:
        return self.part.stat().st_size if self.part.exists() else 0

    def prime(self, hasher) -> None:
        if self.part.exists():
            with open(self.part, "rb") as fh:
                while chunk := fh.read(MiB):
                    hasher.update(chunk)

    def write(self, part: bytes) -> None:
        if self.fh is None:
            self.fh = open(self.part, "ab")  # noqa: SIM115 - closed in complete/abort
        self.fh.write(part)

    def complete(self, sha256: str) -> None:
        if self.fh is None:
            self.fh = open(self.part, "ab")  # noqa: SIM115
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        self.fh = None
        os.replace(self.part, self.path)
        write_bytes(
            self.path.with_name(self.path.name + ".sha256"),
            f"{sha256}  {self.path.name}\n".encode(),
        )

    def abort(self) -> None:
        # keep the .part: the next run resumes from it
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def make_target(dest: str, s3_endpoint: str | None = None, pool_size: int = 16):
    """An `S3Target` for ``s3://bucket/prefix``, else a `LocalTarget`; other schemes are refused."""
    if dest.startswith("s3://"):
        return S3Target(dest, make_s3_client(s3_endpoint, pool_size))
    if "://" in dest:
        raise InputError(f"destination {dest!r} must be s3://bucket/prefix or a local folder")
    return LocalTarget(dest)


# --- one link ----------------------------------------------------------------------------
def probe_size(
    session: requests.Session,
    link: Link,
    timeout,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int | None:
    """The size behind a link: HEAD first; signed GET links often refuse HEAD (the signature
    covers the method), so a 403/405 is asked again as ``GET Range: bytes=0-0``. A 429/5xx or a
    dropped connection is retried like the body (``retry``); None when HEAD cannot connect (the
    body transfer then retries and reports)."""
    retry = retry or RetryPolicy()
    attempt = 0
    while True:
        attempt += 1
        try:
            return _probe_once(session, link, timeout)
        except _Retryable as exc:
            wait_or_give_up(link.name, retry, attempt, exc, sleep)


def _probe_once(session: requests.Session, link: Link, timeout) -> int | None:
    try:
        resp = session.head(link.url, timeout=timeout, allow_redirects=True)
    except (requests.ConnectionError, requests.Timeout):
        return None
    with resp:
        status = resp.status_code
        if status < 400:
            length = resp.headers.get("Content-Length")
            return int(length) if length and length.isdigit() else None
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            raise _Retryable(f"HTTP {status} {resp.reason} to HEAD", retry_after)
    try:
        resp = session.get(
            link.url,
            headers={"Range": "bytes=0-0", "Accept-Encoding": "identity"},
            stream=True,
            timeout=timeout,
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise _Retryable(f"{type(exc).__name__} asking the size") from exc
    with resp:
        if resp.status_code == 206:
            return parse_content_range(resp.headers.get("Content-Range"))[1]
        _check_status(link.name, resp)
        length = resp.headers.get("Content-Length")
        return int(length) if length and length.isdigit() else None


def is_identical(existing: tuple[int, str | None] | None, link: Link, size: int | None) -> bool:
    """Whether the object already there is this link's file (never judged on size alone)."""
    if existing is None:
        return False
    have_size, have_sha = existing
    if have_sha is None:
        return False
    if link.sha256 is not None:
        return have_sha == link.sha256 and (link.size is None or link.size == have_size)
    return size is not None and size == have_size


def part_size_for(size: int | None, part_size: int) -> int:
    """Grow the part size so that a file of ``size`` fits in S3's 10 000 parts."""
    if size is None:
        return part_size
    needed = math.ceil(size / S3_MAX_PARTS)
    return max(part_size, math.ceil(needed / MiB) * MiB)


def describe_failure(exc: Exception, where: str | os.PathLike) -> str:
    """A full or read-only destination names the file and a hint; anything else its type."""
    if isinstance(exc, OSError) and exc.errno and not isinstance(exc, requests.RequestException):
        return str(from_os_error(exc, where))
    return f"{type(exc).__name__}: {exc}"


def transfer_link(
    link: Link,
    target,
    part_size: int = DEFAULT_PART_SIZE,
    retry: RetryPolicy | None = None,
    timeout: tuple[float, float] = (10.0, 60.0),
    on_bytes: Callable[[int], None] | None = None,
    on_size: Callable[[int], None] | None = None,
) -> TransferResult:
    """Transfer one link; every failure becomes a `TransferResult` with status 'failed'."""
    t0 = time.monotonic()
    result = TransferResult(link.name, "failed", target.describe(link.name))
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    writer = None
    try:
        existing = target.existing(link.name)
        if existing is not None and link.sha256 is not None and is_identical(existing, link, None):
            result.status, result.bytes, result.sha256 = "skipped", existing[0], existing[1]
            return result
        size = probe_size(session, link, timeout, retry)
        if size is not None and on_size is not None:
            on_size(size)
        if is_identical(existing, link, size):
            result.status, result.bytes, result.sha256 = "skipped", existing[0], existing[1]
            return result
        if link.size is not None and size is not None and size != link.size:
            raise TransferError(
                f"link {link.name!r} serves {size} bytes but LINKS.json says {link.size}"
            )
        stream = RangeStream(
            session, link, part_size_for(size, part_size), retry=retry, timeout=timeout
        )
        writer = target.writer(link.name, link, stream)
        hasher = hashlib.sha256()
        stream.offset = writer.start_offset()
        if stream.offset and size is not None and stream.offset > size:
            raise TransferError(f"{writer.part} is larger than the file behind the link")
        writer.prime(hasher)
        if on_bytes and stream.offset:
            on_bytes(stream.offset)
        for part in stream.parts():
            hasher.update(part)
            writer.write(part)
            if on_bytes:
                on_bytes(len(part))
        digest = hasher.hexdigest()
        got = stream.offset
        if stream.total is not None and got != stream.total:
            raise TransferError(f"link {link.name!r}: got {got} of {stream.total} bytes")
        if link.size is not None and got != link.size:
            raise TransferError(f"link {link.name!r}: got {got} bytes, LINKS.json says {link.size}")
        if link.sha256 is not None and digest != link.sha256:
            if isinstance(writer, LocalWriter):
                writer.abort()
                writer.part.unlink(missing_ok=True)
            raise TransferError(
                f"link {link.name!r}: sha256 {digest} differs from LINKS.json {link.sha256}"
            )
        writer.complete(digest)
        result.status, result.bytes, result.sha256 = "uploaded", got, digest
        result.resumes = stream.resumes
        return result
    except TransferError as exc:
        result.error, result.expired = redact_text(str(exc)), exc.expired
    except Exception as exc:  # S3 and I/O errors: report by name, let the other links go on
        where = getattr(writer, "part", None) or result.destination
        result.error = redact_text(f"link {link.name!r}: {describe_failure(exc, where)}")
    finally:
        if result.status == "failed" and writer is not None:
            try:
                writer.abort()
            except Exception as exc:  # the report must still name the original failure
                result.error = redact_text(f"{result.error}; aborting the upload failed too: {exc}")
        session.close()
        result.seconds = round(time.monotonic() - t0, 3)
    return result


def transfer_links(
    links: list[Link],
    dest: str,
    workers: int | None = None,
    part_size: int = DEFAULT_PART_SIZE,
    s3_endpoint: str | None = None,
    retry: RetryPolicy | None = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> list[TransferResult]:
    """Transfer all links in parallel (default: one worker per link, at most 16)."""
    from eolab.core.progress import bar as progress_bar

    workers = workers or min(len(links), 16)
    target = make_target(dest, s3_endpoint, pool_size=max(10, workers * 2))
    if isinstance(target, S3Target):
        if part_size < S3_MIN_PART:
            raise InputError(f"part size {part_size} is below S3's minimum of 5 MiB")
        target.check_bucket()
    lock = threading.Lock()
    bar = progress_bar(
        total=sum(lk.size or 0 for lk in links) or None,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc="transfer",
        disable=not progress,
        mininterval=0.5,
    )
    known = {lk.name for lk in links if lk.size is not None}

    def on_size_for(name: str) -> Callable[[int], None]:
        def on_size(size: int) -> None:
            with lock:
                if name not in known:
                    known.add(name)
                    bar.total = (bar.total or 0) + size
                    bar.refresh()

        return on_size

    def run(link: Link) -> TransferResult:
        return transfer_link(
            link,
            target,
            part_size=part_size,
            retry=retry,
            timeout=(min(10.0, timeout), timeout),
            on_bytes=bar.update,
            on_size=on_size_for(link.name),
        )

    results: list[TransferResult] = []
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="url2s3") as pool:
            futures = {pool.submit(run, lk): lk for lk in links}
            for fut in as_completed(futures):
                res = fut.result()
                results.append(res)
                if res.status == "failed":
                    bar.write(f"FAILED {res.name}: {res.error}")
    finally:
        bar.close()
    order = {lk.name: i for i, lk in enumerate(links)}
    return sorted(results, key=lambda r: order[r.name])


def summarize(results: list[TransferResult], dest: str) -> dict[str, Any]:
    """The JSON summary of a run: links per status, expired links, bytes uploaded, every result."""
    return {
        "destination": dest,
        "links": len(results),
        "uploaded": sum(r.status == "uploaded" for r in results),
        "skipped": sum(r.status == "skipped" for r in results),
        "failed": sum(r.status == "failed" for r in results),
        "expired": [r.name for r in results if r.expired],
        "bytes": sum(r.bytes for r in results if r.status == "uploaded"),
        "results": [asdict(r) for r in results],
    }


def raise_for_failures(results: list[TransferResult]) -> None:
    """`RemoteError` naming every failed link (expired ones first)."""
    failed = [r for r in results if r.status == "failed"]
    if not failed:
        return
    failed.sort(key=lambda r: not r.expired)
    lines = [f"{len(failed)} of {len(results)} link(s) failed:"]
    lines += [f"  {r.name}: {r.error}" for r in failed]
    raise RemoteError("\n".join(lines))
