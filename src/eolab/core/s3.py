"""S3 for all of eolab: one boto3 client builder, endpoint/credential resolution, and the GDAL
``/vsis3/`` and s3fs settings for the same endpoint.

`make_client` is the only place a boto3 S3 client is configured: connection pool, botocore
``standard`` retries, timeouts, addressing style and checksum policy. Checksums are only sent or
validated when S3 requires them: botocore >= 1.36 adds CRC32 by default, which some
S3-compatible stores (CDSE, older Ceph RGW such as CSC Allas) reject or do not send.

`S3Config` says where data goes (bucket, prefix, endpoint, profile, region); `S3Access` is a live
endpoint with resolved credentials, handing boto3, s3fs and GDAL the same settings. Credentials
come only from the standard AWS environment (``AWS_ACCESS_KEY_ID`` …) or a named profile, are
held privately and never printed or written. When no endpoint is configured, `s3_access` starts a
local ``moto_server`` around the work (see `eolab.lab.storage`).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from eolab.core.errors import ConfigError, RemoteError

ENDPOINT_ENV_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
#: botocore retries (after the first attempt) of the lab's and the chipper's clients.
LAB_RETRIES = 5


def session(profile: str | None = None, region: str | None = None) -> Any:
    """A boto3 session: credentials from the AWS environment, or the named ``profile``."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(profile_name=profile or None, region_name=region)
    except ProfileNotFound as exc:
        raise ConfigError(f"AWS profile {profile!r} not found in the AWS config files") from exc


def client_config(
    *,
    pool_size: int = 32,
    retries: int = LAB_RETRIES,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    path_style: bool = True,
    unsigned: bool = False,
) -> Any:
    """botocore Config: a pool of ``pool_size`` connections, ``standard`` mode with ``retries``
    retries after the first attempt, checksums only where required; ``path_style`` addressing
    (S3-compatible endpoints); ``unsigned`` reads public buckets without credentials."""
    from botocore import UNSIGNED
    from botocore.config import Config

    return Config(
        signature_version=UNSIGNED if unsigned else None,
        retries={"mode": "standard", "total_max_attempts": retries + 1},
        max_pool_connections=max(pool_size, 1),
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        s3={"addressing_style": "path"} if path_style else None,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def make_client(
    endpoint_url: str | None = None,
    *,
    region: str | None = None,
    profile: str | None = None,
    credentials: tuple[str | None, str | None, str | None] | None = None,
    boto_session: Any = None,
    pool_size: int = 32,
    retries: int = LAB_RETRIES,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    path_style: bool = True,
    unsigned: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> Any:
    """A thread-safe boto3 S3 client for ``endpoint_url`` (None: AWS).

    Credentials: ``credentials`` (key id, secret, token) if given, else ``boto_session``'s,
    else the AWS environment or ``profile``. ``extra`` goes to ``boto3.client`` as is.
    """
    kwargs: dict[str, Any] = dict(extra or {})
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if region:
        kwargs["region_name"] = region
    if credentials is not None:
        kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"] = credentials[:2]
        kwargs["aws_session_token"] = credentials[2]
    config = client_config(
        pool_size=pool_size,
        retries=retries,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        path_style=path_style,
        unsigned=unsigned,
    )
    boto = boto_session or session(profile)
    return boto.client("s3", config=config, **kwargs)


@dataclass(frozen=True)
class S3Config:
    """Where S3 data goes. ``endpoint_url`` None means: start a local server for the work."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    #: Apply the read-only public bucket policy (`public_read_policy`) when opening the bucket.
    public_read: bool = False

    @classmethod
    def from_config(
        cls, cfg: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> S3Config:
        """Resolve the endpoint from config, then the AWS environment, then the named profile."""
        environ = os.environ if environ is None else environ
        endpoint = cfg.get("endpoint_url") or next(
            (environ[v] for v in ENDPOINT_ENV_VARS if environ.get(v)), None
        )
        profile = cfg.get("profile") or None
        if endpoint is None and profile:
            endpoint = _profile_endpoint(profile)
        bucket = cfg.get("bucket") or ""
        if len(bucket) < 3:
            raise ConfigError(f"storage.s3.bucket: {bucket!r} is not a valid bucket name")
        return cls(
            bucket=bucket,
            prefix=(cfg.get("prefix") or "").strip("/"),
            endpoint_url=endpoint,
            profile=profile,
            region=cfg.get("region") or environ.get("AWS_DEFAULT_REGION") or None,
            public_read=bool(cfg.get("public_read")),
        )

    @property
    def local(self) -> bool:
        """True when the work runs against a local moto server started for it."""
        return self.endpoint_url is None

    def key(self, *parts: str) -> str:
        """An object key under the configured prefix."""
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p and p.strip("/"))

    def url(self, *parts: str) -> str:
        return f"s3://{self.bucket}/{self.key(*parts)}"


def _profile_endpoint(profile: str) -> str | None:
    """The ``endpoint_url`` a named AWS profile sets (e.g. CSC Allas: https://a3s.fi)."""
    import boto3
    import botocore.exceptions

    try:
        session = boto3.Session(profile_name=profile)
    except botocore.exceptions.ProfileNotFound as exc:
        raise ConfigError(f"storage.s3.profile: AWS profile {profile!r} not found") from exc
    return session._session.get_scoped_config().get("endpoint_url")  # noqa: SLF001


@dataclass(frozen=True)
class S3Access:
    """A live S3 endpoint with credentials; builds boto3, s3fs and GDAL clients for it.

    The credentials are held privately (``repr=False``) and only handed to client libraries.
    """

    config: S3Config
    endpoint_url: str
    region: str
    _key_id: str | None = field(default=None, repr=False)
    _secret: str | None = field(default=None, repr=False)
    _token: str | None = field(default=None, repr=False)

    @property
    def bucket(self) -> str:
        return self.config.bucket

    def client(self, max_connections: int = 32) -> Any:
        """A thread-safe boto3 S3 client (connection pool sized for concurrent ranged reads)."""
        return make_client(
            self.endpoint_url,
            region=self.region,
            credentials=(self._key_id, self._secret, self._token),
            pool_size=max_connections,
            retries=LAB_RETRIES,
            connect_timeout=60.0,
        )

    def storage_options(self) -> dict[str, Any]:
        """s3fs keyword arguments (for fsspec / zarr ``FsspecStore``)."""
        return {
            "key": self._key_id,
            "secret": self._secret,
            "token": self._token,
            "endpoint_url": self.endpoint_url,
            "client_kwargs": {"region_name": self.region},
            "config_kwargs": {"s3": {"addressing_style": "path"}},
        }

    def filesystem(self, asynchronous: bool = False) -> Any:
        import s3fs

        return s3fs.S3FileSystem(asynchronous=asynchronous, **self.storage_options())

    def gdal_env(self, **options: Any) -> Any:
        """A ``rasterio.Env`` reading ``/vsis3/`` from this endpoint (works against moto too)."""
        return gdal_s3_env(
            self.endpoint_url,
            key_id=self._key_id,
            secret=self._secret,
            token=self._token,
            region=self.region,
            **options,
        )

    def vsi_path(self, key: str) -> str:
        return f"/vsis3/{self.bucket}/{key}"


def gdal_s3_env(
    endpoint_url: str,
    *,
    key_id: str | None = None,
    secret: str | None = None,
    token: str | None = None,
    region: str | None = None,
    **options: Any,
) -> Any:
    """A ``rasterio.Env`` reading ``/vsis3/`` from ``endpoint_url`` (AWS, Allas, moto).

    ``rasterio.Env(AWS_...)`` alone raises; an ``AWSSession`` with the endpoint as ``host:port``
    plus ``AWS_HTTPS``/``AWS_VIRTUAL_HOSTING`` works. Outside the main thread rasterio sets the
    options thread-locally, and GDAL's own decoding threads (JP2OpenJPEG) would then read
    without the credentials and return wrong pixels silently (docs/lab.md): there GDAL always
    decodes on the calling thread.
    """
    import rasterio
    from rasterio.env import set_gdal_config
    from rasterio.session import AWSSession

    # GDAL reads this once per process, at its first network access: every /vsis3/ access of
    # eolab comes through here, so the bytes it downloads can always be counted
    # (eolab.lab.patchload.gdal_network_bytes).
    set_gdal_config("CPL_VSIL_NETWORK_STATS_ENABLED", "YES")
    parsed = urlparse(endpoint_url)
    session = AWSSession(
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        region_name=region,
        endpoint_url=parsed.netloc or parsed.path,
    )
    if threading.current_thread() is not threading.main_thread():
        options["GDAL_NUM_THREADS"] = "1"
    return rasterio.Env(
        session=session,
        AWS_HTTPS="YES" if parsed.scheme == "https" else "NO",
        AWS_VIRTUAL_HOSTING="FALSE",
        GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR",
        **options,
    )


def ensure_bucket(client: Any, bucket: str) -> None:
    """Create ``bucket`` unless it exists (no region constraint: moto and Allas accept that)."""
    import botocore.exceptions

    try:
        client.head_bucket(Bucket=bucket)
        return
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise RemoteError(f"s3://{bucket}: cannot access bucket ({code})") from exc
    try:
        client.create_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise RemoteError(f"s3://{bucket}: cannot create bucket ({code})") from exc


def public_read_policy(bucket: str) -> dict[str, Any]:
    """The bucket policy that lets anyone GET the objects of ``bucket``: ``s3:GetObject`` on
    ``arn:aws:s3:::<bucket>/*`` for every principal; no write and no listing."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EolabPublicRead",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }


def make_public_read(client: Any, bucket: str) -> None:
    """Set `public_read_policy` on ``bucket`` (replacing any bucket policy it had)."""
    import botocore.exceptions

    try:
        client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(public_read_policy(bucket)))
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        raise RemoteError(
            f"s3://{bucket}: cannot set the public-read bucket policy ({code}); "
            "hint: the credentials must own the bucket, or set storage.s3.public_read: false"
        ) from exc


def open_bucket(access: S3Access) -> None:
    """Create the configured bucket if missing; make it public-read if the config asks."""
    client = access.client()
    ensure_bucket(client, access.bucket)
    if access.config.public_read:
        make_public_read(client, access.bucket)


@contextlib.contextmanager
def s3_access(config: S3Config, log_path: str | os.PathLike | None = None) -> Iterator[S3Access]:
    """Yield an :class:`S3Access`; start (and finally stop) a local server if none is configured.

    The bucket is created if missing and made public-read if ``config.public_read``.
    """
    if config.local:
        from eolab.fixtures.s3server import LOCAL_KEY_ID, LOCAL_SECRET, LocalS3Server

        with LocalS3Server(log_path=Path(log_path) if log_path else None) as server:
            access = S3Access(config, server.endpoint_url, "us-east-1", LOCAL_KEY_ID, LOCAL_SECRET)
            open_bucket(access)
            yield access
        return
    access = _with_credentials(config)
    open_bucket(access)
    yield access


def endpoint_access(
    endpoint_url: str, profile: str | None = None, region: str | None = None
) -> S3Access:
    """An :class:`S3Access` to an endpoint for reading ``s3://bucket/key`` hrefs (no bucket of
    its own); credentials as boto3 finds them (AWS environment, then ``profile``)."""
    return _with_credentials(
        S3Config(bucket="", endpoint_url=endpoint_url, profile=profile, region=region)
    )


def _with_credentials(config: S3Config) -> S3Access:
    """An :class:`S3Access` to ``config``'s endpoint with the credentials boto3 resolves."""
    boto = session(config.profile, config.region)
    creds = boto.get_credentials()
    frozen = creds.get_frozen_credentials() if creds is not None else None
    return S3Access(
        config,
        config.endpoint_url or "",
        boto.region_name or "us-east-1",
        frozen.access_key if frozen else None,
        frozen.secret_key if frozen else None,
        frozen.token if frozen else None,
    )
