"""Signed links never reach a message or a log with their credentials."""

import pytest

from eolab.core.redact import redact_text, redact_url


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://h/p/f.tar?X-Amz-Signature=secret&X-Amz-Expires=60", "https://h/p/f.tar?…"),
        ("https://user:pw@h:8443/p?sig=abc#frag", "https://h:8443/p?…"),
        ("s3://bucket/key/a.tif", "s3://bucket/key/a.tif"),
        ("http://h/p", "http://h/p"),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_redact_text_finds_urls_and_paths_with_queries_inside_messages():
    text = (
        "HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: "
        "/f.bin?X-Amz-Signature=SECRET&X-Amz-Credential=AKIA (Caused by NewConnectionError("
        "'https://u:pw@example.org/a?sig=SECRET2 refused'))"
    )
    out = redact_text(text)
    assert "SECRET" not in out and "AKIA" not in out and "pw@" not in out
    assert "url: /f.bin?… (Caused by" in out
    assert "https://example.org/a?… refused" in out


def test_redact_text_leaves_plain_messages_alone():
    text = "mnt/out: read-only file system (choose a writable folder)? no query here"
    assert redact_text(text) == text


def test_redact_logs_rewrites_every_record(caplog):
    import logging

    from eolab.core.redact import redact_logs

    before = logging.getLogRecordFactory()
    try:
        redact_logs()
        redact_logs()  # idempotent: one wrapper only
        with caplog.at_level(logging.INFO, logger="eolab.test"):
            logging.getLogger("eolab.test").info("GET %s: 503", "https://h/x?sig=SECRET")
        assert caplog.messages == ["GET https://h/x?…: 503"]
    finally:
        logging.setLogRecordFactory(before)
