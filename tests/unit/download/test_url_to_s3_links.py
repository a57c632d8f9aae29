"""LINKS.json parsing and the small pure helpers of url_to_s3."""

import json

import pytest

from eolab.core.errors import InputError
from eolab.core.redact import redact_url as redact
from eolab.download.url_to_s3 import (
    MiB,
    check_name,
    is_identical,
    load_links,
    part_size_for,
)

SHA = "ab" * 32


def write(tmp_path, obj):
    path = tmp_path / "links.json"
    path.write_text(json.dumps(obj))
    return path


def test_list_and_mapping_forms(tmp_path):
    links = load_links(
        write(
            tmp_path,
            [
                {"url": "https://h/x/train.tar.gz?sig=abc"},
                {"url": "https://h/y", "name": "sub/test.tar", "sha256": SHA.upper(), "size": 10},
            ],
        )
    )
    assert [lk.name for lk in links] == ["train.tar.gz", "sub/test.tar"]
    assert links[1].sha256 == SHA and links[1].size == 10
    mapping = load_links(write(tmp_path, {"a.bin": "https://h/1", "b.bin": {"url": "http://h/2"}}))
    assert [(lk.name, lk.url) for lk in mapping] == [
        ("a.bin", "https://h/1"),
        ("b.bin", "http://h/2"),
    ]


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ([{"url": "https://h/a", "name": "../x"}], "without '..'"),
        ([{"url": "https://h/a", "name": "/abs"}], "without '..'"),
        ([{"url": "ftp://h/a"}], "not an http"),
        ([{"name": "x"}], "needs a 'url'"),
        ([{"url": "https://h/a", "sha256": "xyz"}], "64 hex"),
        ([{"url": "https://h/a", "size": -1}], "non-negative"),
        ([{"url": "https://h/a"}, {"url": "https://g/a"}], "duplicate link names: a"),
        ([], "no links"),
        ("https://h/a", "expected a list"),
    ],
)
def test_bad_links_are_refused(tmp_path, obj, reason):
    with pytest.raises(InputError, match=reason):
        load_links(write(tmp_path, obj))


def test_helpers():
    assert redact("https://h/p/f.tar?X-Amz-Signature=secret") == "https://h/p/f.tar?…"
    assert check_name(" a/b ") == "a/b"
    assert part_size_for(8_381_754_539, 16 * MiB) == 16 * MiB
    assert part_size_for(200 * 1024 * MiB, 16 * MiB) == 21 * MiB  # 10 000 parts at most
    assert part_size_for(None, 5 * MiB) == 5 * MiB
    from eolab.download.url_to_s3 import Link

    link = Link("a", "https://h/a")
    assert not is_identical((10, None), link, 10)  # no stored checksum: never trusted
    assert is_identical((10, SHA), link, 10) and not is_identical((10, SHA), link, 11)
    pinned = Link("a", "https://h/a", sha256=SHA)
    assert is_identical((10, SHA), pinned, None) and not is_identical((10, "cd" * 32), pinned, 10)
