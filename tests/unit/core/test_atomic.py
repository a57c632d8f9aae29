import json
import os

import pytest

from eolab.core import atomic


def test_write_json_replaces_atomically_and_leaves_no_temp(tmp_path):
    dest = tmp_path / "sub" / "out.json"
    atomic.write_json(dest, {"b": 1, "a": [1, 2]})
    atomic.write_json(dest, {"c": 3})
    assert json.loads(dest.read_text()) == {"c": 3}
    assert os.listdir(dest.parent) == ["out.json"]


def test_failed_write_keeps_old_content(tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_open(dest) as fh:
        fh.write("half-written")
        raise RuntimeError("crash")
    assert dest.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_path_directory_replaces_whole(tmp_path):
    dest = tmp_path / "store"
    dest.mkdir()
    (dest / "stale").write_text("x")
    with atomic.atomic_path(dest) as tmp:
        tmp.mkdir()
        (tmp / "fresh").write_text("y")
    assert sorted(p.name for p in dest.iterdir()) == ["fresh"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
