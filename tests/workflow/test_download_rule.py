"""Rule ``download_stac_dataset``: a configured dataset is downloaded on request (offline here:
the generated dataset's hrefs are file:// URLs), and its filters reach the command."""

from __future__ import annotations

import json

import pytest
import yaml
from workflow_util import make_workflow_copy, run_snakemake

from eolab.fixtures.stac_dataset import generate

TARGET = "results/download/stac/{}/_download-summary.json"


def _config(path, **datasets):
    doc = {"download": {"workers": 4, "stac_datasets": datasets}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.workflow
def test_rule_downloads_a_configured_dataset(tmp_path):
    gen = generate(tmp_path / "src", items=6, base_url=f"file://{tmp_path / 'src'}")
    work = make_workflow_copy(tmp_path / "wf")
    cfg = _config(
        tmp_path / "dl.yaml",
        gen={
            "source": str(gen["catalog"]),
            "collections": ["source=B02", "labels"],
            "datetime": "2020-01-01/2020-01-04",
            "bbox": [-11, 39, 1, 51],
        },
        other={
            "source": "https://example.invalid/x.tar.gz",
            "intersects": {"type": "Point", "coordinates": [0, 0]},
        },
    )
    dry = run_snakemake(work, TARGET.format("other"), "-n", "-p", "--configfile", str(cfg))
    assert dry.returncode == 0, dry.stderr
    assert """--intersects '{"type":"Point","coordinates":[0,0]}'""" in dry.stdout + dry.stderr
    unknown = run_snakemake(work, TARGET.format("nope"), "-n", "--configfile", str(cfg))
    assert unknown.returncode != 0

    proc = run_snakemake(work, TARGET.format("gen"), "--cores", "1", "--configfile", str(cfg))
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = work / "results" / "download" / "stac" / "gen"
    summary = json.loads((folder / "_download-summary.json").read_text())
    # items 0..3 (Jan 1-4, item 4 starts Jan 5): source 0, 2 -> B02; labels 1, 3 + split
    files = sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name[0] != "_"
    )
    assert files == [
        "labels/_common/train_split.csv",
        "labels/labels_000001/labels.geojson",
        "labels/labels_000003/labels.geojson",
        "source/source_000000/B02.tif",
        "source/source_000002/B02.tif",
    ]
    assert summary["download"]["downloaded"] == 5
    src = tmp_path / "src" / "files"
    assert (folder / "source/source_000002/B02.tif").read_bytes() == (
        src / "source/source_000002/B02.tif"
    ).read_bytes()
