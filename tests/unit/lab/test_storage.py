"""Storages from config: temp resolution, S3 endpoint resolution, no secrets in reprs."""

import pytest

from eolab.core.errors import ConfigError
from eolab.lab.storage import S3Access, S3Config, Storages


def test_endpoint_from_config_then_environment_else_local():
    cfg = {"bucket": "lab-bucket", "prefix": "/a/b/"}
    assert S3Config.from_config(cfg, environ={}).local
    env = {"AWS_ENDPOINT_URL": "https://generic", "AWS_ENDPOINT_URL_S3": "https://s3only"}
    assert S3Config.from_config(cfg, environ=env).endpoint_url == "https://s3only"
    explicit = S3Config.from_config({**cfg, "endpoint_url": "https://a3s.fi"}, environ=env)
    assert explicit.endpoint_url == "https://a3s.fi" and not explicit.local
    assert explicit.prefix == "a/b"
    assert explicit.key("zarr", "x.zarr/zarr.json") == "a/b/zarr/x.zarr/zarr.json"
    assert explicit.url("cog") == "s3://lab-bucket/a/b/cog"


def test_bad_bucket_is_a_config_error():
    with pytest.raises(ConfigError, match="bucket"):
        S3Config.from_config({"bucket": "x"}, environ={})


def test_missing_profile_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    with pytest.raises(ConfigError, match="no-such-profile"):
        S3Config.from_config({"bucket": "abc", "profile": "no-such-profile"}, environ={})


def test_profile_endpoint_is_used(tmp_path, monkeypatch):
    conf = tmp_path / "config"
    conf.write_text("[profile allas]\nendpoint_url = https://a3s.fi\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(conf))
    cfg = S3Config.from_config({"bucket": "abc", "profile": "allas"}, environ={})
    assert cfg.endpoint_url == "https://a3s.fi"


def test_secrets_stay_out_of_repr():
    access = S3Access(S3Config("abc"), "http://127.0.0.1:9", "us-east-1", "KEYID123", "SeCrEt!")
    text = repr(access) + str(access)
    assert "SeCrEt!" not in text and "KEYID123" not in text


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


def test_gdal_s3_env_decodes_on_the_calling_thread_off_the_main_thread():
    # GDAL's own decoding threads would miss the thread-local S3 credentials (wrong pixels)
    import threading

    import rasterio.env

    from eolab.lab.storage import gdal_s3_env

    def threads_option() -> str:
        with gdal_s3_env("http://127.0.0.1:9", GDAL_NUM_THREADS="ALL_CPUS"):
            return rasterio.env.getenv()["GDAL_NUM_THREADS"]

    seen = []
    worker = threading.Thread(target=lambda: seen.append(threads_option()))
    worker.start()
    worker.join()
    assert seen == ["1"]
    assert threads_option() == "ALL_CPUS"
