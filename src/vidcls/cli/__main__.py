"""`python -m vidcls.cli` runs the CLI."""

from vidcls.cli import main

main()
