"""Keep credentials out of messages and logs: signed links carry them in the query string.

A pre-signed S3/Azure/GCS link (``?X-Amz-Signature=…``, ``?sig=…``) is a password until it
expires, so every URL eolab prints goes through `redact_url`, and every message that may quote
one (a library's exception text, a log line) through `redact_text`.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from typing import Any

HIDDEN = "…"
# a query string: "?" then key=value pairs, up to a space, quote or bracket (also matches the
# path-only form "url: /f.bin?X-Amz-Signature=…" that urllib3 puts in its messages); a
# trailing ":", ",", "." or ";" belongs to the sentence, not to the query
_QUERY = re.compile(r"\?[^\s'\"()<>\[\]]*?=[^\s'\"()<>\[\]]*?(?=[:,.;]?(?:[\s'\"()<>\[\]]|$))")
# user:password@ in a URL
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@'\"]+@")


def redact_url(url: str) -> str:
    """``url`` without its query string, fragment and user:password (``?…`` marks the cut)."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = HIDDEN if parts.query else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_text(text: str) -> str:
    """``text`` with the query string and user:password of every URL in it replaced by ``…``."""
    text = _USERINFO.sub(r"\g<scheme>", text)
    return _QUERY.sub("?" + HIDDEN, text)


def redact_logs() -> None:
    """Redact every log record from now on (the CLI calls this once, before any command)."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        record.msg, record.args = redact_text(record.getMessage()), None
        return record

    factory.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
