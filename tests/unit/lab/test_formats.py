"""The format registry: one list for staging, loaders, charts, the CLI and the workflow."""

import zipfile
from pathlib import Path

import pytest
import yaml

from eolab.core.errors import InputError
from eolab.lab import formats
from eolab.lab.staging import dataset

ROOT = Path(__file__).resolve().parents[3]


def test_registry_matches_the_config_schema_and_the_default_config():
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    patch_load = schema["properties"]["benchmark"]["properties"]["patch_load"]["properties"]
    assert patch_load["formats"]["items"]["enum"] == list(formats.NAMES)
    assert patch_load["formats"]["default"] == list(formats.NAMES)
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    assert config["benchmark"]["patch_load"]["formats"] == list(formats.NAMES)


def test_each_format_says_its_entry_suffix_option_label_and_colour():
    assert formats.NAMES == ("safe", "cog", "zarr", "zarr-sharded", "zarr-zip")
    assert formats.ZARR_STORES == ("zarr", "zarr-sharded")
    assert [formats.get(n).option for n in formats.NAMES] == [f"--{n}" for n in formats.NAMES]
    assert formats.get("zarr-zip").suffix == ".zarr.zip"
    assert formats.label("zarr-sharded") == "Zarr (sharded)"
    assert formats.label(formats.BASELINE) == "Zarr via xarray/dask (reference)"
    assert formats.label("other") == "other"
    colours = [formats.colour(n) for n in formats.NAMES]
    assert len(set(colours)) == len(colours)
    assert formats.colour(formats.BASELINE) == formats.colour("zarr")


def test_unknown_format_names_the_known_ones(tmp_path):
    with pytest.raises(InputError, match="unknown format 'tiff' .*zarr-sharded, zarr-zip"):
        formats.get("tiff")
    with pytest.raises(InputError, match="unknown format"):
        dataset("tiff", tmp_path)


def test_store_and_zip_datasets_list_their_files(tmp_path):
    store = tmp_path / "t.zarr"
    for rel in ("zarr.json", "a/10m/data/c/0/0/0/0", "a/10m/x/c/0", "a/10m/data/zarr.json"):
        (store / rel).parent.mkdir(parents=True, exist_ok=True)
        (store / rel).write_bytes(b"x")
    for name in formats.ZARR_STORES:
        ds = dataset(name, store)
        assert ds.root == tmp_path and ds.entry == "t.zarr"
        assert ds.files == tuple(sorted(f"t.zarr/{r}" for r in (
            "zarr.json", "a/10m/data/c/0/0/0/0", "a/10m/x/c/0", "a/10m/data/zarr.json"
        )))  # fmt: skip
        holds = formats.get(name).holds_data
        assert [f for f in ds.files if holds(f)] == ["t.zarr/a/10m/data/c/0/0/0/0"]
    archive = tmp_path / "t.zarr.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zarr.json", "{}")
    assert dataset("zarr-zip", archive).files == ("t.zarr.zip",)
    with pytest.raises(InputError, match="folder not found"):
        formats.get("zarr").files(archive)  # a zip is not a store
