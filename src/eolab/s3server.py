"""A local S3 server (moto's ``moto_server``) on 127.0.0.1, for the demo and the tests.

The workflow starts one when no S3 endpoint is configured, so the demo exercises S3 for real,
over HTTP, without any cloud account.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from eolab.errors import EolabError

# moto accepts any credentials; these names make it obvious they are not real ones.
LOCAL_KEY_ID = "eolab-local"
LOCAL_SECRET = "eolab-local-secret"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def moto_server_command() -> list[str]:
    """The command that runs moto_server with this interpreter's environment."""
    exe = Path(sys.executable).with_name("moto_server")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("moto_server")
    if found:
        return [found]
    return [sys.executable, "-m", "moto.server"]


@dataclass
class LocalS3Server:
    """Start/stop ``moto_server`` on a free loopback port; use as a context manager."""

    host: str = "127.0.0.1"
    port: int = 0
    log_path: Path | None = None
    startup_timeout: float = 30.0
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalS3Server:
        if not self.port:
            self.port = free_port(self.host)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        env = dict(os.environ, AWS_ACCESS_KEY_ID=LOCAL_KEY_ID, AWS_SECRET_ACCESS_KEY=LOCAL_SECRET)
        self.process = subprocess.Popen(
            [*moto_server_command(), "-H", self.host, "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EolabError(f"moto_server exited at start (code {self.process.returncode})")
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise EolabError(
            f"moto_server did not answer on {self.endpoint_url} in {self.startup_timeout} s"
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def reset(self) -> None:
        """Empty every bucket."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client("s3", **kwargs)`` against this server."""
        return {
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": LOCAL_KEY_ID,
            "aws_secret_access_key": LOCAL_SECRET,
            "region_name": "us-east-1",
        }

    def __enter__(self) -> LocalS3Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
