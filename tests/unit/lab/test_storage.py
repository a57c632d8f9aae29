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
