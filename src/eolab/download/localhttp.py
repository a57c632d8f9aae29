"""Local HTTP servers on 127.0.0.1 for tests, benchmarks and offline demos.

`LocalHTTPServer` is a small threaded HTTP/1.1 server (keep-alive, ``Range``, ``HEAD``) that can
inject faults on demand: an error status (429 with ``Retry-After``, 5xx, 403), a connection cut
after N bytes, or corrupted bytes. It also serves generated bodies of any size without storing
them (``/_gen/<size>/<seed>/<name>``) and logs every request so tests can assert on ranges.
`NginxServer` runs Debian's nginx on a generated config for a production-grade happy path.

Run ``python -m eolab.download.localhttp ROOT`` to serve a folder from a separate process (the
benchmark does, so the server does not share the client's GIL).
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from eolab.errors import EolabError
from eolab.s3server import free_port

GEN_BLOCK = 1 << 20
_INVERT = bytes(255 - b for b in range(256))


def generated_block(seed: int, index: int) -> bytes:
    """Block ``index`` (1 MiB) of the deterministic body with ``seed``: fast and seekable."""
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return (digest * (GEN_BLOCK // len(digest)))[:GEN_BLOCK]


def generated_body(size: int, seed: int, start: int = 0) -> Iterator[bytes]:
    """Bytes ``start..size`` of the generated body, in blocks."""
    pos = start
    while pos < size:
        index, offset = divmod(pos, GEN_BLOCK)
        block = generated_block(seed, index)[offset : min(GEN_BLOCK, offset + size - pos)]
        yield block
        pos += len(block)


def generated_sha256(size: int, seed: int) -> str:
    h = hashlib.sha256()
    for block in generated_body(size, seed):
        h.update(block)
    return h.hexdigest()


@dataclass
class Fault:
    """One injected fault. ``kind``: ``status`` (answer ``status`` with ``headers`` and
    ``body``), ``cut`` (close the connection after ``after`` body bytes), ``corrupt`` (flip every
    byte), ``stall`` (send the headers, then wait ``delay`` seconds before the body). ``times`` =
    how many requests it applies to (None = all)."""

    kind: str
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    after: int = 0
    times: int | None = 1
    body: bytes | None = None
    delay: float = 0.0


@dataclass
class RequestRecord:
    method: str
    path: str
    range: str | None
    status: int


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format, *args) -> None:  # noqa: A002 - silence the default log
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _record(self, status: int) -> None:
        self.server.owner._log(
            RequestRecord(self.command, self.path, self.headers.get("Range"), status)
        )

    def _resolve(self) -> tuple[int, Iterator[bytes] | Path | None, str]:
        """(size, source, etag) of the requested path, or size -1 when not found."""
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path.startswith("/_gen/"):
            parts = path.split("/")
            try:
                size, seed = int(parts[2]), int(parts[3])
            except (IndexError, ValueError):
                return -1, None, ""
            return size, None, f'"gen-{size}-{seed}"'
        root = self.server.owner.root
        target = (root / path.lstrip("/")).resolve()
        if root not in target.parents or not target.is_file():
            return -1, None, ""
        st = target.stat()
        return st.st_size, target, f'"{st.st_size:x}-{st.st_mtime_ns:x}"'

    def _serve(self, head: bool) -> None:
        owner = self.server.owner
        fault = owner._take_fault(urllib.parse.urlsplit(self.path).path, body=not head)
        if fault is not None and fault.kind == "status":
            body = fault.body if fault.body is not None else f"injected {fault.status}\n".encode()
            self._record(fault.status)  # logged before answering: a client may act at once
            self.send_response(fault.status)
            for k, v in fault.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return
        size, source, etag = self._resolve()
        if size < 0:
            self._record(404)
            self.send_error(404)
            return
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and "," not in rng:
            a, _, b = rng[6:].partition("-")
            try:
                if a:
                    start = int(a)
                    end = min(int(b), size - 1) if b else size - 1
                else:
                    start, end = max(0, size - int(b)), size - 1
            except ValueError:
                start, end = 0, size - 1
            if start >= size or start > end:
                self._record(416)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        length = end - start + 1 if size else 0
        self._record(status)
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", owner.last_modified)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        md5 = owner.content_md5.get(urllib.parse.urlsplit(self.path).path)
        if md5 and status == 200:
            self.send_header("Content-MD5", md5)
        self.end_headers()
        if head or not length:
            return
        if fault is not None and fault.kind == "stall":
            time.sleep(fault.delay)
        limit = fault.after if fault is not None and fault.kind == "cut" else None
        sent = 0
        for chunk in self._chunks(source, size, start, end):
            if fault is not None and fault.kind == "corrupt":
                chunk = chunk.translate(_INVERT)
            if limit is not None and sent + len(chunk) >= limit:
                self.wfile.write(chunk[: limit - sent])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(chunk)
            sent += len(chunk)

    def _chunks(self, source, size: int, start: int, end: int) -> Iterator[bytes]:
        if source is None:  # generated body
            seed = int(urllib.parse.urlsplit(self.path).path.split("/")[3])
            yield from generated_body(end + 1, seed, start)
            return
        with open(source, "rb") as fh:
            fh.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = fh.read(min(left, 1 << 20))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    owner: LocalHTTPServer


class LocalHTTPServer:
    """A threaded HTTP server on 127.0.0.1 serving ``root``, with fault injection."""

    def __init__(self, root: str | os.PathLike, host: str = "127.0.0.1", port: int = 0):
        self.root = Path(root).resolve()
        self.host = host
        self.port = port
        self.requests: list[RequestRecord] = []
        self.content_md5: dict[str, str] = {}
        self.last_modified = email.utils.formatdate(time.time(), usegmt=True)
        self._faults: dict[str, list[Fault]] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalHTTPServer:
        self._server = _Server((self.host, self.port), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def add_fault(self, path: str, fault: Fault) -> None:
        """Queue ``fault`` for requests to ``path`` (URL path, e.g. ``/a/b.tif``)."""
        with self._lock:
            self._faults.setdefault(path, []).append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.requests.clear()

    def requests_for(self, path: str) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests if urllib.parse.urlsplit(r.path).path == path]

    def _take_fault(self, path: str, body: bool) -> Fault | None:
        """The next fault for ``path``; faults on the body (cut, corrupt) wait for a GET."""
        with self._lock:
            queue = self._faults.get(path)
            if not queue or (queue[0].kind != "status" and not body):
                return None
            fault = queue[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    queue.pop(0)
            return fault

    def _log(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)


def nginx_available() -> str | None:
    """The nginx executable, or None."""
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
    )


class NginxServer:
    """Debian's nginx serving ``root`` on 127.0.0.1 from a generated config (foreground).

    The access log records the ``Range`` header of every request (``access_log`` lines are
    ``<status> <range or -> <uri>``).
    """

    def __init__(self, root: str | os.PathLike, port: int = 0, workers: int = 1):
        self.root = Path(root).resolve()
        self.port = port or free_port()
        self.workers = workers
        self.prefix = Path(tempfile.mkdtemp(prefix="eolab-nginx-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    def config(self) -> str:
        user = "user root;" if os.geteuid() == 0 else ""
        p = self.prefix
        return f"""
{user}
worker_processes {self.workers};
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    types {{ application/json json; application/geo+json geojson; text/csv csv; }}
    default_type application/octet-stream;
    log_format ranges '$status $http_range $uri';
    access_log {p}/access.log ranges;
    client_body_temp_path {p}/body; proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi; uwsgi_temp_path {p}/uwsgi; scgi_temp_path {p}/scgi;
    sendfile on; tcp_nodelay on; keepalive_requests 1000000; keepalive_timeout 60;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.root};
        location / {{ }}
    }}
}}
"""

    def start(self, timeout: float = 10.0) -> NginxServer:
        exe = nginx_available()
        if exe is None:
            raise EolabError("nginx is not installed (Debian: apt-get install -y nginx-light)")
        conf = self.prefix / "nginx.conf"
        conf.write_text(self.config())
        self.process = subprocess.Popen(
            [exe, "-p", str(self.prefix), "-c", str(conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=open(self.prefix / "stderr.log", "wb"),  # noqa: SIM115
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = (self.prefix / "stderr.log").read_text(errors="replace")
                raise EolabError(f"nginx exited at start: {err.strip()[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise EolabError(f"nginx did not listen on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self) -> NginxServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve a folder until SIGTERM; prints ``port N`` once listening."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = LocalHTTPServer(args.root, port=args.port).start()
    print(f"port {server.port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
