"""The report's shared chart style: colours, order, number formats, captions, PNG bytes."""

import hashlib

import numpy as np

from eolab.lab import formats
from eolab.report import style


def test_formats_and_storages_have_fixed_distinct_colours():
    fmt = [style.format_colour(n) for n in formats.NAMES]
    sto = [style.storage_colour(n) for n in style.STORAGE_ORDER]
    assert len(set(fmt)) == len(fmt) and len(set(sto)) == len(sto)
    assert not set(fmt) & set(sto)  # a storage is never drawn in a format's colour
    assert [formats.colour(n) for n in formats.NAMES] == fmt  # the registry uses the style
    assert style.format_colour("zarr-xarray") == style.format_colour("zarr")
    assert style.format_colour("nonsense") == style.UNKNOWN_COLOUR


def test_order_puts_the_reference_first_and_unknown_names_last():
    names = ["zarr-zip", "zz-new", "zarr", "zarr-xarray", "cog", "safe", "zarr-sharded"]
    assert style.ordered_formats(names) == [
        "zarr-xarray",
        "safe",
        "cog",
        "zarr",
        "zarr-sharded",
        "zarr-zip",
        "zz-new",
    ]
    assert style.ordered_storages(["s3", "unzip-temp", "temp", "network"]) == [
        "network",
        "temp",
        "s3",
        "unzip-temp",
    ]


def test_numbers_have_three_significant_digits_and_a_unit():
    assert style.format_seconds(0.0639) == "63.9 ms"
    assert style.format_seconds(3.05) == "3.05 s"
    assert style.format_seconds(3) == "3.00 s"
    assert style.format_seconds(0.00012) == "120 µs"
    assert style.format_seconds(750) == "12.5 min"
    assert style.format_seconds(59.99) == "1.00 min"
    assert style.format_seconds(7200) == "2.00 h"
    assert style.sig3(9.996) == "10.0"
    assert style.format_bytes(512) == "512 B"
    assert style.format_bytes(1.5 * 2**20) == "1.50 MiB"


def test_plurals():
    assert style.plural(1, "file") == "1 file"
    assert style.plural(0, "file") == "0 files"
    assert style.plural(2, "entry", "entries") == "2 entries"


def test_conditions_subtitle_names_every_condition_given():
    line = style.conditions_subtitle(
        tile="35VLH",
        year=2024,
        dates=1,
        patch_size_m=1280.0,
        repeats=2,
        cache_dropped=False,
        devices={"temp": "/dev/sda1 at /", "network": "/dev/sda1 at /"},
    )
    assert "tile 35VLH 2024" in line and "1 date " in line + " " and "patch 1280 m" in line
    assert "2 timed repeats" in line and "warm page cache" in line
    assert line.index("network drive: /dev/sda1") < line.index("node-local temp: /dev/sda1")
    assert style.conditions_subtitle() == ""
    wrapped = style.conditions_subtitle(extra=["a" * 50, "b" * 50, "c" * 50], width=110)
    assert wrapped == f"{'a' * 50} · {'b' * 50}\n{'c' * 50}"


def test_demo_size_is_judged_by_the_largest_dataset():
    assert style.is_demo_size([3e6, 40e6])
    assert not style.is_demo_size([3e6, 4e9])
    assert not style.is_demo_size([])


def _chart(path, demo):
    fig, axes = style.new_figure("Title", "tile 35VLH 2024 · 2 dates", demo=demo)
    ax = axes[0, 0]
    ax.bar([0, 1, 2], [1, 3, 2], color=style.format_colour("cog"))
    style.integer_ticks(ax.yaxis)
    ax.set_ylim(0, 3.4)
    ticks = ax.get_yticks()
    assert np.all(ticks == np.round(ticks))
    texts = [t.get_text() for t in fig.texts]
    assert fig.get_suptitle() == "Title"
    assert fig.get_supxlabel() == "tile 35VLH 2024 · 2 dates"
    assert any(t.startswith(style.DEMO_LABEL) for t in texts) == demo
    return style.save(fig, path)


def test_save_writes_the_same_png_bytes_without_a_date_or_version(tmp_path):
    a = _chart(tmp_path / "a.png", demo=True).read_bytes()
    b = _chart(tmp_path / "b.png", demo=True).read_bytes()
    assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest()
    assert b"Software" not in a and b"matplotlib" not in a.lower()
    assert a != _chart(tmp_path / "c.png", demo=False).read_bytes()
