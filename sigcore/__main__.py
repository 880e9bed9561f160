"""``python -m sigcore`` runs the command line."""

from sigcore.cli import main

main()
