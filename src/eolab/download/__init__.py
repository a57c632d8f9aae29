"""Pieces of the dataset downloaders: safe extraction, checksums, filters, the asset database,
the catalog walker, the resumable fetcher and a local fault-injecting HTTP server.

The entry points are `eolab.download.stac_dataset` (STAC dataset archives and catalogs) and
`eolab.download.url_to_s3` (signed links streamed into S3).
"""
