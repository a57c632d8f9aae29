"""The one module that knows a Sentinel-2 Level-1C SAFE product (folder layout and metadata).

``read_safe(path)`` parses ``MTD_MSIL1C.xml`` and the granule's ``MTD_TL.xml`` (namespace-aware:
real files use ``n1:`` prefixes bound to varying namespace URIs, so elements are matched on their
local names) and exposes names, times, baseline, orbit, CRS and geoposition per resolution,
radiometric scaling, band and mask files, and the ``manifest.safe`` file list with checksums.

Times are timezone-aware ``datetime`` objects in UTC, truncated to whole milliseconds (the
precision of the metadata's datatake start; ``MTD_TL`` carries microseconds). For numpy use
``to_datetime64(t)`` (``numpy.datetime64[ms]``).
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from affine import Affine

from eolab.core.errors import InputError
from eolab.core.hashing import file_hexdigest

#: The 13 bands in ``band_id`` order (``Spectral_Information bandId`` 0..12).
BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07",
    "B08", "B8A", "B09", "B10", "B11", "B12",
)  # fmt: skip
#: Bands per resolution group, in the order the conversions stack them.
BAND_GROUPS: dict[str, list[str]] = {
    "10m": ["B02", "B03", "B04", "B08"],
    "20m": ["B05", "B06", "B07", "B8A", "B11", "B12"],
    "60m": ["B01", "B09", "B10"],
}
#: Pixel size (m) of each resolution group.
RESOLUTION: dict[str, int] = {"10m": 10, "20m": 20, "60m": 60}
#: Pixel size (m) of each band.
BAND_RESOLUTION: dict[str, int] = {
    band: RESOLUTION[group] for group, bands in BAND_GROUPS.items() for band in bands
}
#: Full-size raster width/height (px) per pixel size (m).
FULL_SIZE: dict[int, int] = {10: 10980, 20: 5490, 60: 1830}
#: Central wavelengths (nm), from the product's Spectral_Information.
WAVELENGTH_NM: dict[str, float] = {
    "B01": 442.7, "B02": 492.7, "B03": 559.8, "B04": 664.6, "B05": 704.1,
    "B06": 740.5, "B07": 782.8, "B08": 832.8, "B8A": 864.7, "B09": 945.1,
    "B10": 1373.5, "B11": 1613.7, "B12": 2202.4,
}  # fmt: skip
NODATA = 0
SATURATED = 65535
#: Baseline from which DNs carry a +1000 offset and ``RADIO_ADD_OFFSET`` is given.
OFFSET_BASELINE = "04.00"
#: Layers of ``MSK_CLASSI_B00.jp2`` (baseline >= 04.00), in band order.
CLASSI_LAYERS: tuple[str, ...] = ("opaque_clouds", "cirrus", "snow_ice")

PRODUCT_METADATA = "MTD_MSIL1C.xml"
TILE_METADATA = "MTD_TL.xml"
MANIFEST = "manifest.safe"

_NAME_RE = re.compile(
    r"^(?P<mission>S2[A-D])_MSIL1C_(?P<datatake>\d{8}T\d{6})_N(?P<baseline>\d{4})"
    r"_R(?P<orbit>\d{3})_T(?P<tile>\d{2}[A-Z]{3})_(?P<generation>\d{8}T\d{4,6})$"
)
_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]00:?00)?$"
)


@dataclass(frozen=True)
class Geoposition:
    """Georeferencing of one resolution: upper-left corner, pixel size (ydim < 0), size."""

    ulx: float
    uly: float
    xdim: float
    ydim: float
    nrows: int
    ncols: int

    @property
    def transform(self) -> Affine:
        """The affine transform, pixel-corner convention as in rasterio."""
        return Affine(self.xdim, 0.0, self.ulx, 0.0, self.ydim, self.uly)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.nrows, self.ncols)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the tile's CRS."""
        return (
            self.ulx,
            self.uly + self.ydim * self.nrows,
            self.ulx + self.xdim * self.ncols,
            self.uly,
        )


@dataclass(frozen=True)
class ManifestEntry:
    """One file listed in ``manifest.safe``: path relative to the SAFE root, size, SHA3-256."""

    href: str
    size: int
    sha3_256: str | None


def parse_time(text: str, where: str = "") -> datetime:
    """Parse a SAFE timestamp (``2023-02-16T04:55:06.266543Z``) to UTC, truncated to ms."""
    match = _TIME_RE.match(text.strip()) if text else None
    if not match:
        raise InputError(f"{where}: not a UTC timestamp: {text!r}")
    year, month, day, hour, minute, second, frac, _ = match.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    return datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second),
        micro // 1000 * 1000, tzinfo=UTC,
    )  # fmt: skip


def to_datetime64(t: datetime) -> np.datetime64:
    """A reader time as ``numpy.datetime64[ms]`` (UTC, naive as numpy wants)."""
    return np.datetime64(t.astimezone(UTC).replace(tzinfo=None), "ms")


def format_time(t: datetime) -> str:
    """ISO 8601 with milliseconds and ``Z`` (the products manifest's datetime format)."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def band_from_physical(name: str) -> str:
    """``B1`` -> ``B01``, ``B8A`` -> ``B8A`` (``physicalBand`` to file band names)."""
    name = name.strip().upper()
    if name == "B8A":
        return name
    digits = name.lstrip("B")
    if not digits.isdigit():
        raise ValueError(f"not a Sentinel-2 band: {name!r}")
    return f"B{int(digits):02d}"


def has_offset(baseline: str) -> bool:
    """True for processing baselines that add +1000 to DNs (04.00 and later)."""
    return _baseline_key(baseline) >= _baseline_key(OFFSET_BASELINE)


def _baseline_key(baseline: str) -> tuple[int, int]:
    major, _, minor = baseline.strip().partition(".")
    return int(major), int(minor or 0)


def sha3_256(path: str | Path) -> str:
    """SHA3-256 of a file, lowercase hex (``manifest.safe`` uses this algorithm)."""
    return file_hexdigest(path, "sha3_256")


# --- namespace-aware XML helpers ---------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _iter(root: ET.Element, name: str) -> Iterator[ET.Element]:
    """Descendants (and root) whose local name is ``name``."""
    for elem in root.iter():
        if _local(elem.tag) == name:
            yield elem


def _parse_xml(path: Path) -> ET.Element:
    """Parse an XML file; a missing or corrupt file raises InputError naming it."""
    try:
        return ET.parse(path).getroot()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path}: is a directory, expected an XML file") from exc
    except ET.ParseError as exc:
        raise InputError(f"{path}: corrupt XML ({exc})") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc


class _Doc:
    """A parsed metadata file with lookups that name the file when something is missing."""

    def __init__(self, path: Path, expected_root: str):
        self.path = path
        self.root = _parse_xml(path)
        if _local(self.root.tag) != expected_root:
            raise InputError(
                f"{path}: root element is <{_local(self.root.tag)}>, expected <{expected_root}>"
            )

    def all(self, name: str, **attrs: str) -> list[ET.Element]:
        return [e for e in _iter(self.root, name) if all(e.get(k) == v for k, v in attrs.items())]

    def first(self, name: str, **attrs: str) -> ET.Element:
        found = self.all(name, **attrs)
        if not found:
            what = "".join(f' {k}="{v}"' for k, v in attrs.items())
            raise InputError(f"{self.path}: missing element <{name}{what}>")
        return found[0]

    def text(self, name: str, **attrs: str) -> str:
        text = (self.first(name, **attrs).text or "").strip()
        if not text:
            raise InputError(f"{self.path}: element <{name}> is empty")
        return text

    def number(self, name: str, **attrs: str) -> float:
        text = self.text(name, **attrs)
        try:
            return float(text)
        except ValueError as exc:
            raise InputError(f"{self.path}: <{name}> is not a number: {text!r}") from exc


# --- the product ---------------------------------------------------------------------------------


class SafeProduct:
    """A Sentinel-2 L1C SAFE product folder; metadata parsed once, properties cached."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError(f"{self.path}: SAFE folder not found")
        self._mtd = _Doc(self.path / PRODUCT_METADATA, "Level-1C_User_Product")
        self._tl = _Doc(self.granule_dir / TILE_METADATA, "Level-1C_Tile_ID")

    def __repr__(self) -> str:
        return f"SafeProduct({self.id!r})"

    # names ------------------------------------------------------------------------------------
    @functools.cached_property
    def product_uri(self) -> str:
        """``<PRODUCT_URI>`` exactly as in ``MTD_MSIL1C.xml`` (ends with ``.SAFE``)."""
        return self._mtd.text("PRODUCT_URI")

    @functools.cached_property
    def id(self) -> str:
        """Product name without ``.SAFE`` (the authoritative name; folders may differ)."""
        name = self.product_uri
        return name[: -len(".SAFE")] if name.upper().endswith(".SAFE") else name

    @functools.cached_property
    def _name_parts(self) -> dict[str, str]:
        match = _NAME_RE.match(self.id)
        if not match:
            raise InputError(f"{self._mtd.path}: PRODUCT_URI {self.id!r} is not an L1C name")
        return match.groupdict()

    @property
    def mission(self) -> str:
        """``S2A``, ``S2B``, ``S2C`` …"""
        return self._name_parts["mission"]

    @property
    def tile(self) -> str:
        """MGRS tile id without the ``T`` (``35VLH``)."""
        return self._name_parts["tile"]

    @functools.cached_property
    def spacecraft(self) -> str:
        """``Sentinel-2A`` …"""
        return self._mtd.text("SPACECRAFT_NAME")

    # times ------------------------------------------------------------------------------------
    @functools.cached_property
    def datatake_start(self) -> datetime:
        """Datatake sensing start (``PRODUCT_START_TIME``), the time in the product name."""
        names = ("PRODUCT_START_TIME", "DATATAKE_SENSING_START")
        for name in names:
            if self._mtd.all(name):
                return parse_time(self._mtd.text(name), str(self._mtd.path))
        raise InputError(f"{self._mtd.path}: missing element <{names[0]}>")

    @functools.cached_property
    def sensing_time(self) -> datetime:
        """Tile sensing time (``MTD_TL.xml`` ``SENSING_TIME``), truncated to milliseconds."""
        return parse_time(self._tl.text("SENSING_TIME"), str(self._tl.path))

    @functools.cached_property
    def generation_time(self) -> datetime:
        """Product generation time (``GENERATION_TIME``)."""
        return parse_time(self._mtd.text("GENERATION_TIME"), str(self._mtd.path))

    # processing and orbit -----------------------------------------------------------------------
    @functools.cached_property
    def baseline(self) -> str:
        """Processing baseline ``NN.NN`` (``05.09``)."""
        text = self._mtd.text("PROCESSING_BASELINE")
        if not re.fullmatch(r"\d{2}\.\d{2}", text):
            raise InputError(f"{self._mtd.path}: PROCESSING_BASELINE {text!r} is not NN.NN")
        return text

    @functools.cached_property
    def relative_orbit(self) -> int:
        return int(self._mtd.number("SENSING_ORBIT_NUMBER"))

    @functools.cached_property
    def absolute_orbit(self) -> int | None:
        """From the datatake identifier ``GS2A_<start>_<abs orbit>_N<baseline>``."""
        ident = self._mtd.first("Datatake").get("datatakeIdentifier", "")
        parts = ident.split("_")
        return int(parts[2]) if len(parts) >= 3 and parts[2].isdigit() else None

    @functools.cached_property
    def orbit_direction(self) -> str:
        """``ASCENDING`` or ``DESCENDING``."""
        text = self._mtd.text("SENSING_ORBIT_DIRECTION").upper()
        if text not in ("ASCENDING", "DESCENDING"):
            raise InputError(f"{self._mtd.path}: SENSING_ORBIT_DIRECTION {text!r} is unknown")
        return text

    @functools.cached_property
    def cloud_cover(self) -> float:
        """Cloudy pixels in percent (``Cloud_Coverage_Assessment``, 0-100)."""
        return self._mtd.number("Cloud_Coverage_Assessment")

    # radiometry ---------------------------------------------------------------------------------
    @functools.cached_property
    def quantification_value(self) -> float:
        """Reflectance = (DN + offset) / quantification_value."""
        return self._mtd.number("QUANTIFICATION_VALUE")

    @functools.cached_property
    def band_ids(self) -> dict[int, str]:
        """``bandId`` -> band name, from ``Spectral_Information`` (BANDS order if absent)."""
        infos = self._mtd.all("Spectral_Information")
        if not infos:
            return dict(enumerate(BANDS))
        try:
            return {int(e.get("bandId")): band_from_physical(e.get("physicalBand")) for e in infos}
        except (TypeError, ValueError) as exc:
            raise InputError(f"{self._mtd.path}: bad Spectral_Information ({exc})") from exc

    @functools.cached_property
    def radio_offsets(self) -> dict[str, int]:
        """Band -> ``RADIO_ADD_OFFSET`` (-1000 from baseline 04.00; empty before)."""
        offsets = {}
        for elem in self._mtd.all("RADIO_ADD_OFFSET"):
            try:
                offsets[self.band_ids[int(elem.get("band_id"))]] = int(float(elem.text))
            except (TypeError, ValueError, KeyError) as exc:
                raise InputError(f"{self._mtd.path}: bad RADIO_ADD_OFFSET ({exc})") from exc
        return offsets

    def scale_offset(self, band: str) -> tuple[float, float]:
        """(scale, offset) with reflectance = DN * scale + offset, e.g. (0.0001, -0.1) from
        baseline 04.00 and (0.0001, 0.0) before (as STAC ``raster:scale``/``raster:offset``)."""
        if band not in BANDS:
            raise ValueError(f"unknown Sentinel-2 band {band!r}; expected one of {BANDS}")
        q = self.quantification_value
        return 1.0 / q, self.radio_offsets.get(band, 0) / q

    @functools.cached_property
    def special_values(self) -> dict[str, int]:
        """``{"NODATA": 0, "SATURATED": 65535}`` as declared in the metadata."""
        values = {}
        for elem in self._mtd.all("Special_Values"):
            name = next(_iter(elem, "SPECIAL_VALUE_TEXT"), None)
            index = next(_iter(elem, "SPECIAL_VALUE_INDEX"), None)
            if name is not None and index is not None:
                values[(name.text or "").strip()] = int(index.text)
        return values

    @property
    def nodata(self) -> int:
        return self.special_values.get("NODATA", NODATA)

    @functools.cached_property
    def footprint(self) -> list[tuple[float, float]]:
        """Data footprint ring as (lon, lat) pairs (``EXT_POS_LIST`` holds lat lon)."""
        values = [float(v) for v in self._mtd.text("EXT_POS_LIST").split()]
        return [(values[i + 1], values[i]) for i in range(0, len(values) - 1, 2)]

    # georeferencing -----------------------------------------------------------------------------
    @functools.cached_property
    def epsg(self) -> int:
        code = self._tl.text("HORIZONTAL_CS_CODE")
        match = re.fullmatch(r"EPSG:(\d+)", code)
        if not match:
            raise InputError(f"{self._tl.path}: HORIZONTAL_CS_CODE {code!r} is not EPSG:n")
        return int(match.group(1))

    @property
    def crs(self) -> str:
        """``EPSG:nnnnn``."""
        return f"EPSG:{self.epsg}"

    @functools.cached_property
    def _geopositions(self) -> dict[int, Geoposition]:
        result = {}
        for res in (10, 20, 60):
            r = str(res)
            size = self._tl.first("Size", resolution=r)
            geo = self._tl.first("Geoposition", resolution=r)

            def value(elem: ET.Element, name: str, r: str = r) -> float:
                found = next(_iter(elem, name), None)
                try:
                    return float(found.text)
                except (AttributeError, TypeError, ValueError) as exc:
                    raise InputError(f"{self._tl.path}: bad <{name}> at resolution {r}") from exc

            result[res] = Geoposition(
                ulx=value(geo, "ULX"),
                uly=value(geo, "ULY"),
                xdim=value(geo, "XDIM"),
                ydim=value(geo, "YDIM"),
                nrows=int(value(size, "NROWS")),
                ncols=int(value(size, "NCOLS")),
            )
        return result

    def geoposition(self, res: int | str) -> Geoposition:
        """Upper-left corner, pixel size and raster size at resolution 10, 20 or 60 (m)."""
        return self._geopositions[_resolution(res)]

    def transform(self, res: int | str) -> Affine:
        """Affine transform at resolution 10, 20 or 60 (pixel-corner convention)."""
        return self.geoposition(res).transform

    # files --------------------------------------------------------------------------------------
    @functools.cached_property
    def image_files(self) -> list[str]:
        """``IMAGE_FILE`` entries (relative, without ``.jp2``) from ``MTD_MSIL1C.xml``."""
        return [(e.text or "").strip() for e in self._mtd.all("IMAGE_FILE")]

    @functools.cached_property
    def granule_dir(self) -> Path:
        """``GRANULE/L1C_T<tile>_A<abs orbit>_<datastrip start>``."""
        for entry in self.image_files:
            parts = entry.split("/")
            if len(parts) >= 2 and parts[0] == "GRANULE":
                return self.path / parts[0] / parts[1]
        granules = sorted((self.path / "GRANULE").glob("L1C_*"))
        if len(granules) != 1:
            raise InputError(f"{self.path / 'GRANULE'}: expected one granule, {len(granules)}")
        return granules[0]

    @functools.cached_property
    def datastrip_dir(self) -> Path | None:
        found = sorted((self.path / "DATASTRIP").glob("DS_*"))
        return found[0] if found else None

    @property
    def metadata_path(self) -> Path:
        return self._mtd.path

    @property
    def tile_metadata_path(self) -> Path:
        return self._tl.path

    @functools.cached_property
    def _image_paths(self) -> dict[str, Path]:
        paths = {}
        for entry in self.image_files:
            key = entry.rsplit("_", 1)[-1]
            paths[key] = self.path / f"{entry}.jp2"
        return paths

    def band_path(self, band: str) -> Path:
        """The JP2 file of a band (``B01``…``B12``, ``B8A``, or ``TCI``); must exist."""
        if band not in BANDS and band != "TCI":
            raise ValueError(f"unknown Sentinel-2 band {band!r}; expected one of {BANDS}")
        path = self._image_paths.get(band)
        if path is None:
            raise InputError(f"{self._mtd.path}: no IMAGE_FILE for band {band}")
        if not path.is_file():
            raise InputError(f"{path}: band {band} file missing")
        return path

    def band_paths(self) -> dict[str, Path]:
        """Band -> JP2 path for the 13 bands, in BANDS order."""
        return {band: self.band_path(band) for band in BANDS}

    @functools.cached_property
    def mask_files(self) -> dict[tuple[str, str | None], Path]:
        """(mask type, band or None) -> path, from ``Pixel_Level_QI`` in ``MTD_TL.xml``."""
        masks = {}
        for elem in self._tl.all("MASK_FILENAME"):
            band_id = elem.get("bandId")
            band = self.band_ids.get(int(band_id)) if band_id is not None else None
            masks[(elem.get("type", ""), band)] = self.path / (elem.text or "").strip()
        return masks

    @functools.cached_property
    def cloud_mask_path(self) -> Path | None:
        """``QI_DATA/MSK_CLASSI_B00.jp2`` (3 uint8 layers at 60 m: CLASSI_LAYERS); None
        before baseline 04.00, where clouds are GML vectors (``MSK_CLOUDS_B00.gml``)."""
        path = self.mask_files.get(("MSK_CLASSI", None))
        if path is None:
            return None
        if not path.is_file():
            raise InputError(f"{path}: cloud mask file missing")
        return path

    def manifest_files(self) -> list[ManifestEntry]:
        """Files listed in ``manifest.safe``: relative href, size, SHA3-256 (lowercase hex)."""
        path = self.path / MANIFEST
        return read_manifest_safe(path)


def read_manifest_safe(path: str | Path) -> list[ManifestEntry]:
    """Parse a ``manifest.safe`` into its file entries (works before the product is complete)."""
    path = Path(path)
    root = _parse_xml(path)
    entries = []
    for stream in _iter(root, "byteStream"):
        location = next(_iter(stream, "fileLocation"), None)
        if location is None or not location.get("href"):
            raise InputError(f"{path}: byteStream without fileLocation href")
        href = location.get("href").strip()
        href = href[2:] if href.startswith("./") else href
        checksum = next(_iter(stream, "checksum"), None)
        digest = None
        if checksum is not None and (checksum.get("checksumName", "").upper() == "SHA3-256"):
            digest = (checksum.text or "").strip().lower() or None
        try:
            size = int(stream.get("size"))
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}: bad size for {href}") from exc
        entries.append(ManifestEntry(href=href, size=size, sha3_256=digest))
    if not entries:
        raise InputError(f"{path}: no files listed")
    return entries


def _resolution(res: int | str) -> int:
    value = RESOLUTION.get(res) if isinstance(res, str) else res
    if isinstance(res, str) and value is None and res.isdigit():
        value = int(res)
    if value not in (10, 20, 60):
        raise ValueError(f"resolution must be 10, 20 or 60 (or '10m'…), not {res!r}")
    return int(value)


def read_safe(path: str | Path) -> SafeProduct:
    """Open a SAFE folder (or its ``MTD_MSIL1C.xml``); raises InputError naming a bad file."""
    path = Path(path)
    if path.name == PRODUCT_METADATA:
        path = path.parent
    return SafeProduct(path)
