import pytest

from eolab.core.errors import InputError
from eolab.sentinel2.products import product_paths, read_manifest, write_manifest


def test_manifest_round_trip_sorted_by_time(tmp_path):
    products = [
        {"id": "b", "path": "x/b.SAFE", "datetime": "2024-03-01T10:00:00.000Z"},
        {"id": "a", "path": "x/a.SAFE", "datetime": "2024-01-01T10:00:00.000Z"},
    ]
    path = tmp_path / "35VLH_2024.json"
    write_manifest(path, "35VLH", 2024, "fixtures", products)
    doc = read_manifest(path)
    assert [p["id"] for p in doc["products"]] == ["a", "b"]
    assert product_paths(path) == [tmp_path / "x/a.SAFE", tmp_path / "x/b.SAFE"]


@pytest.mark.parametrize(
    "content, message", [(None, "not found"), ("{", "not valid JSON"), ('{"tile": "x"}', "year")]
)
def test_bad_manifest_names_file_and_reason(tmp_path, content, message):
    path = tmp_path / "m.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        read_manifest(path)
    assert str(path) in str(info.value)


def test_unverified_products_are_left_out_with_a_warning_and_none_left_is_an_error(
    tmp_path, caplog
):
    from eolab.sentinel2.products import usable_products

    products = [
        {"id": "a", "path": "a.SAFE", "datetime": "2024-01-01T10:00:00.000Z", "verified": True},
        {"id": "b", "path": "b.SAFE", "datetime": "2024-02-01T10:00:00.000Z", "verified": False,
         "problems": ["b/GRANULE/x.jp2: size 10 != 99"]},
        {"id": "c", "path": "c.SAFE", "datetime": "2024-03-01T10:00:00.000Z"},  # fixtures: no key
    ]  # fmt: skip
    path = tmp_path / "35VLH_2024.json"
    write_manifest(path, "35VLH", 2024, "cdse", products)
    with caplog.at_level("WARNING"):
        assert [p["id"] for p in usable_products(path)] == ["a", "c"]
    assert "b is not verified" in caplog.text and "x.jp2" in caplog.text
    assert product_paths(path) == [tmp_path / "a.SAFE", tmp_path / "c.SAFE"]
    write_manifest(path, "35VLH", 2024, "cdse", [products[1]])
    with pytest.raises(InputError, match="none of its 1 products is verified"):
        product_paths(path)


VLH = "S2A_MSIL1C_20240401T085207_N0510_R079_T35VLH_20240401T104047"
VMH = "S2A_MSIL1C_20240702T090035_N0510_R086_T35VMH_20240702T101116"


@pytest.mark.parametrize(
    "product, message",
    [
        ({"id": VLH}, f"{VLH} lacks 'path'"),
        ({"path": "x.SAFE"}, r"products\[1\] lacks 'id'"),
        ("x.SAFE", r"products\[1\] is not an object"),
        ({"id": VMH, "path": "v.SAFE"}, f"{VMH} is of tile 35VMH, the manifest of tile 35VLH"),
    ],
)
def test_bad_product_entries_are_refused_naming_manifest_and_product(tmp_path, product, message):
    import json

    path = tmp_path / "35VLH_2024.json"
    good = {"id": VLH, "path": "a.SAFE", "datetime": "2024-04-01T08:52:07.024Z"}
    doc = {"version": 1, "tile": "35VLH", "year": 2024, "products": [good, product]}
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=message) as info:
        product_paths(path)
    assert str(info.value).startswith(f"{path}: ")
