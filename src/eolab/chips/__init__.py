"""Chips: STAC items for converted products, a vectorised GeoParquet chip index with cloud and
nodata statistics, merge into a partitioned dataset, the chipper and pre-chipping.

Modules: ``stats`` (chip grid, per-chip mask fractions), ``sensors`` (per-sensor mask hooks),
``index`` (index rows, GeoParquet), ``merge`` (partitioned dataset, ``read_index``), ``items``
(STAC items and catalog), ``chipper`` (pixels from COGs or the Zarr cube), ``prechip`` (npz
batches), ``bench`` (``eolab bench chips``).
"""
