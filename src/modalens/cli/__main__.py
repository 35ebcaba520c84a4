"""``python -m modalens.cli``: the same command line as ``modalens``."""

from modalens.cli.main import main

main()
