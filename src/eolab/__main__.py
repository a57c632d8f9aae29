"""``python -m eolab``: the ``eolab`` command line."""

from eolab.cli import main

main()
