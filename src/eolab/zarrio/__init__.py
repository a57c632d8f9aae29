"""eolab.zarrio."""
