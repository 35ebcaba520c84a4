"""``python -m modalens``: the same command line as ``modalens``."""

from modalens.cli.main import main

main()
