"""eolab.workflow: config sections -> the rules' command-line arguments (exact strings)."""

import shlex
from pathlib import Path

import yaml

from eolab.workflow import (
    benv2_options,
    cdse_options,
    patch_region_options,
    stac_dataset_flags,
    storage_options,
    zarr_options,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_cdse_options_only_what_is_set():
    assert cdse_options(DEFAULT["cdse"]) == ""
    cdse = {**DEFAULT["cdse"], "profile": "my prof", "max_cloud_cover": 0}
    assert cdse_options(cdse) == "--profile 'my prof' --max-cloud-cover 0"


def test_zarr_options_from_the_default_config():
    assert zarr_options(DEFAULT["sentinel2_convert"]["zarr"]) == (
        "--chunks 10m:20x512x512,20m:40x256x256,60m:80x128x128"
        " --shards 10m:20x2048x2048,20m:40x1024x1024,60m:80x1024x1024"
        " --compressor zstd:3:shuffle"
    )
    scratch = {**DEFAULT["sentinel2_convert"]["zarr"], "scratch": "/s p"}
    assert zarr_options(scratch).endswith(" --scratch '/s p'")


def test_storage_options_default_and_everything_set():
    assert storage_options(DEFAULT["storage"]) == "--s3-bucket eolab-lab --workers 8"
    storage = {
        "network": "/n",
        "temp": "/t mp",
        "workers": 4,
        "s3": {
            "endpoint_url": "https://a3s.fi",
            "bucket": "b",
            "prefix": "a/b",
            "profile": "allas",
            "region": "eu-north-1",
            "public_read": True,
        },
    }
    assert storage_options(storage) == (
        "--s3-bucket b --workers 4 --s3-prefix a/b --temp-dir '/t mp'"
        " --s3-endpoint-url https://a3s.fi --s3-profile allas --s3-region eu-north-1"
        " --s3-public-read"
    )
    assert DEFAULT["storage"]["s3"]["public_read"] is False


def test_benv2_options_default_then_resplit_with_filters_and_switches():
    assert benv2_options(DEFAULT["benv2"]) == (
        "--bands all --resampling nearest --normalise patch --split official"
        " --split_group location --seed 42 --min_free_gb 0 --shard_patches 256"
    )
    benv2 = {
        **DEFAULT["benv2"],
        "bands": "B02,B03",
        "split": "resplit",
        "train_ratio": 0.7,
        "val_ratio": 0.2,
        "countries": "keep=Austria,Finland",
        "target_gb": 1.5,
        "float16": True,
        "delete_sources": True,
        "reference_maps": False,
    }
    args = shlex.split(benv2_options(benv2))
    assert args[:2] == ["--bands", "B02,B03"]
    assert args[args.index("--train_ratio") + 1] == "0.7"
    assert args[args.index("--val_ratio") + 1] == "0.2"
    assert args[args.index("--countries") + 1] == "keep=Austria,Finland"
    assert args[args.index("--target_gb") + 1] == "1.5"
    assert "--max_per_country" not in args and "--with-snow-cloud" not in args
    assert args[-3:] == ["--float16", "--delete-sources", "--no-reference-maps"]


def test_stac_dataset_flags_quote_and_normalise():
    entry = {
        "source": "https://example.org/x.tar.gz",
        "collections": ["col one=labels", "c2"],
        "assets": ["labels", "im age"],
        "datetime": "2015-07-01/2015-12-31",
        "bbox": [-125, 30, -100, 50],
        "catalog_only": True,
    }
    assert stac_dataset_flags(entry) == (
        "--collection 'col one=labels' --collection c2 --assets 'labels,im age'"
        " --datetime 2015-07-01/2015-12-31 --bbox -125.0,30.0,-100.0,50.0 --catalog-only"
    )
    point = {"type": "Point", "coordinates": [1.5, 2]}
    assert stac_dataset_flags({"intersects": point}) == (
        """--intersects '{"type":"Point","coordinates":[1.5,2]}'"""
    )
    assert stac_dataset_flags({"intersects": "area.geojson"}) == "--intersects area.geojson"
    assert stac_dataset_flags({}) == ""


def test_patch_region_options_only_the_sides_that_are_set():
    assert DEFAULT["benchmark"]["patch_load"]["region"] is None
    assert patch_region_options(None) == ""
    region = {"x1": 300060, "y1": 6799980.5, "x2": 303000, "y2": 6797040}
    assert patch_region_options(region) == "--x1 300060 --y1 6799980.5 --x2 303000 --y2 6797040"
    assert patch_region_options({"x1": None, "x2": 303000}) == "--x2 303000"
    assert shlex.split(patch_region_options(region))[1::2] == [
        "300060",
        "6799980.5",
        "303000",
        "6797040",
    ]


def test_storage_options_per_tile_follow_the_layout():
    storage = {"s3": {"bucket": "eolab-lab", "prefix": "lab", "layout": "tile-bucket"},
               "workers": 8, "temp": None}  # fmt: skip
    storage["s3"] |= {"endpoint_url": None, "profile": None, "region": None}
    assert storage_options(storage, "35VLH") == (
        "--s3-bucket eolab-lab-35vlh --workers 8 --s3-prefix lab"
    )
    storage["s3"]["layout"] = "tile-prefix"
    assert (
        storage_options(storage, "35VLH")
        == "--s3-bucket eolab-lab --workers 8 --s3-prefix lab/35VLH"
    )
    storage["s3"]["layout"] = "shared"
    assert storage_options(storage, "35VLH") == storage_options(storage)


def test_benv2_options_spell_out_the_compact_layout_only():
    assert "--store_layout" not in benv2_options(DEFAULT["benv2"])
    compact = {**DEFAULT["benv2"], "store_layout": "compact", "store_compression": "lz4"}
    assert benv2_options(compact).endswith("--store_compression lz4 --store_layout compact")
    # compression left unset: the CLI picks the layout's own (lz4 for compact, none for dense)
    assert DEFAULT["benv2"]["store_compression"] is None
    unset = benv2_options({**DEFAULT["benv2"], "store_layout": "compact"})
    assert "--store_compression" not in unset and unset.endswith("--store_layout compact")
