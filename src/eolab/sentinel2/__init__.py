"""eolab.sentinel2."""
