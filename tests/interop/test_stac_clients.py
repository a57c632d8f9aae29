"""The STAC catalog of the converted products in pystac, odc-stac and stackstac."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pystac
import pystac.validation
import pytest
import rasterio
from pystac.extensions.eo import EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterExtension

from eolab.chips.items import BAND_VIEW_ROLE, COMMON_NAME
from eolab.sentinel2.safe import BAND_GROUPS, RESOLUTION, WAVELENGTH_NM, read_safe

SCHEMAS = Path(__file__).parent / "schemas"
#: Where the stac-extensions JSON schemas were looked for (2026-12-06): five come from the
#: pystac-ext-* sdists' recorded test responses (schemas/README.md); none of these ships the rest.
SCHEMA_PACKAGES_CHECKED = (
    "PyPI sdists pystac-ext-eo 1.1.1, -file 2.1.1, -grid 1.1.1, -projection 2.0.1, -raster "
    "1.1.1, -sat 1.0.1 (sat v1.0.0 only), -processing 1.2.0 (none), -sentinel-1, -sentinel-2, "
    "-product, -storage, -sar, -mgrs, pystac-core 1.15.2; wheels pystac 1.15.2, stac-validator "
    "4.1.2, stac-valid 4.6.1, stac-check 1.14.0, stac-api-validator 0.6.8, cqlalchemy 0.1.2, "
    "pystac-ext-generator 0.1.0, stactools 0.5.3 (sdist); npm stac-node-validator 1.3.2, "
    "stac-js 0.5.5, stac-ts 1.0.5, @radiantearth/stac-migrate 2.1.0, @radiantearth/stac-fields "
    "1.6.1"
)


def items_of(catalog: Path) -> list[pystac.Item]:
    return sorted(
        pystac.read_file(str(catalog)).get_items(recursive=True), key=lambda i: i.datetime
    )


def jp2(item: pystac.Item, band: str) -> np.ndarray:
    safe = read_safe(next(lk for lk in item.links if lk.rel == "derived_from").get_absolute_href())
    with rasterio.open(safe.band_path(band)) as src:
        return src.read(1)


def reflectance(item: pystac.Item, band: str) -> np.ndarray:
    """The band's reflectance from its JP2 and the scale/offset pystac reads (NaN = nodata)."""
    raster = RasterExtension.ext(item.assets[band]).bands[0]
    dn = jp2(item, band)
    return np.where(dn == raster.nodata, np.nan, dn * raster.scale + raster.offset)


# --- pystac ------------------------------------------------------------------------------------
def test_links_make_one_tree_rooted_at_catalog_json(s2_outputs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative hrefs resolve against the files, not the cwd
    catalog = pystac.read_file(str(s2_outputs.catalog))
    root_href = str(s2_outputs.catalog.resolve())
    collections = list(catalog.get_children())
    assert len(collections) == 1
    for obj in [*collections, *catalog.get_items(recursive=True)]:
        doc = json.loads(Path(obj.get_self_href()).read_text())
        root = next(lk for lk in doc["links"] if lk["rel"] == "root")
        assert not os.path.isabs(root["href"])
        assert str((Path(obj.get_self_href()).parent / root["href"]).resolve()) == root_href
    parent = next(lk for lk in collections[0].links if lk.rel == "parent")
    assert parent.get_absolute_href() == root_href
    for item in catalog.get_items(recursive=True):
        for asset in item.assets.values():
            assert not os.path.isabs(asset.href)
            assert Path(asset.get_absolute_href()).is_file()


def test_pystac_accessors_read_band_names_wavelengths_scale_and_offset(s2_outputs):
    for item in items_of(s2_outputs.catalog):
        safe = read_safe(
            next(lk for lk in item.links if lk.rel == "derived_from").get_absolute_href()
        )
        for group, names in BAND_GROUPS.items():
            assets = [(item.assets[group], names)] + [(item.assets[n], [n]) for n in names]
            for asset, bands in assets:
                eo = EOExtension.ext(asset).bands
                assert [b.name for b in eo] == bands
                assert [b.common_name for b in eo] == [COMMON_NAME[n] for n in bands]
                assert [b.center_wavelength for b in eo] == pytest.approx(
                    [WAVELENGTH_NM[n] / 1000 for n in bands], abs=1e-4
                )
                for band, raster in zip(bands, RasterExtension.ext(asset).bands, strict=True):
                    scale, offset = safe.scale_offset(band)
                    assert (raster.scale, raster.offset) == pytest.approx((scale, offset))
                    assert raster.nodata == 0 and raster.data_type == "uint16"
        views = [k for k, a in item.assets.items() if BAND_VIEW_ROLE in (a.roles or [])]
        assert sorted(views) == sorted(WAVELENGTH_NM)


def test_single_band_vrts_read_the_jp2_pixels(s2_outputs):
    item = items_of(s2_outputs.catalog)[0]
    for band in WAVELENGTH_NM:
        asset = item.assets[band]
        with rasterio.open(asset.get_absolute_href()) as src:
            assert src.count == 1 and src.crs.to_epsg() == 32635
            assert list(src.transform)[:6] == asset.extra_fields["proj:transform"]
            np.testing.assert_array_equal(src.read(1), jp2(item, band))


# --- validation --------------------------------------------------------------------------------
def schema_uri(path: Path) -> str:
    """The URI a bundled schema stands for: core STAC 1.1 and GeoJSON (as pystac ships them),
    any other file by its path (``stac-extensions.github.io/eo/v1.1.0/schema.json``)."""
    rel = path.relative_to(SCHEMAS)
    if rel.parts[0] == "geojson":
        return f"https://geojson.org/schema/{rel.name}"
    if rel.parts[0] == "stac-spec":
        spec = rel.stem if rel.stem in ("item", "catalog", "collection") else "item"
        return f"https://schemas.stacspec.org/{rel.parts[1]}/{spec}-spec/json-schema/{rel.name}"
    return f"https://{rel.as_posix()}"


class BundledValidator(pystac.validation.JsonSchemaSTACValidator):
    """JSON-schema validation from tests/interop/schemas only: never the network. Records the
    extension schemas it validated against (``used``)."""

    def __init__(self) -> None:
        super().__init__()
        self.schema_cache = {
            schema_uri(path): json.loads(path.read_text()) for path in SCHEMAS.rglob("*.json")
        }
        self.used: set[str] = set()

    def _get_schema(self, schema_uri: str) -> dict:
        key = schema_uri.split("#")[0]
        if key not in self.schema_cache:
            raise pystac.validation.GetSchemaError(schema_uri, KeyError("not bundled"))
        return self.schema_cache[key]

    def validate_extension(
        self, stac_dict, stac_object_type, stac_version, extension_id, href=None
    ):
        if extension_id.split("#")[0] not in self.schema_cache:
            return None  # test_catalog_is_valid_against_every_extension_it_declares says which
        self.used.add(extension_id)
        return super().validate_extension(
            stac_dict, stac_object_type, stac_version, extension_id, href
        )


#: Declared by the items but shipped by no package these machines can install (the pystac-ext
#: sdists' recorded responses have processing v1.0.0 and sat v1.0.0 only).
NOT_BUNDLED = {
    "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "https://stac-extensions.github.io/sat/v1.1.0/schema.json",
}


def declared_extensions(catalog: Path) -> set[str]:
    return {
        e
        for path in catalog.parent.rglob("*.json")
        for e in json.loads(path.read_text()).get("stac_extensions", [])
    }


def validate_offline(catalog: Path, validator: BundledValidator) -> None:
    pystac.validation.set_validator(validator)
    try:
        pystac.read_file(str(catalog)).validate_all()
    finally:
        pystac.validation.set_validator(pystac.validation.JsonSchemaSTACValidator())


def test_catalog_is_valid_against_core_and_bundled_extension_schemas_offline(s2_outputs):
    """validate_all() on the catalog and its absolute export: core STAC 1.1 and every declared
    extension schema but the two no package ships (eo, file, grid, projection, raster)."""
    validator = BundledValidator()
    for catalog in (s2_outputs.catalog, s2_outputs.export):
        validate_offline(catalog, validator)
    declared = declared_extensions(s2_outputs.catalog)
    assert validator.used == declared - NOT_BUNDLED
    assert len(validator.used) == 5
    core = {u for u in validator.schema_cache if "schemas.stacspec.org" in u}
    assert any(u.endswith("item.json") for u in core) and any(
        u.endswith("collection.json") for u in core
    )


def test_catalog_is_valid_against_every_extension_it_declares(s2_outputs):
    validator = BundledValidator()
    declared = declared_extensions(s2_outputs.catalog)
    missing = sorted(e for e in declared if e.split("#")[0] not in validator.schema_cache)
    if missing:
        pytest.skip(
            f"extension schemas not bundled: {', '.join(missing)}. No package on the registries "
            f"these machines reach ships them (checked: {SCHEMA_PACKAGES_CHECKED}; see "
            f"{SCHEMAS / 'README.md'}) and there is no network; put them under {SCHEMAS}"
        )
    validate_offline(s2_outputs.catalog, validator)
    assert validator.used == declared


def test_collection_summarises_its_items_and_assets(s2_outputs):
    collection = next(pystac.read_file(str(s2_outputs.catalog)).get_children())
    items = items_of(s2_outputs.catalog)
    summaries = collection.summaries.to_dict()
    assert summaries["grid:code"] == ["MGRS-35VLH"] and summaries["proj:code"] == ["EPSG:32635"]
    assert summaries["processing:level"] == ["L1C"]
    clouds = [i.properties["eo:cloud_cover"] for i in items]
    assert summaries["eo:cloud_cover"] == {"minimum": min(clouds), "maximum": max(clouds)}
    assert [b["name"] for b in summaries["eo:bands"]] == sorted(
        WAVELENGTH_NM, key=WAVELENGTH_NM.get
    )
    item_assets = collection.extra_fields["item_assets"]
    assert set(item_assets) == set(items[0].assets)
    assert [b["name"] for b in item_assets["10m"]["eo:bands"]] == BAND_GROUPS["10m"]


# --- odc-stac ----------------------------------------------------------------------------------
def test_odc_stac_loads_bands_by_name_on_their_own_grid(s2_outputs):
    import odc.stac

    items = items_of(s2_outputs.catalog)
    for band in ("B04", "B8A", "B01"):
        res = RESOLUTION[next(g for g, n in BAND_GROUPS.items() if band in n)]
        ds = odc.stac.load(items, bands=[band], resolution=res, groupby="id")
        assert ds.odc.geobox.crs.epsg == 32635
        transform = items[0].assets[band].extra_fields["proj:transform"]
        assert list(ds.odc.geobox.affine)[:6] == pytest.approx(transform)
        for t, item in enumerate(items):
            np.testing.assert_array_equal(ds[band].values[t], jp2(item, band))
            raster = RasterExtension.ext(item.assets[band]).bands[0]
            dn = ds[band].values[t].astype(float)
            # odc-stac 0.5.3 keeps raw DNs: scale/offset come from the raster:bands pystac reads
            np.testing.assert_allclose(
                np.where(dn == raster.nodata, np.nan, dn * raster.scale + raster.offset),
                reflectance(item, band),
            )


# --- projection: proj:code, not proj:epsg ------------------------------------------------------
def test_items_carry_proj_code_and_pystac_gives_the_epsg_stackstac_needs(s2_outputs, tmp_path):
    """Items and data assets carry projection v2.0.0 ``proj:code``/``shape``/``transform`` and
    no ``proj:epsg`` (v2.0.0 does not define it; no projection version defines both). pystac
    strips a ``proj:epsg`` from every item it reads, so writing it would not reach stackstac
    anyway; ``ProjectionExtension.ext(item).epsg`` gives the ``epsg=`` stackstac wants."""
    items = items_of(s2_outputs.catalog)
    for item in items:
        doc = json.loads(Path(item.get_self_href()).read_text())
        assert "proj:epsg" not in doc["properties"]
        assert ProjectionExtension.ext(item).epsg == 32635
        for key, asset in doc["assets"].items():
            assert "proj:epsg" not in asset
            assert {"proj:code", "proj:shape", "proj:transform"} <= set(asset), key
            assert ProjectionExtension.ext(item.assets[key]).epsg == 32635
    doc = json.loads(Path(items[0].get_self_href()).read_text())
    doc["properties"]["proj:epsg"] = 32635
    (tmp_path / "item.json").write_text(json.dumps(doc))
    assert "proj:epsg" not in pystac.read_file(str(tmp_path / "item.json")).properties


# --- stackstac ---------------------------------------------------------------------------------
def stack_band(items, band: str):
    import stackstac

    epsg = ProjectionExtension.ext(items[0]).epsg  # stackstac reads only proj:epsg

    fields = items[0].assets[band].extra_fields
    h, w = fields["proj:shape"]
    a, _, c, _, e, f = fields["proj:transform"][:6]
    bounds = (c, f + e * h, c + a * w, f)
    return stackstac.stack(
        items, assets=[band], epsg=epsg, resolution=a, bounds=bounds, snap_bounds=False,
        rescale=True, dtype="float64", fill_value=np.nan,
    ).compute()  # fmt: skip


def test_stackstac_loads_single_band_assets_rescaled_from_the_absolute_export(s2_outputs):
    items = items_of(s2_outputs.export)
    assert all(os.path.isabs(a.href) for i in items for a in i.assets.values())
    for band in ("B04", "B11"):
        stack = stack_band(items, band)
        assert stack.shape[:2] == (len(items), 1)
        for t, item in enumerate(items):
            np.testing.assert_allclose(stack.values[t, 0], reflectance(item, band))


def test_stackstac_reads_the_relative_catalog_once_pystac_resolves_the_hrefs(s2_outputs):
    items = items_of(s2_outputs.catalog)
    for item in items:
        item.make_asset_hrefs_absolute()  # stackstac resolves hrefs against the working folder
    stack = stack_band(items, "B02")
    np.testing.assert_allclose(stack.values[1, 0], reflectance(items[1], "B02"))


# --- rioxarray on the COGs ---------------------------------------------------------------------
def test_rioxarray_reads_cog_crs_transform_and_band_names(s2_outputs):
    import rioxarray

    item = items_of(s2_outputs.catalog)[0]
    for group, names in BAND_GROUPS.items():
        da = rioxarray.open_rasterio(item.assets[group].get_absolute_href())
        assert da.rio.crs.to_epsg() == 32635
        assert list(da.rio.transform())[:6] == item.assets[group].extra_fields["proj:transform"]
        assert list(da.attrs["long_name"]) == names
        for k, band in enumerate(names):
            np.testing.assert_array_equal(da.values[k], jp2(item, band))
