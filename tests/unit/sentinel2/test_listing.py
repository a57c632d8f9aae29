"""The COG listing: one writer (``eolab sentinel2 to-cog --listing``), one reader (lab, chips)."""

import json

import pytest

from eolab.core.errors import InputError
from eolab.sentinel2.listing import cog_items, product_folders, read_listing, write_listing


def _doc(pid: str, when: str) -> dict:
    return {
        "id": pid,
        "tile": "35VLH",
        "datetime": when,
        "orbit_direction": "descending",
        "baseline": "05.10",
    }


def test_written_listing_keeps_its_format_and_reads_back(tmp_path):
    docs = [_doc("S2A_1", "2024-05-01T10:00:00Z"), _doc("S2B_2", "2024-06-01T10:00:00Z")]
    listing = tmp_path / "cog" / "35VLH_2024.json"
    listing.parent.mkdir()
    write_listing(listing, tmp_path / "cog" / "tif", docs)
    doc = json.loads(listing.read_text())
    assert sorted(doc) == ["bands", "products", "tile", "version", "year"]
    assert (doc["version"], doc["tile"], doc["year"]) == (1, "35VLH", 2024)
    assert doc["bands"]["60m"] == ["B01", "B09", "B10"]
    first = doc["products"][0]
    assert sorted(first) == [
        "baseline", "cogs", "datetime", "id", "metadata", "orbit_direction", "tile"
    ]  # fmt: skip
    assert first["cogs"] == {g: f"tif/S2A_1/{g}.tif" for g in ("10m", "20m", "60m")}
    assert first["metadata"] == "tif/S2A_1/product.json"
    assert read_listing(listing) == doc
    assert cog_items(listing)[1] == {
        "id": "S2B_2", "datetime": "2024-06-01T10:00:00Z",
        **{g: f"tif/S2B_2/{g}.tif" for g in ("10m", "20m", "60m")},
    }  # fmt: skip
    assert cog_items("s3://b/k.json", listing.read_text()) == cog_items(listing)
    assert product_folders(listing) == ["tif/S2A_1", "tif/S2B_2"]


def test_tiles_and_years_become_lists_when_several(tmp_path):
    docs = [_doc("a", "2023-12-31T10:00:00Z"), {**_doc("b", "2024-01-01T10:00:00Z"), "tile": "X"}]
    write_listing(tmp_path / "l.json", tmp_path, docs)
    doc = read_listing(tmp_path / "l.json")
    assert doc["tile"] == ["35VLH", "X"] and doc["year"] == [2023, 2024]


@pytest.mark.parametrize(
    "text",
    ["not json", '{"products": [{"id": "a", "cogs": {"10m": "x"}}]}', '{"version": 1}'],
)
def test_unreadable_listing_names_the_file(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError, match=r"bad\.json: not a readable COG listing"):
        cog_items(path)
