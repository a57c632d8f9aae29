"""eolab: Earth-observation downloads to ML-ready data on HPC, with storage/format benchmarks."""

__version__ = "0.1.0"
