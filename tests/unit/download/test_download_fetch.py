"""Pure parts of the fetcher: backoff, headers, bounded submission, proxies, verification."""

import email.utils
import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import urllib3

from eolab.core.hashing import MultiHasher
from eolab.download.fetch import (
    Fetcher,
    bounded_map,
    expected_checksum,
    parse_content_range,
    parse_retry_after,
    verify,
)


def test_retry_after_and_content_range_headers():
    assert parse_retry_after("120") == 120
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= parse_retry_after(later) <= 31
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert parse_content_range("bytes 100-199/1000") == (100, 1000)
    assert parse_content_range("bytes */1000") == (None, 1000)
    assert parse_content_range("bytes 0-9/*") == (0, None)
    assert parse_content_range(None) == (None, None)


def test_bounded_map_keeps_at_most_window_in_flight():
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def work(i):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.002)
        with lock:
            state["now"] -= 1
        return i * 2

    with ThreadPoolExecutor(8) as pool:
        results = {item: fut.result() for item, fut in bounded_map(pool, work, range(100), 5)}
    assert results == {i: 2 * i for i in range(100)}
    assert state["max"] <= 5


def test_proxies_from_the_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    fetcher = Fetcher()
    assert isinstance(fetcher._pool("https://data.example/x"), urllib3.ProxyManager)
    direct = fetcher._pool("https://internal.example/x")
    assert not isinstance(direct, urllib3.ProxyManager)
    assert fetcher._pool("https://other.example/y") is fetcher._pool("https://data.example/x")


def test_verify_prefers_the_catalog_checksum_then_headers(tmp_path):
    data = b"x" * 1000
    hasher = MultiHasher({"sha256", "md5"})
    hasher.update(data)
    info = {"bytes": 1000, "total": 1000, "content_md5": None, "etag": None}
    good = expected_checksum("1220" + hashlib.sha256(data).hexdigest())
    bad = expected_checksum("1220" + hashlib.sha256(b"y").hexdigest())
    part = tmp_path / "p"
    assert verify(part, hasher, 1000, info, good) == (None, "file:checksum")
    problem, _ = verify(part, hasher, 1000, info, bad)
    assert problem.startswith("checksum mismatch: expected file:checksum sha256")
    assert verify(part, hasher, 999, info, None)[0].startswith("size mismatch")
    import base64

    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    assert verify(part, hasher, None, {**info, "content_md5": md5}, None) == (None, "Content-MD5")
    wrong_md5 = base64.b64encode(hashlib.md5(b"z").digest()).decode()
    assert verify(part, hasher, None, {**info, "content_md5": wrong_md5}, None)[0]
    assert verify(part, hasher, None, {**info, "total": None}, None) == (None, "none")
    assert expected_checksum("9999") is None  # unsupported: size-only, not a failure
