"""Storages from config: node-local temp resolution."""

from eolab.lab.storage import Storages


def test_temp_prefers_local_scratch_then_tmpdir_then_config(tmp_path):
    scratch, tmpdir, fallback = tmp_path / "ls", tmp_path / "td", tmp_path / "cfg"
    scratch.mkdir()
    tmpdir.mkdir()
    cfg = {"network": str(tmp_path), "temp": str(fallback), "s3": {"bucket": "abc"}}
    env = {"LOCAL_SCRATCH": str(scratch), "TMPDIR": str(tmpdir)}
    assert Storages.from_config(cfg, environ=env).temp == scratch
    del env["LOCAL_SCRATCH"]
    assert Storages.from_config(cfg, environ=env).temp == tmpdir
    del env["TMPDIR"]
    assert Storages.from_config(cfg, environ=env).temp == fallback
    assert fallback.is_dir()


def test_storage_devices_name_the_mount_or_endpoint_of_each_storage(tmp_path):
    from eolab.core.disk import mount_of
    from eolab.core.s3 import S3Config
    from eolab.lab.storage import storage_devices

    local = S3Config(bucket="b")
    allas = S3Config(bucket="b", endpoint_url="https://a3s.fi")
    storages = ["network", "temp", "s3", "s3-temp", "unzip-temp"]
    devices = storage_devices(storages, tmp_path, "/tmp", local)
    assert devices["network"] == mount_of(tmp_path) and " at /" in devices["network"]
    assert devices["temp"] == devices["s3-temp"] == devices["unzip-temp"] == mount_of("/tmp")
    assert devices["s3"] == "local moto server on 127.0.0.1"
    assert storage_devices(["s3"], None, None, allas) == {"s3": "endpoint https://a3s.fi"}
    assert storage_devices(["s3"], None, None, None) == {}
