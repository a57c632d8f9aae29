"""eolab.lab."""
