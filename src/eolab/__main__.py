from eolab.cli import main

main()
