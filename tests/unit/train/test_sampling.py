"""Sample order per epoch, rank and worker; samples from the chip index and its filters."""

import numpy as np
import pandas as pd
import pytest

from eolab.chips.merge import read_index
from eolab.core.errors import InputError
from eolab.lab.patchload import Grid
from eolab.train.sampling import (
    epoch_order,
    filter_chips,
    index_samples,
    random_samples,
    tile_of,
    worker_share,
)


def test_same_seed_same_order_and_epochs_differ():
    a = epoch_order(100, seed=3, epoch=0)
    assert np.array_equal(a, epoch_order(100, seed=3, epoch=0))
    assert not np.array_equal(a, epoch_order(100, seed=3, epoch=1))
    assert not np.array_equal(a, epoch_order(100, seed=4, epoch=0))
    assert sorted(a.tolist()) == list(range(100))
    assert epoch_order(5, shuffle=False).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("n", [0, 1, 7, 100, 101])
@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_ranks_and_workers_cover_every_sample_once(n, world_size, workers):
    seen = []
    for rank in range(world_size):
        share = epoch_order(n, seed=1, epoch=2, rank=rank, world_size=world_size)
        for w in range(workers):
            seen += worker_share(share, w, workers).tolist()
    assert sorted(seen) == list(range(n))  # no duplicates, no gaps
    sizes = [len(epoch_order(n, rank=r, world_size=world_size)) for r in range(world_size)]
    assert max(sizes) - min(sizes) <= 1


def test_drop_last_gives_equal_shares_without_repeats():
    shares = [epoch_order(10, seed=0, rank=r, world_size=3, drop_last=True) for r in range(3)]
    assert [len(s) for s in shares] == [3, 3, 3]
    flat = np.concatenate(shares)
    assert len(set(flat.tolist())) == 9


def test_resume_from_offset_continues_the_same_epoch():
    full = epoch_order(50, seed=9, epoch=4, rank=1, world_size=2)
    resumed = epoch_order(50, seed=9, epoch=4, rank=1, world_size=2, start=7)
    assert np.array_equal(resumed, full[7:])
    assert len(epoch_order(50, rank=1, world_size=2, start=1000)) == 0


def test_bad_rank_and_offset_are_refused():
    with pytest.raises(InputError, match="rank 2 of world_size 2"):
        epoch_order(10, rank=2, world_size=2)
    with pytest.raises(InputError, match="negative"):
        epoch_order(10, start=-1)
    with pytest.raises(InputError, match="worker 3 of 3"):
        worker_share(np.arange(4), 3, 3)


def test_random_samples_are_seeded_squares_of_the_benchmark():
    grids = {
        g: Grid(300000, 6800040, r, n, n)
        for g, r, n in (("10m", 10, 180), ("20m", 20, 90), ("60m", 60, 30))
    }
    a = random_samples(grids, 20, 7, "35VLH", [2024])
    assert a == random_samples(grids, 20, 7, "35VLH", [2024])
    assert a != random_samples(grids, 20, 8, "35VLH", [2024])
    assert all(s.patch.size == 900 and s.years == (2024,) and s.dates == () for s in a)


def test_tile_of_product_ids():
    assert tile_of("S2B_MSIL2A_20240612T095029_N0510_R079_T35VLH_20240612T120000") == "35VLH"
    with pytest.raises(InputError, match="no MGRS tile"):
        tile_of("not-a-product")


@pytest.fixture(scope="module")
def index(ty2024, ty2025):
    return read_index([ty2024.index_dir, ty2025.index_dir])


def _expected_rows(index, max_cloud, max_nodata, start=None, end=None):
    """Independent oracle: the (x, y, day) of chips passing the filters, by plain iteration."""
    out = set()
    for row in index.itertuples():
        day = pd.Timestamp(row.datetime).strftime("%Y-%m-%d")
        if row.cloud_cover_percentage > max_cloud or row.nodata_percentage > max_nodata:
            continue
        if (start and day < start) or (end and day > end):
            continue
        out.add((row.native_xmin, row.native_ymax, day))
    return out


def test_index_filters_are_honoured(index):
    clouds = index["cloud_cover_percentage"]
    assert clouds.min() < 0.2 < clouds.max(), "the fixture needs clear and cloudy chips"
    for max_cloud, max_nodata in ((1.0, 1.0), (0.2, 1.0), (0.5, 0.0)):
        samples = index_samples(index, per="date", max_cloud=max_cloud, max_nodata=max_nodata)
        got = {(s.patch.x_min, s.patch.y_max, s.dates[0]) for s in samples}
        assert got == _expected_rows(index, max_cloud, max_nodata)
        assert all(len(s.dates) == 1 and s.years == (int(s.dates[0][:4]),) for s in samples)
    days = sorted(set(pd.to_datetime(index["datetime"]).dt.strftime("%Y-%m-%d")))
    start, end = days[1], days[-2]
    samples = index_samples(index, per="date", start=start, end=end)
    got = {(s.patch.x_min, s.patch.y_max, s.dates[0]) for s in samples}
    assert got == _expected_rows(index, 1.0, 1.0, start, end)
    assert index_samples(index, tiles=["31UDQ"]) == []
    assert len(index_samples(index, tiles=["35VLH"])) == len(index_samples(index))


def test_series_per_year_and_over_years(index):
    rows = _expected_rows(index, 0.3, 1.0)
    per_year = index_samples(index, per="year", max_cloud=0.3)
    expected = {}
    for x, y, day in rows:
        expected.setdefault((x, y, day[:4]), set()).add(day)
    assert {(s.patch.x_min, s.patch.y_max, str(s.years[0])): set(s.dates) for s in per_year} == (
        expected
    )
    years = index_samples(index, per="years", max_cloud=0.4, min_dates=3)
    assert any(s.years == (2024, 2025) for s in years), "a series spanning both years"
    for s in years:
        assert len(s.dates) >= 3 and list(s.dates) == sorted(s.dates)
        assert s.years == tuple(sorted({int(d[:4]) for d in s.dates}))
    counts = {}
    for x, y, _ in _expected_rows(index, 0.4, 1.0):
        counts[x, y] = counts.get((x, y), 0) + 1
    assert len(years) == sum(1 for c in counts.values() if c >= 3)
    with pytest.raises(InputError, match="per='month'"):
        index_samples(index, per="month")


def test_filter_adds_tile_and_day(index):
    table = filter_chips(index, max_cloud=0.1)
    assert set(table["tile"]) == {"35VLH"}
    assert (table["cloud_cover_percentage"] <= 0.1).all()
