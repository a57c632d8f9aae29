"""eolab.core.s3: one client builder, S3 endpoint resolution, no secrets in reprs, GDAL env."""

import pytest

from eolab.core.errors import ConfigError
from eolab.core.s3 import S3Access, S3Config, client_config, make_client


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


def test_gdal_s3_env_decodes_on_the_calling_thread_off_the_main_thread():
    # GDAL's own decoding threads would miss the thread-local S3 credentials (wrong pixels)
    import threading

    import rasterio.env

    from eolab.core.s3 import gdal_s3_env

    def threads_option() -> str:
        with gdal_s3_env("http://127.0.0.1:9", GDAL_NUM_THREADS="ALL_CPUS"):
            return rasterio.env.getenv()["GDAL_NUM_THREADS"]

    seen = []
    worker = threading.Thread(target=lambda: seen.append(threads_option()))
    worker.start()
    worker.join()
    assert seen == ["1"]
    assert threads_option() == "ALL_CPUS"


def test_one_client_builder_sets_pool_retries_timeouts_and_checksum_policy():
    client = make_client(
        "http://127.0.0.1:9",
        region="eu-north-1",
        credentials=("KEYID123", "SeCrEt!", None),
        pool_size=7,
        retries=3,
        connect_timeout=4.0,
        read_timeout=9.0,
    )
    config = client.meta.config
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.region_name == "eu-north-1"
    assert config.max_pool_connections == 7
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert (config.connect_timeout, config.read_timeout) == (4.0, 9.0)
    assert config.s3 == {"addressing_style": "path"}
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    assert client._request_signer._credentials.access_key == "KEYID123"  # noqa: SLF001


def test_unsigned_and_virtual_addressing_are_options():
    from botocore import UNSIGNED

    config = client_config(unsigned=True, path_style=False, pool_size=0)
    assert config.signature_version is UNSIGNED and config.s3 is None
    assert config.max_pool_connections == 1


def test_lab_access_client_keeps_its_settings():
    access = S3Access(S3Config("abc"), "http://127.0.0.1:9", "us-east-1", "KEYID123", "SeCrEt!")
    config = access.client(max_connections=40).meta.config
    assert config.max_pool_connections == 40
    assert config.retries == {"mode": "standard", "total_max_attempts": 6}
    assert config.s3 == {"addressing_style": "path"}
