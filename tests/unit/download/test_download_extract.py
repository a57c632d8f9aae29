"""Safe archive extraction: the real macOS-made archive, and malicious archives refused."""

import io
import tarfile
import zipfile

import pytest

from eolab.download.extract import UnsafeArchiveError, archive_stem, extract_archive, is_junk


def _tar(path, members):
    """Write a tar.gz from (TarInfo kwargs, data or None)."""
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for kwargs, data in members:
            info = tarfile.TarInfo(kwargs.pop("name"))
            for k, v in kwargs.items():
                setattr(info, k, v)
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def test_real_archive_skips_macos_junk(samples, tmp_path):
    archive = samples / "stac-dataset" / "su_sar_moisture_content.tar.gz"
    stats = extract_archive(archive, tmp_path / "out")
    names = [p.name for p in (tmp_path / "out").rglob("*")]
    assert "catalog.json" in names
    assert not [n for n in names if n.startswith("._") or n == ".DS_Store"]
    assert stats.skipped_junk == 4  # ._.DS_Store and .DS_Store, at two levels
    items = list((tmp_path / "out").rglob("su_sar_moisture_content_000*.json"))
    assert len(items) == 8
    with tarfile.open(archive) as tar:  # byte-identical to the archive's own copy
        member = next(m for m in tar if m.name.endswith("0001.json"))
        assert (
            tar.extractfile(member).read()
            == next(p for p in items if p.name.endswith("0001.json")).read_bytes()
        )


MALICIOUS = {
    "traversal": [({"name": "../evil.json"}, b"x")],
    "nested traversal": [({"name": "cat/../../evil.json"}, b"x")],
    "absolute": [({"name": "/tmp/evil.json"}, b"x")],
    "symlink escape": [
        ({"name": "cat/link", "type": tarfile.SYMTYPE, "linkname": "../../etc"}, None)
    ],
    "absolute symlink": [
        ({"name": "link", "type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, None)
    ],
    "hardlink escape": [({"name": "hard", "type": tarfile.LNKTYPE, "linkname": "../x"}, None)],
    "symlink chain": [
        ({"name": "l1", "type": tarfile.SYMTYPE, "linkname": "."}, None),
        ({"name": "l1/l2", "type": tarfile.SYMTYPE, "linkname": ".."}, None),
    ],
    "device": [({"name": "dev", "type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}, None)],
    "fifo": [({"name": "pipe", "type": tarfile.FIFOTYPE}, None)],
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_tar_is_refused_whole(tmp_path, case):
    members = [({"name": "cat/catalog.json"}, b"{}"), *MALICIOUS[case]]
    archive = _tar(tmp_path / "bad.tar.gz", [(dict(k), d) for k, d in members])
    with pytest.raises(UnsafeArchiveError) as err:
        extract_archive(archive, tmp_path / "dest" / "out")
    assert str(archive) in str(err.value)
    assert not (tmp_path / "dest" / "out").exists()  # nothing half-extracted
    assert not (tmp_path / "evil.json").exists()
    leftovers = [p for p in (tmp_path / "dest").iterdir()] if (tmp_path / "dest").exists() else []
    assert leftovers == []


def test_links_inside_the_folder_are_fine(tmp_path):
    archive = _tar(
        tmp_path / "ok.tar.gz",
        [
            ({"name": "cat/a.json"}, b"{}"),
            ({"name": "cat/b.json", "type": tarfile.SYMTYPE, "linkname": "a.json"}, None),
        ],
    )
    stats = extract_archive(archive, tmp_path / "out")
    assert (tmp_path / "out" / "cat" / "b.json").read_bytes() == b"{}"
    assert (stats.files, stats.links) == (1, 1)


def test_zip_traversal_and_symlink_refused(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("catalog.json", "{}")
        zf.writestr("../evil.json", "x")
    with pytest.raises(UnsafeArchiveError, match="climbs out"):
        extract_archive(bad, tmp_path / "out")
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="link or special"):
        extract_archive(link, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_names():
    assert archive_stem("su_sar.tar.gz") == "su_sar"
    assert archive_stem("x.ZIP") == "x"
    assert is_junk("a/._b.json") and is_junk("__MACOSX/a.json") and is_junk("x/.DS_Store")
    assert not is_junk("a/b.json")
