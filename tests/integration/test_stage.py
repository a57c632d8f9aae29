"""`eolab stage …` against real files and a real S3 server: timings, objects, no secrets."""

import json
import zipfile

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from eolab.cli.stage import stage
from eolab.lab.staging import dataset

pytestmark = pytest.mark.integration
SECRET = "do-not-leak-this-secret-7f3a"


@pytest.fixture()
def store(tmp_path):
    """A small Zarr v3 store (many chunk files) as the network copy."""
    path = tmp_path / "network" / "35VLH_2024.zarr"
    root = zarr.open_group(path, mode="w")
    a = root.create_array(
        "35VLH/2024/10m/data", shape=(4, 2, 64, 64), chunks=(1, 2, 16, 16), dtype="uint16"
    )
    a[:] = np.arange(a.size, dtype="uint16").reshape(a.shape)
    return path


@pytest.fixture()
def aws_env(monkeypatch, s3_server):
    from eolab.fixtures.s3server import LOCAL_KEY_ID

    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "LOCAL_SCRATCH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", LOCAL_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)  # moto accepts any secret
    return s3_server


def invoke(*args):
    result = CliRunner().invoke(stage, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    return result


def common(fmt, entry, timing, temp):
    return [
        "--format",
        fmt,
        "--input",
        entry,
        "--tile",
        "35VLH",
        "--year",
        "2024",
        "--timing",
        timing,
        "--temp-dir",
        temp,
        "--workers",
        "4",
    ]


def test_copy_to_temp_is_timed_and_cleaned_up(store, tmp_path, monkeypatch):
    monkeypatch.delenv("LOCAL_SCRATCH", raising=False)
    monkeypatch.delenv("TMPDIR", raising=False)
    temp = tmp_path / "temp"
    out = tmp_path / "copy.json"
    invoke("copy", *common("zarr", store, out, temp))
    doc = json.loads(out.read_text())
    ds = dataset("zarr", store)
    assert doc["objects"] == len(ds.files) > 16
    assert doc["bytes"] == ds.nbytes()
    assert doc["seconds"] > 0 and doc["operation"] == "copy"
    assert doc["storage"] == {"from": "network", "to": "temp"}
    assert doc["temp_source"] == "configured"
    assert "environment" in doc
    assert list(temp.iterdir()) == []  # the copy is gone, the timing stays


def test_copy_to_a_network_folder_keeps_an_identical_store(store, tmp_path):
    dest = tmp_path / "net" / "zarr" / "35VLH_2024"
    invoke("copy", *common("zarr", store, tmp_path / "n.json", tmp_path / "t"), "--dest", dest)
    copied = zarr.open_array(dest / "35VLH_2024.zarr", path="35VLH/2024/10m/data", mode="r")
    original = zarr.open_array(store, path="35VLH/2024/10m/data", mode="r")
    np.testing.assert_array_equal(copied[:], original[:])


def test_upload_then_download_through_a_configured_endpoint(store, tmp_path, aws_env, s3_client):
    s3 = ["--s3-endpoint-url", aws_env.endpoint_url, "--s3-bucket", "lab", "--s3-prefix", "p"]
    up, down = tmp_path / "up.json", tmp_path / "down.json"
    invoke("upload", *common("zarr", store, up, tmp_path / "t"), *s3)
    ds = dataset("zarr", store)
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket="lab")["Contents"]]
    assert sorted(keys) == sorted(f"p/zarr/{f}" for f in ds.files)
    invoke("download", *common("zarr", store, down, tmp_path / "t"), *s3)
    up_doc, down_doc = json.loads(up.read_text()), json.loads(down.read_text())
    assert up_doc["objects"] == down_doc["objects"] == len(ds.files)
    assert down_doc["bytes"] == ds.nbytes()
    assert down_doc["uploaded_first"] is None  # found in S3: not uploaded again
    assert up_doc["s3"] == {"endpoint": aws_env.endpoint_url, "bucket": "lab", "prefix": "p"}
    for path in (up, down):
        assert SECRET not in path.read_text()


def test_without_endpoint_each_command_runs_its_own_local_server(store, tmp_path, monkeypatch):
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "down.json"
    invoke(
        "download", *common("zarr", store, out, tmp_path / "t"), "--s3-log", tmp_path / "moto.log"
    )
    doc = json.loads(out.read_text())
    assert doc["s3"]["endpoint"].startswith("local moto_server")
    assert doc["uploaded_first"]["objects"] == doc["objects"]  # its own server started empty


def test_zip_and_unzip_on_temp(store, tmp_path):
    z, u = tmp_path / "zip.json", tmp_path / "unzip.json"
    invoke("zip", *common("zarr", store, z, tmp_path / "t"))
    zdoc = json.loads(z.read_text())
    assert zdoc["operation"] == "zip" and zdoc["objects"] == len(dataset("zarr", store).files)
    zipped = tmp_path / "35VLH_2024.zarr.zip"
    from eolab.zarrio.zipzarr import zip_store

    zip_store(store, zipped)
    invoke("unzip", *common("zarr-zip", zipped, u, tmp_path / "t"))
    udoc = json.loads(u.read_text())
    with zipfile.ZipFile(zipped) as zf:
        assert udoc["objects"] == len(zf.namelist())
        assert udoc["bytes"] == sum(i.file_size for i in zf.infolist())
    assert list((tmp_path / "t").iterdir()) == []


def anonymous(url, method="GET", data=None):
    """(status, body) of a request without any credentials."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method, data=data)) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_public_read_lets_anyone_get_objects_and_sets_only_that_policy(
    store, tmp_path, aws_env, s3_client
):
    """moto's server enforces the bucket policy for anonymous GETs (403 before, 200 after) and
    refuses anonymous overwrites; it lets anyone PUT a *new* key or list a bucket with or without
    any policy (moto gaps), so that the policy grants no write and no listing is checked on the
    document itself."""
    import botocore.exceptions

    from eolab.core.s3 import public_read_policy

    s3 = ["--s3-endpoint-url", aws_env.endpoint_url, "--s3-bucket", "pub", "--s3-prefix", "p"]
    args = common("zarr", store, tmp_path / "up.json", tmp_path / "t")
    ds = dataset("zarr", store)
    rel = sorted(ds.files)[0]
    url = f"{aws_env.endpoint_url}/pub/p/zarr/{rel}"

    invoke("upload", *args, *s3)  # default: no policy
    with pytest.raises(botocore.exceptions.ClientError, match="NoSuchBucketPolicy"):
        s3_client.get_bucket_policy(Bucket="pub")
    assert anonymous(url)[0] == 403

    invoke("upload", *args, *s3, "--s3-public-read")
    policy = json.loads(s3_client.get_bucket_policy(Bucket="pub")["Policy"])
    assert policy == public_read_policy("pub")
    assert policy["Statement"] == [
        {
            "Sid": "EolabPublicRead",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::pub/*",
        }
    ]
    status, body = anonymous(url)
    assert status == 200
    assert body == (ds.root / rel).read_bytes()
    assert anonymous(url, "PUT", b"overwritten")[0] == 403
    assert s3_client.get_object(Bucket="pub", Key=f"p/zarr/{rel}")["Body"].read() == body
