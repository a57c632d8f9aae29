"""URL -> S3 streaming against a real HTTP server (faults on demand) and moto_server."""

from __future__ import annotations

import hashlib
import json
import os
import sys

import pytest
import requests

from eolab.core.errors import RemoteError
from eolab.download.bench import run_measured
from eolab.download.fetch import RetryPolicy
from eolab.download.url_to_s3 import (
    Link,
    MiB,
    TransferError,
    probe_size,
    raise_for_failures,
    transfer_links,
)
from eolab.fixtures.localhttp import Fault, LocalHTTPServer, generated_body, generated_sha256
from eolab.fixtures.s3server import LocalS3Server

pytestmark = pytest.mark.integration

FAST = RetryPolicy(attempts=3, base=0.01, cap=0.05)
PART = 5 * MiB
EXPIRED_XML = (
    b"<?xml version='1.0'?><Error><Code>AccessDenied</Code>"
    b"<Message>Request has expired</Message></Error>"
)


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    with LocalHTTPServer(tmp_path_factory.mktemp("www")) as server:
        yield server


@pytest.fixture()
def http(web):
    web.clear()
    yield web
    web.clear()


@pytest.fixture()
def s3env(s3_server, s3_client, monkeypatch):
    kw = s3_server.client_kwargs()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", kw["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", kw["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3_client.create_bucket(Bucket="xview2")
    return s3_server, s3_client


def gen(http, size: int, seed: int, name: str) -> tuple[str, str]:
    path = f"/_gen/{size}/{seed}/{name}"
    return http.url + path, path


def body_sha(s3_client, key: str) -> str:
    h = hashlib.sha256()
    for chunk in s3_client.get_object(Bucket="xview2", Key=key)["Body"].iter_chunks(MiB):
        h.update(chunk)
    return h.hexdigest()


def run(links, dest, s3_server, **kw):
    return transfer_links(
        links,
        dest,
        part_size=PART,
        s3_endpoint=s3_server.endpoint_url,
        retry=FAST,
        progress=False,
        **kw,
    )


def test_parallel_links_expired_one_reported_others_complete(http, s3env):
    s3_server, s3 = s3env
    big_url, big_path = gen(http, 12 * MiB + 123, 1, "train.tar.gz")
    small_url, _ = gen(http, 1000, 2, "test.tar.gz")
    expired_url, expired_path = gen(http, 2000, 3, "hold.tar.gz")
    http.add_fault(expired_path, Fault("status", 403, times=None, body=EXPIRED_XML))
    links = [
        Link("train.tar.gz", big_url + "?X-Amz-Signature=s1"),
        Link("test.tar.gz", small_url),
        Link("hold.tar.gz", expired_url + "?X-Amz-Signature=old"),
    ]
    results = {r.name: r for r in run(links, "s3://xview2/xbd", s3_server)}
    assert results["train.tar.gz"].status == "uploaded"
    assert results["test.tar.gz"].status == "uploaded"
    hold = results["hold.tar.gz"]
    assert hold.status == "failed" and hold.expired
    assert "'hold.tar.gz'" in hold.error and "expired" in hold.error
    assert "Request has expired" in hold.error and "X-Amz-Signature" not in hold.error
    with pytest.raises(RemoteError, match=r"1 of 3 link\(s\) failed:\n  hold.tar.gz: link"):
        raise_for_failures(list(results.values()))
    # bytes and the stored checksum match the source (the big one went through multipart and
    # got its sha256 by a server-side copy; the small one by a single PUT)
    for name, size, seed in (("train.tar.gz", 12 * MiB + 123, 1), ("test.tar.gz", 1000, 2)):
        head = s3.head_object(Bucket="xview2", Key=f"xbd/{name}")
        expected = generated_sha256(size, seed)
        assert head["ContentLength"] == size
        assert head["Metadata"]["sha256"] == expected == results[name].sha256
        assert body_sha(s3, f"xbd/{name}") == expected
    assert "-" in s3.head_object(Bucket="xview2", Key="xbd/train.tar.gz")["ETag"]  # multipart
    assert s3.list_multipart_uploads(Bucket="xview2").get("Uploads", []) == []

    # rerun: identical objects are skipped without downloading a byte
    http.clear()
    again = {r.name: r.status for r in run(links[:2], "s3://xview2/xbd", s3_server)}
    assert again == {"train.tar.gz": "skipped", "test.tar.gz": "skipped"}
    assert [r.method for r in http.requests] == ["HEAD", "HEAD"]


def test_cut_mid_stream_resumes_at_the_part_boundary(http, s3env):
    s3_server, s3 = s3env
    size = 12 * MiB
    url, path = gen(http, size, 4, "cut.bin")
    http.add_fault(path, Fault("cut", after=7 * MiB))
    link = Link("cut.bin", url, sha256=generated_sha256(size, 4))
    [res] = run([link], "s3://xview2/in", s3_server)
    assert res.status == "uploaded" and res.resumes == 1
    gets = [r.range for r in http.requests_for(path) if r.method == "GET"]
    assert gets == [None, f"bytes={PART}-"]  # part 1 was uploaded; part 2 restarts at 5 MiB
    head = s3.head_object(Bucket="xview2", Key="in/cut.bin")
    assert head["Metadata"]["sha256"] == link.sha256 and head["ContentLength"] == size
    assert body_sha(s3, "in/cut.bin") == link.sha256


def test_failed_uploads_are_aborted_and_wrong_checksum_refused(http, s3env):
    s3_server, s3 = s3env
    url, path = gen(http, 11 * MiB, 5, "dies.bin")
    http.add_fault(path, Fault("cut", after=6 * MiB))  # part 1 uploaded, then ...
    http.add_fault(path, Fault("cut", after=MiB, times=None))  # ... never a whole part 2
    wrong = Link("wrong.bin", gen(http, 6 * MiB, 6, "wrong.bin")[0], sha256="0" * 64)
    results = {r.name: r for r in run([Link("dies.bin", url), wrong], "s3://xview2/f", s3_server)}
    assert results["dies.bin"].status == "failed" and "gave up" in results["dies.bin"].error
    assert (
        results["wrong.bin"].status == "failed"
        and "differs from LINKS.json" in results["wrong.bin"].error
    )
    # part 1 was uploaded (the multipart upload existed: resumes asked for 5 MiB on) ...
    assert f"bytes={PART}-" in [r.range for r in http.requests_for(path)]
    # ... and it was aborted: no upload left open, no object
    assert s3.list_multipart_uploads(Bucket="xview2").get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket="xview2", Prefix="f/").get("KeyCount") == 0


def test_local_destination_with_sidecar_and_resume(http, tmp_path, s3_server):
    size = 3 * MiB + 17
    url, path = gen(http, size, 7, "local.bin")
    dest = tmp_path / "dl"
    data = b"".join(generated_body(size, 7))
    (dest / "sub").mkdir(parents=True)
    (dest / "sub" / "local.bin.part").write_bytes(data[:1000])  # left by an interrupted run
    [res] = run([Link("sub/local.bin", url)], str(dest), s3_server)
    assert res.status == "uploaded"
    assert [r.range for r in http.requests_for(path) if r.method == "GET"] == ["bytes=1000-"]
    assert (dest / "sub" / "local.bin").read_bytes() == data
    expected = hashlib.sha256(data).hexdigest()
    assert (dest / "sub" / "local.bin.sha256").read_text() == f"{expected}  local.bin\n"
    assert not (dest / "sub" / "local.bin.part").exists()
    [again] = run([Link("sub/local.bin", url)], str(dest), s3_server)
    assert again.status == "skipped"


def test_streamed_upload_memory_stays_bounded(http, tmp_path):
    """Peak RSS of `eolab transfer urls-to-s3` grows by far less than the body it streams."""
    big = 256 * MiB
    with LocalS3Server() as s3_server:  # its own server: moto keeps what it receives in RAM
        import boto3

        boto3.client("s3", **s3_server.client_kwargs()).create_bucket(Bucket="mem")
        kw = s3_server.client_kwargs()
        env = dict(
            os.environ,
            AWS_ACCESS_KEY_ID=kw["aws_access_key_id"],
            AWS_SECRET_ACCESS_KEY=kw["aws_secret_access_key"],
            AWS_DEFAULT_REGION="us-east-1",
        )
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # compiling imports would dominate the peak
        peaks = {}
        for label, size in (("small", 6 * MiB), ("big", big)):
            url, _ = gen(http, size, 8, f"{label}.bin")
            links = tmp_path / f"{label}.json"
            links.write_text(
                json.dumps(
                    [{"url": url, "name": f"{label}.bin", "sha256": generated_sha256(size, 8)}]
                )
            )
            # the child's own peak (a small launcher: not pytest's RSS as the floor)
            run = run_measured(
                [
                    sys.executable,
                    "-m",
                    "eolab",
                    "transfer",
                    "urls-to-s3",
                    str(links),
                    "--dest",
                    "s3://mem/p",
                    "--part-size",
                    "5MiB",
                    "--workers",
                    "1",
                    "--s3-endpoint",
                    s3_server.endpoint_url,
                    "--no-progress",
                ],
                env,
            )
            assert run["exit_code"] == 0, run
            peaks[label] = run["peak_rss_mib"]
        head = boto3.client("s3", **kw).head_object(Bucket="mem", Key="p/big.bin")
    assert head["ContentLength"] == big
    growth = peaks["big"] - peaks["small"]
    # one 5 MiB part in flight (plus its copy) - not the 256 MiB body
    print(f"peak RSS MiB: {peaks}, growth {growth:.1f} MiB for a {big // MiB} MiB body")
    assert growth < 48, peaks


def test_missing_bucket_fails_once_before_any_fetch(http, s3env):
    s3_server, _ = s3env
    url, _ = gen(http, 100, 9, "x.bin")
    with pytest.raises(RemoteError, match="s3://nope-bucket: bucket not found"):
        run([Link("x.bin", url)], "s3://nope-bucket/p", s3_server)
    assert http.requests == []


def test_cli_exits_1_naming_the_expired_link(http, s3env, tmp_path, capsys):
    from eolab.cli import main

    s3_server, _ = s3env
    ok_url, _ = gen(http, 500, 10, "ok.bin")
    bad_url, bad_path = gen(http, 500, 11, "gone.bin")
    http.add_fault(bad_path, Fault("status", 403, times=None, body=EXPIRED_XML))
    links = tmp_path / "links.json"
    links.write_text(json.dumps({"ok.bin": ok_url, "gone.bin": bad_url + "?sig=x"}))
    summary = tmp_path / "summary.json"
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "transfer",
                "urls-to-s3",
                str(links),
                "--dest",
                "s3://xview2/cli",
                "--s3-endpoint",
                s3_server.endpoint_url,
                "--no-progress",
                "--summary",
                str(summary),
            ]
        )
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "eolab: error: 1 of 2 link(s) failed" in err and "gone.bin" in err and "expired" in err
    doc = json.loads(summary.read_text())
    assert (doc["uploaded"], doc["failed"], doc["expired"]) == (1, 1, ["gone.bin"])


# --- probing the size: the same retries as the body ------------------------------------------
def probe(http, path: str, retry: RetryPolicy = FAST) -> tuple[int | None, list[float]]:
    slept: list[float] = []
    with requests.Session() as session:
        link = Link("f.bin", http.url + path + "?X-Amz-Signature=secret")
        return probe_size(session, link, (5, 5), retry, sleep=slept.append), slept


@pytest.mark.parametrize("status", [500, 503, 429])
def test_probe_size_retries_server_errors(http, status):
    _, path = gen(http, 3 * MiB, 7, "probe.bin")
    http.add_fault(path, Fault("status", status, times=2, headers={"Retry-After": "0"}))
    size, slept = probe(http, path)
    assert size == 3 * MiB
    assert [r.status for r in http.requests_for(path)] == [status, status, 200]
    assert len(slept) == 2


def test_probe_size_retries_the_range_get_of_a_link_refusing_head(http):
    _, path = gen(http, 2 * MiB, 8, "signed.bin")
    http.add_fault(path, Fault("status", 403, times=1))  # HEAD refused: the signature is for GET
    http.add_fault(path, Fault("status", 503, times=1))  # the Range GET answers 503 once
    size, slept = probe(http, path)
    assert size == 2 * MiB and len(slept) == 1
    methods = [(r.method, r.status) for r in http.requests_for(path)]
    assert methods[:2] == [("HEAD", 403), ("GET", 503)]


def test_probe_size_gives_up_with_a_clear_message(http):
    _, path = gen(http, MiB, 9, "down.bin")
    http.add_fault(path, Fault("status", 503, times=None))
    with pytest.raises(TransferError) as caught:
        probe(http, path)
    message = str(caught.value)
    assert message == "link 'f.bin': HTTP 503 Service Unavailable to HEAD (gave up after 3 tries)"
    assert "_Retryable" not in message and "secret" not in message
    assert len(http.requests_for(path)) == FAST.attempts


def test_link_whose_size_probe_meets_503_is_transferred(http, tmp_path):
    url, path = gen(http, 6 * MiB, 10, "later.bin")
    http.add_fault(path, Fault("status", 503, times=2))
    (res,) = transfer_links(
        [Link("later.bin", url)], str(tmp_path / "out"), part_size=PART, retry=FAST, progress=False
    )
    assert res.status == "uploaded", res.error
    assert res.sha256 == generated_sha256(6 * MiB, 10)
