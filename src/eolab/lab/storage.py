"""The three storages the lab compares: a network drive, node-local temp (NVMe), S3.

``network`` is a directory (on Puhti: /scratch). ``temp`` is node-local: ``$LOCAL_SCRATCH``, else
``$TMPDIR``, else a configured directory (see :mod:`eolab.core.scratch`). ``s3`` is an endpoint, a
bucket and a key prefix; credentials come only from the standard AWS environment
(``AWS_ACCESS_KEY_ID`` …) or a named profile, never from the workflow config, and are never
printed or written.

When no S3 endpoint is configured (config, ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``, or the
profile's ``endpoint_url``), :func:`eolab.core.s3.s3_access` starts a local ``moto_server``
around the work and stops it afterwards. Each job that touches S3 does this for itself: a job
never depends on a server started by another job, so the design holds under the Slurm executor
(jobs on other nodes, no shared loopback) and on reruns (no stale endpoint). The price is that a
job reading S3 from a local server uploads what it reads first (see
:func:`eolab.lab.staging.ensure_uploaded`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eolab.core.errors import ConfigError
from eolab.core.s3 import S3Config

STORAGES = ("network", "temp", "s3")


def temp_root(
    configured: str | os.PathLike | None, environ: Mapping[str, str] | None = None
) -> Path:
    """The node-local temp folder: ``$LOCAL_SCRATCH``, else ``$TMPDIR``, else ``configured``."""
    from eolab.core.scratch import node_local_dir

    return Path(node_local_dir(configured, environ))


@dataclass(frozen=True)
class Storages:
    """The configured storages, resolved for this process (temp depends on the job's node)."""

    network: Path
    temp: Path
    s3: S3Config

    @classmethod
    def from_config(
        cls, cfg: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> Storages:
        """From the workflow's ``storage`` config section."""
        network = cfg.get("network")
        if not network:
            raise ConfigError("storage.network: a directory is required")
        return cls(
            network=Path(network),
            temp=temp_root(cfg.get("temp"), environ),
            s3=S3Config.from_config(cfg.get("s3") or {}, environ),
        )


def storage_devices(
    storages: Sequence[str],
    network: str | os.PathLike | None,
    temp: str | os.PathLike | None,
    s3_config: S3Config | None,
) -> dict[str, str]:
    """What is behind each storage, for the charts' captions and legends: the mount (device,
    filesystem, mount point) holding the network and temp paths, the S3 endpoint."""
    from eolab.core.disk import mount_of

    out: dict[str, str] = {}
    for storage in storages:
        path = temp if storage.endswith("temp") else network if storage == "network" else None
        if path is not None:
            out[storage] = mount_of(path) or str(path)
        elif storage == "s3" and s3_config is not None:
            out[storage] = (
                "local moto server on 127.0.0.1"
                if s3_config.local
                else f"endpoint {s3_config.endpoint_url or 'AWS'}"
            )
    return out
