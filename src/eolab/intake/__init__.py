"""Sentinel-2 L1C intake from the Copernicus Data Space Ecosystem (CDSE).

``search`` (STAC API, one query per time window), ``plan`` (S3 prefix and file checksums from an
item), ``s3`` (client, retries, resumable verified GETs), ``download`` (thread pool over files,
resume), ``intake`` (the whole run and its products manifest), ``items`` (CDSE-shaped items from
local SAFE folders, for test servers).
"""

from eolab.intake.intake import IntakeSettings, run_intake

__all__ = ["IntakeSettings", "run_intake"]
