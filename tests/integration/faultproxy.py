"""A fault-injecting HTTP proxy on 127.0.0.1 in front of a real S3 server (moto_server).

moto cannot inject faults, so this small real server forwards every request to moto and, for
object requests whose path contains a chosen key, answers instead with real S3 error responses
(503 SlowDown, 500 InternalError, 429, 403 AccessDenied), cuts the body short, or flips a byte.
It logs every request, so tests can count what was transferred.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

ERRORS = {
    "503": (503, "SlowDown", "Please reduce your request rate."),
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "429": (429, "TooManyRequests", "Too many requests."),
    "403": (403, "AccessDenied", "Access Denied"),
}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    range: str | None
    status: int
    fault: str | None


def error_xml(code: str, message: str, resource: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<Resource>{resource}</Resource><RequestId>faultproxy</RequestId></Error>"
    ).encode()


class FaultProxy:
    """``with FaultProxy(upstream_url) as proxy``: ``proxy.url`` is the endpoint for boto3."""

    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.log: list[Logged] = []
        self._faults: dict[str, list[str]] = {}
        self._deny_after: int | None = None
        self._object_gets = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.connections = 0  # TCP connections accepted
        self.open_connections = 0
        self.max_open_connections = 0  # the most at one time (the CDSE quota is 4)

    # configuration ---------------------------------------------------------------------------
    def add_faults(self, key_part: str, *faults: str) -> None:
        """The next object requests whose path contains ``key_part`` get these faults in order:
        ``503``, ``500``, ``429``, ``403``, ``cut`` (half the body, then close), ``corrupt``."""
        with self._lock:
            self._faults.setdefault(key_part, []).extend(faults)

    def deny_after(self, n: int | None) -> None:
        """After ``n`` more object GETs, answer every request with 403 AccessDenied."""
        with self._lock:
            self._deny_after = None if n is None else self._object_gets + n

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._deny_after = None
            self.log.clear()

    def object_gets(self, status: int | None = 200) -> list[str]:
        """Object keys fetched (GET of a key, not a listing), optionally by status (200/206)."""
        return [
            e.path
            for e in self.log
            if e.method == "GET"
            and "?" not in e.path
            and e.path.count("/") > 1
            and (status is None or e.status in (200, 206))
        ]

    # fault choice ----------------------------------------------------------------------------
    def _fault_for(self, method: str, path: str) -> str | None:
        with self._lock:
            if self._deny_after is not None and self._object_gets >= self._deny_after:
                return "403"
            is_object = "?" not in path and path.count("/") > 1
            if method != "GET" or not is_object:
                return None
            key = unquote(path)
            for part, queue in self._faults.items():
                if part in key and queue:
                    return queue.pop(0)
            self._object_gets += 1
            return None

    # server ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy.connections += 1
                    proxy.open_connections += 1
                    proxy.max_open_connections = max(
                        proxy.max_open_connections, proxy.open_connections
                    )

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    with proxy._lock:
                        proxy.open_connections -= 1

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = proxy._fault_for(self.command, self.path)
                rng = self.headers.get("Range")
                if fault in ERRORS:
                    status, code, message = ERRORS[fault]
                    data = error_xml(code, message, urlsplit(self.path).path)
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    proxy.log.append(Logged(self.command, self.path, rng, status, fault))
                    return
                status, headers, data = proxy._forward(self.command, self.path, self.headers, body)
                if fault == "corrupt" and data:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    if fault == "cut":
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                    else:
                        self.wfile.write(data)
                proxy.log.append(Logged(self.command, self.path, rng, status, fault))

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def _forward(self, method, path, headers, body):
        conn = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            fwd = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
            conn.request(method, path, body=body, headers=fwd)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.getheaders(), data
        finally:
            conn.close()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
