"""S3 access to the CDSE ``eodata`` bucket: client, request pacing, errors, resumable file GETs.

Retries come in two layers: botocore's ``standard`` mode retries each request (throttling such as
``SlowDown``, 5xx, connection errors and timeouts, with exponential backoff), and `fetch_object`
adds its own loop for what botocore cannot retry: a body cut short mid-stream (resumed with a
``Range`` request), bare 429 answers, and a download whose size or checksum is wrong (fetched
again from scratch). Credentials come from the AWS environment or a named profile and are never
printed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from eolab.core import s3 as core_s3
from eolab.core.atomic import atomic_path
from eolab.core.errors import ConfigError, RemoteError
from eolab.core.hashing import Checksum
from eolab.core.retry import RetryPolicy, backoff_delay, retry_call

log = logging.getLogger(__name__)

ENDPOINT_URL = "https://eodata.dataspace.copernicus.eu"
BUCKET = "eodata"
REGION = "default"
#: CDSE quotas: 4 concurrent connections, 2000 requests per minute.
WORKERS = 4
REQUESTS_PER_MINUTE = 2000
RETRIES = 5
CHUNK = 1 << 20

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
RETRYABLE_CODES = frozenset({"SlowDown", "Throttling", "TooManyRequests", "RequestTimeout",
                             "InternalError", "ServiceUnavailable"})  # fmt: skip
DENIED_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                          "InvalidToken", "ExpiredToken", "AccountProblem"})  # fmt: skip


class AccessDenied(RemoteError):
    """S3 refused the credentials (HTTP 401/403): fatal for the whole run."""


class EndpointUnreachable(RemoteError):
    """The S3 endpoint cannot be reached: fatal for the whole run."""


class TransferError(RemoteError):
    """One object could not be fetched intact after every retry (the product stays unverified)."""


class _Retry(Exception):
    """An attempt failed in a way worth another try."""


class RequestPacer:
    """Spaces request starts evenly to stay under a requests-per-minute quota (thread-safe).

    Time is kept in integer nanoseconds: float sums of ``monotonic()`` lose the last digit on a
    machine whose clock is in some ranges, which would book two starts closer than the interval.
    """

    def __init__(self, per_minute: float):
        self.interval_ns = round(60e9 / per_minute)
        self._next_ns = 0
        self._lock = threading.Lock()

    def __call__(self, **_kwargs) -> None:
        with self._lock:
            now = time.monotonic_ns()
            start = max(now, self._next_ns)
            self._next_ns = start + self.interval_ns
        if start > now:
            time.sleep((start - now) / 1e9)


def make_client(
    endpoint_url: str = ENDPOINT_URL,
    *,
    region: str = REGION,
    profile: str | None = None,
    workers: int = WORKERS,
    retries: int = RETRIES,
    requests_per_minute: float | None = REQUESTS_PER_MINUTE,
):
    """A boto3 S3 client for the endpoint (path-style, a pool of ``workers``, ``retries``
    botocore retries); credentials from the environment or ``profile``, checked up front."""
    boto = core_s3.session(profile)
    if boto.get_credentials() is None:
        where = f"profile {profile!r}" if profile else "the environment"
        raise ConfigError(
            f"no S3 credentials in {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(CDSE S3 keys) or pass --profile NAME"
        )
    # CDSE's object store does not send the CRC checksums newer botocore asks for: core_s3
    # asks for checksums only where S3 requires them.
    client = core_s3.make_client(
        endpoint_url, region=region, boto_session=boto, pool_size=workers, retries=retries
    )
    if requests_per_minute:
        client.meta.events.register("before-send.s3", RequestPacer(requests_per_minute))
    return client


def _endpoint(client) -> str:
    return client.meta.endpoint_url


def classify(exc: Exception, client, what: str) -> Exception:
    """Turn a botocore error into AccessDenied, EndpointUnreachable, _Retry or TransferError."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status in (401, 403) or code in DENIED_CODES:
            return AccessDenied(
                f"S3 access denied by {_endpoint(client)} (HTTP {status} {code}) on {what}: "
                "check the CDSE S3 credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
                "--profile)"
            )
        if status in RETRYABLE_STATUS or code in RETRYABLE_CODES:
            return _Retry(f"HTTP {status} {code}")
        return TransferError(f"{what}: S3 error HTTP {status} {code}")
    if isinstance(exc, NoCredentialsError):
        return ConfigError("no S3 credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return EndpointUnreachable(f"S3 endpoint {_endpoint(client)} is unreachable ({what})")
    return _Retry(f"{type(exc).__name__}: {exc}")


def _stream_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import (
        ConnectionClosedError,
        IncompleteReadError,
        ReadTimeoutError,
        ResponseStreamingError,
    )
    from urllib3.exceptions import HTTPError as Urllib3Error

    return (
        IncompleteReadError,
        ReadTimeoutError,
        ResponseStreamingError,
        ConnectionClosedError,
        Urllib3Error,
        ConnectionError,
        TimeoutError,
    )


def _call_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def check_access(client, bucket: str, prefix: str = "Sentinel-2/") -> None:
    """One small listing: raises AccessDenied or EndpointUnreachable before any real work."""
    try:
        client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except _call_errors() as exc:
        err = classify(exc, client, f"listing s3://{bucket}/{prefix}")
        if not isinstance(err, _Retry):
            raise err from exc
        log.warning("s3://%s/%s: %s at the access check; going on", bucket, prefix, err)


def list_prefix(client, bucket: str, prefix: str, retries: int = RETRIES) -> dict[str, int]:
    """Every object under ``prefix`` as {key relative to the prefix: size}; folder markers
    (keys ending in ``/``) are skipped."""
    what = f"s3://{bucket}/{prefix}"

    def once() -> dict[str, int]:
        out = {}
        try:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    rel = obj["Key"][len(prefix) :]
                    if rel and not rel.endswith("/"):
                        out[rel] = int(obj["Size"])
        except _call_errors() as exc:
            raise classify(exc, client, f"listing {what}") from exc
        return out

    return retry_call(once, RetryPolicy(attempts=retries + 1), _Retry, _gave_up(what, retries))


def fetch_object(
    client,
    bucket: str,
    key: str,
    dest: Path,
    size: int,
    checksum: Checksum | None,
    *,
    retries: int = RETRIES,
    on_bytes: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Download ``key`` to ``dest`` atomically and verify size and checksum; returns the size.
    Partial bodies are resumed with ``Range``; a wrong size or checksum is fetched again from
    scratch; both up to ``retries`` times, with backoff."""
    what = f"s3://{bucket}/{key}"
    on_bytes = on_bytes or (lambda n: None)
    return retry_call(
        lambda: _fetch_once(client, bucket, key, dest, size, checksum, retries, on_bytes),
        RetryPolicy(attempts=retries + 1),
        _Retry,
        _gave_up(what, retries),
        sleep=sleep,
        on_retry=lambda exc, n: log.info("%s: %s; retry %d/%d", what, exc, n, retries),
    )


def _gave_up(what: str, retries: int) -> Callable[[BaseException, int], TransferError]:
    return lambda exc, _attempts: TransferError(f"{what}: {exc} (gave up after {retries} retries)")


class _Counter:
    """Bytes written in one attempt, reported to the progress callback (and taken back on
    failure, so the byte bar shows verified data, not traffic)."""

    def __init__(self, on_bytes: Callable[[int], None]):
        self.on_bytes = on_bytes
        self.n = 0

    def add(self, n: int) -> None:
        self.n += n
        self.on_bytes(n)

    def rewind(self) -> None:
        self.on_bytes(-self.n)
        self.n = 0


def _fetch_once(client, bucket, key, dest, size, checksum, retries, on_bytes) -> int:
    """One attempt at a whole object: GET (resumed with Range after a cut), write, verify."""
    counter = _Counter(on_bytes)
    hasher = hashlib.new(checksum.algorithm) if checksum else None
    cuts = 0
    try:
        with atomic_path(dest) as tmp, open(tmp, "wb") as fh:
            while True:
                body = _get(client, bucket, key, counter.n)
                if counter.n and body.get("status") != 206:  # Range ignored: start over
                    fh.seek(0)
                    fh.truncate()
                    hasher = hashlib.new(checksum.algorithm) if checksum else None
                    counter.rewind()
                try:
                    for chunk in body["stream"].iter_chunks(CHUNK):
                        fh.write(chunk)
                        if hasher:
                            hasher.update(chunk)
                        counter.add(len(chunk))
                    break
                except BaseException as exc:
                    body["stream"].close()  # drop the broken or half-read connection
                    if not isinstance(exc, _stream_errors()):
                        raise
                    cuts += 1
                    if cuts > retries:
                        raise _Retry(f"body cut {cuts} times ({type(exc).__name__})") from exc
                    log.info("s3://%s/%s: body cut at %d bytes; resuming", bucket, key, counter.n)
                    time.sleep(backoff_delay(cuts))
            if counter.n != size:
                raise _Retry(f"got {counter.n} bytes, expected {size}")
            if hasher and hasher.digest() != checksum.digest:
                raise _Retry(f"{checksum.source} {checksum.algorithm} mismatch")
            fh.flush()
    except BaseException:
        counter.rewind()
        raise
    return counter.n


def _get(client, bucket: str, key: str, offset: int) -> dict:
    """GET an object (from ``offset`` on); errors classified (fatal ones raised as such)."""
    kwargs = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        resp = client.get_object(Bucket=bucket, Key=key, **kwargs)
    except _call_errors() as exc:
        raise classify(exc, client, f"s3://{bucket}/{key}") from exc
    return {"stream": resp["Body"], "status": resp["ResponseMetadata"]["HTTPStatusCode"]}
