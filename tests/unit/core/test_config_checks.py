"""Workflow config checks: one line per problem, naming the key (and the closest valid key)."""

import copy
from pathlib import Path

import pytest
import yaml

from eolab.core.config_checks import error_lines, schema_problems, unknown_keys, value_problems

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())


@pytest.fixture()
def config():
    """The default config with every schema default filled in, as the Snakefile sees it."""
    from snakemake.utils import validate

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    validate(cfg, str(ROOT / "config" / "schema.yaml"))
    return cfg


def test_default_config_has_no_problem(config):
    assert schema_problems(config, SCHEMA) == []
    assert value_problems(config) == []


def test_misspelt_top_level_key_names_the_closest_key():
    assert schema_problems({"sentinal2": {"year": 2024}}, SCHEMA) == [
        "config key 'sentinal2' is unknown (did you mean 'sentinel2'?)"
    ]


def test_misspelt_nested_key_names_its_section():
    problems = unknown_keys({"benv2": {"train_ration": 0.7}}, SCHEMA)
    assert problems == ["config key 'benv2.train_ration' is unknown (did you mean 'train_ratio'?)"]


def test_key_with_nothing_close_lists_the_valid_keys():
    (problem,) = unknown_keys({"zzzz": 1}, SCHEMA)
    assert problem.startswith("config key 'zzzz' is unknown (valid keys: results, sentinel2,")


def test_other_schema_errors_are_one_line_each():
    problems = schema_problems({"sentinel2": {"year": "x", "tiles": []}}, SCHEMA)
    assert problems == [
        "config sentinel2.tiles: [] should be non-empty",
        "config sentinel2.year: 'x' is not of type 'integer'",
    ]


def test_shards_that_are_not_multiples_of_the_chunks(config):
    config["sentinel2_convert"]["zarr"]["shards"]["20m"] = [40, 1000, 1024]
    assert value_problems(config) == [
        "config sentinel2_convert.zarr: shards for 20m: expected (time, y, x) multiples of "
        "chunks (40, 256, 256), got (40, 1000, 1024)"
    ]


def test_resplit_ratios_over_one(config):
    config["benv2"].update(split="resplit", train_ratio=0.8, val_ratio=0.3)
    assert value_problems(config) == [
        "config benv2.train_ratio 0.8 + benv2.val_ratio 0.3 must be at most 1 "
        "(the rest is the test split)"
    ]
    official = copy.deepcopy(config)
    official["benv2"]["split"] = "official"  # the ratios are not used, so not refused
    assert value_problems(official) == []


def test_unknown_country_code(config):
    config["benv2"]["countries"] = "keep=AT,XX"
    (problem,) = value_problems(config)
    assert problem.startswith("config benv2.countries 'keep=AT,XX': unknown country 'XX'")
    assert "Austria (AT)" in problem


def test_error_lines_prefix_every_problem():
    assert error_lines(["a", "b"]) == "eolab: error: a\neolab: error: b"


def test_patch_region_in_the_wrong_order(config):
    config["benchmark"]["patch_load"]["region"] = {"x1": 10.0, "y1": 5.0, "x2": 20.0, "y2": 8.0}
    assert value_problems(config) == [
        "config benchmark.patch_load.region: y2=8.0 must be less than y1=5.0 (top)"
    ]
    config["benchmark"]["patch_load"]["region"] = {"x1": 30.0, "x2": 20.0}
    assert value_problems(config) == [
        "config benchmark.patch_load.region: x1=30.0 must be less than x2=20.0"
    ]
    config["benchmark"]["patch_load"]["region"] = {"x1": 10.0, "y1": 9.0, "x2": 20.0, "y2": 8.0}
    assert value_problems(config) == []


def test_an_item_list_that_is_not_a_file_is_one_line(tmp_path):
    listed = tmp_path / "items.txt"
    listed.write_text("a/item.json\n")
    config = {"chips": {"item_lists": {"ok": str(listed), "gone": str(tmp_path / "gone.txt")}}}
    assert value_problems(config) == [
        f"config chips.item_lists.gone: {tmp_path / 'gone.txt'}: no such file (a text file naming"
        " one STAC item JSON per line)"
    ]
