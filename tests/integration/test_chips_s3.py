"""Chips read through a real S3 server (moto_server over HTTP): COGs via GDAL /vsis3/ and the
Zarr cube via s3fs, pixel-equal to the local reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from chips_data import convert_tile

from eolab.chips.chipper import Chipper
from eolab.chips.index import index_items, load_items
from eolab.chips.merge import read_index
from eolab.core.errors import InputError
from eolab.core.s3 import S3Access, S3Config
from eolab.fixtures.s3server import LOCAL_KEY_ID, LOCAL_SECRET

pytestmark = pytest.mark.integration
BUCKET = "eolab-chips"


def upload_tree(client, folder: Path, prefix: str) -> int:
    count = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        client.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(folder).as_posix()}")
        count += 1
    return count


def local_access(server) -> S3Access:
    return S3Access(
        S3Config(bucket=""), server.endpoint_url, "us-east-1", LOCAL_KEY_ID, LOCAL_SECRET
    )


@pytest.fixture(scope="module")
def tile(tmp_path_factory, s2_products):
    return convert_tile(tmp_path_factory.mktemp("chips-s3"), s2_products, "35VLH")


def test_chips_over_s3_equal_local_reads(tile, s3_server, s3_client):
    s3_client.create_bucket(Bucket=BUCKET)
    root = tile.cog_dir.parents[2]  # <root>/cog/35VLH/2024
    assert upload_tree(s3_client, root / "cog", "results/cog") >= 9
    assert upload_tree(s3_client, tile.zarr, "results/zarr/35VLH_2024.zarr") > 0
    s3 = local_access(s3_server)
    index = read_index(tile.index_dir)
    href_map = {str((root / "cog").resolve()): f"s3://{BUCKET}/results/cog"}

    local = Chipper(index, source="cog", items=[tile.collection])
    remote = Chipper(index, source="cog", items=[tile.collection], href_map=href_map, s3=s3)
    cube = Chipper(
        index, source="zarr", zarr_store=f"s3://{BUCKET}/results/zarr/35VLH_2024.zarr", s3=s3
    )
    with local, remote, cube:
        for i in (0, len(index) // 2, len(index) - 1):
            want = local[i].pixels
            np.testing.assert_array_equal(remote[i].pixels, want)
            np.testing.assert_array_equal(cube[i].pixels, want)
        assert remote.source.href(load_items([tile.collection])[0].assets["10m"]).startswith(
            f"s3://{BUCKET}/"
        )
        opened = [store._store.fs for store in cube.source._stores]
        assert opened and all(fs._s3 is not None for fs in opened)
    assert all(fs._s3 is None for fs in opened)  # closing the chipper closed its S3 sessions

    # A missing object is a clear error naming the href, not a crash deep in GDAL (a fresh
    # prefix: GDAL caches what it has already read).
    upload_tree(s3_client, root / "cog", "copy/cog")
    first = index.item_id.iloc[0]
    s3_client.delete_object(Bucket=BUCKET, Key=f"copy/cog/35VLH/2024/{first}/10m.tif")
    copy_map = {str((root / "cog").resolve()): f"s3://{BUCKET}/copy/cog"}
    broken = Chipper(index, source="cog", items=[tile.collection], href_map=copy_map, s3=s3)
    with broken, pytest.raises(InputError, match=f"s3://{BUCKET}/copy/.*10m.tif"):
        broken[0]


def test_index_reads_masks_from_s3(tile, s3_server, s3_client, tmp_path, monkeypatch):
    """Items whose assets live on S3 (hrefs rewritten) are indexed through /vsis3/, with the
    credentials the CLI finds in the AWS environment (``eolab chips index --s3-endpoint``)."""
    from eolab.core.s3 import endpoint_access

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", LOCAL_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    s3_client.create_bucket(Bucket=BUCKET)
    items = load_items([tile.collection])
    item = items[0]
    for key in ("MSK_CLASSI_B00", "60m"):
        path = Path(item.assets[key].get_absolute_href())
        s3_client.upload_file(str(path), BUCKET, f"{item.id}/{path.name}")
        item.assets[key].href = f"s3://{BUCKET}/{item.id}/{path.name}"
    s3 = endpoint_access(s3_server.endpoint_url)
    assert "secret" not in repr(s3).lower() and LOCAL_SECRET not in repr(s3)
    [path] = index_items([item], tmp_path, chip_size=32, s3=s3, progress=False)
    remote = read_index(path)
    local = read_index(tile.index_dir / f"{item.id}.parquet")
    assert remote.drop(columns="geometry").equals(local.drop(columns="geometry"))
