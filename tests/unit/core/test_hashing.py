"""STAC file:checksum multihashes, Content-MD5 and S3 ETags."""

import base64
import hashlib

import pytest

from eolab.core.hashing import (
    ChecksumFormatError,
    MultiHasher,
    multihash_hex,
    parse_content_md5,
    parse_multihash,
    parse_s3_etag,
)

DATA = b"eolab checksum test\n" * 10


@pytest.mark.parametrize(
    ("prefix", "algorithm"),
    [("1220", "sha256"), ("1620", "sha3_256"), ("d50110", "md5")],
)
def test_multihash_decodes_each_algorithm(prefix, algorithm):
    digest = hashlib.new(algorithm, DATA).hexdigest()
    checksum = parse_multihash(prefix + digest)
    assert checksum.algorithm == algorithm
    assert checksum.hexdigest == digest


def test_wrong_length_byte_is_not_trusted():
    # real catalogs write d501 20 <16-byte md5>: the code decides the size, not the length byte
    md5 = hashlib.md5(DATA).hexdigest()
    assert parse_multihash("d50120" + md5).digest == bytes.fromhex(md5)
    sha = hashlib.sha256(DATA).hexdigest()
    assert parse_multihash("1210" + sha).hexdigest == sha


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("zz", "not hexadecimal"),
        ("9920" + "00" * 32, "unsupported multihash"),
        ("1220" + "00" * 31, "digest of 31 bytes"),
        ("", "truncated varint"),
    ],
)
def test_bad_multihashes_are_refused_with_the_reason(text, reason):
    with pytest.raises(ChecksumFormatError, match=reason):
        parse_multihash(text)


@pytest.mark.parametrize("algorithm", ["md5", "sha256", "sha3_256", "sha512"])
def test_multihash_round_trip(algorithm):
    digest = hashlib.new(algorithm, DATA).digest()
    assert parse_multihash(multihash_hex(algorithm, digest)).digest == digest


def test_content_md5_and_etag():
    md5 = hashlib.md5(DATA).digest()
    assert parse_content_md5(base64.b64encode(md5).decode()).digest == md5
    with pytest.raises(ChecksumFormatError):
        parse_content_md5("not base64!")
    assert parse_s3_etag(f'"{md5.hex()}"').digest == md5
    assert parse_s3_etag('"0123456789abcdef0123456789abcdef-3"') is None


def test_multihasher_feeds_every_algorithm_once():
    h = MultiHasher({"md5", "sha256"})
    h.update(DATA[:7])
    h.update(DATA[7:])
    assert h.hexdigest("md5") == hashlib.md5(DATA).hexdigest()
    assert h.hexdigest("sha256") == hashlib.sha256(DATA).hexdigest()
    h.reset()
    assert h.hexdigest("sha256") == hashlib.sha256(b"").hexdigest()


def test_file_digests_read_in_chunks_match_hashlib(tmp_path):
    from eolab.core.hashing import file_digest, file_hexdigest, file_multihash

    data = bytes(range(256)) * 1000 + b"tail"
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    for algorithm in ("sha256", "sha3_256", "md5"):
        want = hashlib.new(algorithm, data)
        assert file_digest(path, algorithm, chunk=1000) == want.digest()
        assert file_hexdigest(path, algorithm) == want.hexdigest()
    multihash = file_multihash(path)
    assert multihash == "1220" + hashlib.sha256(data).hexdigest()
    assert parse_multihash(multihash).digest == hashlib.sha256(data).digest()
