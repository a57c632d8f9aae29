"""Node-local temp resolution ($LOCAL_SCRATCH, $TMPDIR, fallback) and NVMe sizing."""

from __future__ import annotations

import json
import tempfile

import pytest

from eolab.core import scratch
from eolab.core.errors import ConfigError
from eolab.core.scratch import input_bytes, nvme_gb, resolve_node_local


def test_local_scratch_wins_over_tmpdir_and_fallback(tmp_path):
    local, tmp = tmp_path / "nvme", tmp_path / "tmp"
    local.mkdir()
    tmp.mkdir()
    env = {"LOCAL_SCRATCH": str(local), "TMPDIR": str(tmp)}
    assert resolve_node_local(tmp_path / "fallback", env) == scratch.NodeLocal(
        local, "$LOCAL_SCRATCH"
    )
    assert not (tmp_path / "fallback").exists()


def test_tmpdir_when_no_local_scratch(tmp_path):
    env = {"LOCAL_SCRATCH": "", "TMPDIR": str(tmp_path)}
    assert resolve_node_local(None, env) == scratch.NodeLocal(tmp_path, "$TMPDIR")


def test_a_variable_naming_no_directory_is_skipped(tmp_path):
    # --export=ALL can carry another job's $LOCAL_SCRATCH into this one.
    env = {"LOCAL_SCRATCH": str(tmp_path / "job_1" / "data"), "TMPDIR": str(tmp_path)}
    assert resolve_node_local(None, env).source == "$TMPDIR"


def test_configured_fallback_is_created(tmp_path):
    fallback = tmp_path / "a" / "b"
    node = resolve_node_local(str(fallback), {})
    assert node == scratch.NodeLocal(fallback, "configured") and fallback.is_dir()


def test_system_temp_last(tmp_path):
    assert resolve_node_local("", {}) == scratch.NodeLocal(
        scratch.Path(tempfile.gettempdir()), "system"
    )


def test_uncreatable_fallback_names_the_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match=str(blocker / "sub")):
        resolve_node_local(blocker / "sub", {})


def test_node_local_dir_reads_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_SCRATCH", str(tmp_path))
    assert scratch.node_local_dir("/nonexistent/never-used") == tmp_path


def test_input_bytes_counts_files_folders_and_manifest_products(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x" * 1000)
    store = tmp_path / "s.zarr" / "g"
    store.mkdir(parents=True)
    (store / "c0").write_bytes(b"y" * 300)
    (store / "c1").write_bytes(b"y" * 200)
    safe = tmp_path / "P2.SAFE"
    safe.mkdir()
    (safe / "b.jp2").write_bytes(b"z" * 4000)
    products = [
        {"id": "P1", "path": "P1.SAFE", "bytes": 123_456},
        {"id": "P2", "path": "P2.SAFE"},  # no byte count: the folder is measured
    ]
    manifest = tmp_path / "T_2024.json"
    manifest.write_text(json.dumps({"tile": "T", "year": 2024, "products": products}))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"products": "not a list"}))
    paths = [tmp_path / "a.bin", tmp_path / "s.zarr", manifest, other, tmp_path / "missing"]
    expected = 1000 + 500 + 123_456 + 4000 + manifest.stat().st_size + other.stat().st_size
    assert input_bytes(paths) == expected


@pytest.mark.parametrize(
    ("nbytes", "factor", "margin", "gb"),
    [(0, 2.0, 10, 10), (1, 2.0, 10, 11), (2**30, 2.0, 0, 2), (2**30 + 1, 1.0, 5, 7),
     (100 * 2**30, 1.5, 10, 160)],
)  # fmt: skip
def test_nvme_gb_rounds_up_and_adds_the_margin(nbytes, factor, margin, gb):
    assert nvme_gb(nbytes, factor, margin) == gb


def test_nvme_gb_rejects_negative_settings():
    with pytest.raises(ValueError, match="factor"):
        nvme_gb(10, -1.0, 0)


def test_nvme_gres_is_empty_without_an_nvme_gres(tmp_path, monkeypatch):
    (tmp_path / "a").write_bytes(b"x" * 10)
    monkeypatch.setattr(scratch, "slurm_offers_nvme", lambda: False)
    assert scratch.nvme_gres([tmp_path / "a"]) == ""
    monkeypatch.setattr(scratch, "slurm_offers_nvme", lambda: True)
    assert scratch.nvme_gres([tmp_path / "a"], 2.0, 3) == "nvme:4"


def test_slurm_offers_nvme_parses_sinfo(tmp_path, monkeypatch):
    """A fake `sinfo` on PATH stands in for Puhti's and Roihu's answers."""
    sinfo = tmp_path / "sinfo"
    monkeypatch.setenv("PATH", str(tmp_path))
    for answer, offered in [
        ("nvme:3600\n(null)\ngpu:v100:4,nvme:3600\n", True),
        ("gpu:gh200:4\n(null)\n", False),
        ("nvmex:1\n", False),
    ]:
        sinfo.write_text(f"#!/bin/sh\nprintf '{answer}'\n")
        sinfo.chmod(0o755)
        scratch.slurm_offers_nvme.cache_clear()
        assert scratch.slurm_offers_nvme() is offered, answer
    sinfo.write_text("#!/bin/sh\nexit 1\n")
    scratch.slurm_offers_nvme.cache_clear()
    assert scratch.slurm_offers_nvme() is False
    scratch.slurm_offers_nvme.cache_clear()


def test_input_bytes_counts_the_data_behind_a_zarr_summary_and_a_cog_listing(tmp_path):
    """The workflow's conversion outputs are small JSON files standing for the data beside them."""
    store = tmp_path / "T_2024.zarr"
    (store / "g" / "c").mkdir(parents=True)
    (store / "g" / "c" / "0").write_bytes(b"y" * 700)
    summary = tmp_path / "T_2024.zarr.summary.json"
    summary.write_text(json.dumps({"groups": {}, "decoded": 1}))
    cog_dir = tmp_path / "T" / "2024" / "P1"
    cog_dir.mkdir(parents=True)
    (cog_dir / "10m.tif").write_bytes(b"c" * 5000)
    (cog_dir / "20m.tif").write_bytes(b"c" * 2000)
    listing = tmp_path / "T_2024.json"
    cogs = {"10m": "T/2024/P1/10m.tif", "20m": "T/2024/P1/20m.tif", "60m": "T/2024/P1/gone.tif"}
    listing.write_text(json.dumps({"tile": "T", "products": [{"id": "P1", "cogs": cogs}]}))
    assert input_bytes([summary]) == 700 + summary.stat().st_size
    assert input_bytes([listing]) == 7000 + listing.stat().st_size
