"""eolab.train on a real S3 server (moto over HTTP): DataLoader worker processes (forked after
the parent read) open their own S3 sessions and return the local store's pixels, every format."""

import numpy as np
import pytest
from train_data import build_tile_year

from eolab.chips.merge import read_index
from eolab.core.s3 import S3Access, S3Config
from eolab.fixtures.s3server import LOCAL_KEY_ID, LOCAL_SECRET
from eolab.lab.staging import dataset, upload_dataset
from eolab.train.dataset import FORMATS, CubeSource, PatchSeriesDataset
from eolab.train.sampling import index_samples, random_samples
from eolab.train.torch import data_loader

pytestmark = pytest.mark.integration
TILE, YEAR = "35VLH", 2024


@pytest.fixture(scope="module")
def tile_year(tmp_path_factory, s2_products):
    return build_tile_year(tmp_path_factory.mktemp("train-s3"), s2_products, TILE, YEAR)


@pytest.fixture()
def s3(s3_server, s3_client, tile_year):
    s3_client.create_bucket(Bucket="train")
    access = S3Access(
        S3Config("train"), s3_server.endpoint_url, "us-east-1", LOCAL_KEY_ID, LOCAL_SECRET
    )
    for fmt in FORMATS:
        upload_dataset(dataset(fmt, tile_year.entries[fmt]), s3_client, "train", f"cube/{fmt}")
    return access


@pytest.mark.parametrize("fmt", FORMATS)
def test_forked_workers_read_s3_like_local(tile_year, s3, fmt):
    entry = tile_year.entries[fmt]
    local = CubeSource(fmt, {(TILE, YEAR): str(entry)})
    remote = CubeSource(fmt, {(TILE, YEAR): f"cube/{fmt}/{entry.name}"}, s3=s3)
    with PatchSeriesDataset(local, []) as probe:
        grids = probe.grids(TILE, YEAR)
    index = read_index(tile_year.index_dir)
    samples = random_samples(grids, 4, 2, TILE, [YEAR], size_m=600)
    chips = index_samples(index, per="date", max_cloud=0.5)[:4]
    for chosen, resolution in ((samples, None), (chips, 10)):
        expected = PatchSeriesDataset(local, chosen, resolution=resolution)
        ds = PatchSeriesDataset(remote, chosen, resolution=resolution)
        ds[0]  # the parent opens its own S3 session before the workers fork
        assert ds._loaders
        loader, sampler = data_loader(
            ds, batch_size=2, num_workers=2, seed=0, multiprocessing_context="fork"
        )
        sampler.set_epoch(0)
        seen = []
        for batch in loader:
            for k, i in enumerate(batch["index"].tolist()):
                want = expected[i]
                for key in ("10m", "20m", "60m", "image", "valid", "time"):
                    if key in want:
                        np.testing.assert_array_equal(batch[key][k].numpy(), want[key])
                seen.append(i)
        assert sorted(seen) == list(range(len(chosen)))
        ds.close()
        expected.close()


def test_train_feed_reads_s3_direct_and_staged_to_temp(tile_year, tmp_path):
    """The benchmark on its own local S3 server: S3 direct and S3 -> temp then train."""
    from eolab.train.bench import run

    datasets = {"zarr-zip": dataset("zarr-zip", tile_year.entries["zarr-zip"])}
    doc = run(
        datasets,
        TILE,
        YEAR,
        storages=["s3", "s3-temp"],
        samples=2,
        warmup=1,
        batch_size=2,
        workers=[0, 2],
        patch_m=600,
        temp_root=tmp_path,
        s3_config=S3Config("feed"),
        echo=lambda _: None,
    )
    assert set(doc["results"]) == {"s3", "s3-temp"}
    assert doc["staging"]["upload_s3:zarr-zip"]["operation"] == "upload"
    (fetched,) = doc["staging"]["s3_temp:zarr-zip"]
    assert fetched["operation"] == "download" and fetched["bytes"] > 0
    staged = doc["results"]["s3-temp"]["zarr-zip"]
    assert staged["staging_s"] == pytest.approx(fetched["seconds"])
    assert [m["samples"] for m in staged["dataloader"]] == [2, 2]
    assert "staging_s" not in doc["results"]["s3"]["zarr-zip"]
    assert not list(tmp_path.iterdir()), "the temp copies are removed afterwards"
