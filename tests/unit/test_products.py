import pytest

from eolab.errors import InputError
from eolab.products import product_paths, read_manifest, write_manifest


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
