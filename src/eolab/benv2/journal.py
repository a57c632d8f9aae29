"""Crash-safe conversion state: an append-only JSON-lines journal with group commits.

Order of events for a patch, which is what makes ``kill -9`` at any moment safe:

1. a worker writes the npz and json under temporary names, fsyncs and renames them (atomic);
2. the worker reads the npz back and verifies it against the source arrays;
3. the main process collects a batch, fsyncs the batch's output folders (the renames are now
   on disk), appends a ``verified`` record per patch and fsyncs the journal;
4. only then are the sources of the batch deleted, and ``deleted`` records appended.

A rerun trusts ``verified`` records (after checking the output's size and CRC-32), deletes the
sources still pending, and reconverts everything else; a torn last line (a kill during 3) is
dropped, which is safe because nothing acted on it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eolab.core.errors import ConfigError, InputError

VERSION = 1


@dataclass
class JournalState:
    """What earlier runs finished: verified outputs and deleted sources, by patch id."""

    verified: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)


class Journal:
    """Append-only JSON lines; the first line holds the options fingerprint of the outputs."""

    def __init__(self, path: Path, fingerprint: dict[str, Any]):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self._fh = None

    def load(self) -> JournalState:
        """Read the journal (creating it with its header), dropping a torn last line."""
        state = JournalState()
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open()
            self.append([{"kind": "header", "version": VERSION, "fingerprint": self.fingerprint}])
            self.sync()
            return state
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):  # a kill mid-append: drop the partial line
            cut = raw.rfind(b"\n") + 1
            with open(self.path, "r+b") as fh:
                fh.truncate(cut)
                os.fsync(fh.fileno())
            raw = raw[:cut]
        lines = raw.decode().splitlines()
        for n, line in enumerate(lines, 1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{self.path}: line {n} is not JSON ({exc})") from exc
            kind = rec.get("kind")
            if kind == "header":
                self._check_fingerprint(rec.get("fingerprint", {}))
            elif kind == "verified":
                state.verified[rec["id"]] = rec
                state.deleted.discard(rec["id"])
            elif kind == "deleted":
                state.deleted.add(rec["id"])
            elif kind == "invalid":
                state.verified.pop(rec["id"], None)
        if not lines:
            self._open()
            self.append([{"kind": "header", "version": VERSION, "fingerprint": self.fingerprint}])
        self._open()
        return state

    def _check_fingerprint(self, old: dict[str, Any]) -> None:
        diff = sorted(
            k for k in set(old) | set(self.fingerprint) if old.get(k) != self.fingerprint.get(k)
        )
        if diff:
            details = ", ".join(f"{k}: {old.get(k)!r} -> {self.fingerprint.get(k)!r}" for k in diff)
            raise ConfigError(
                f"{self.path.parent}: outputs there were made with other options ({details}); "
                "rerun with the same options or choose another --out_dir"
            )

    def _open(self) -> None:
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8")

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append records (buffered; call ``sync`` before acting on them)."""
        self._open()
        for rec in records:
            self._fh.write(json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        """Hand the records to the OS (survives a kill, not a power cut)."""
        if self._fh is not None:
            self._fh.flush()

    def sync(self) -> None:
        """Flush and fsync the journal."""
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self.sync()
            self._fh.close()
            self._fh = None
