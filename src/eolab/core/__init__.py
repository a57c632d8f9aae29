"""eolab.core."""
