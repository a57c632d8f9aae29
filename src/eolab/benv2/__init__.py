"""BigEarthNet v2 (reBEN) -> ML-ready tiles.

Pairs S1 and S2 patches through ``metadata.parquet`` (never by folder names), brings all bands
onto the 10 m 120x120 grid, normalises them (reversibly), writes one ``.npz`` + ``.json`` per
patch and a sharded Zarr v3 store per split, and can delete the sources as it goes without ever
losing a patch whose output is not written, read back and verified.

Modules: ``names`` (bands, labels, countries, paths), ``metadata`` (pairing, filters, splits),
``transform`` (resampling, S1 alignment, normalisation and its inverse; pure), ``reader``
(GeoTIFF reading), ``writers`` (npz/json), ``store`` (sharded store and its fast reader),
``journal`` (crash-safe state), ``guard`` (disk guard), ``convert`` (the pipeline), ``bench``.
"""
