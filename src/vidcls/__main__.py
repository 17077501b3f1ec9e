"""`python -m vidcls` runs the CLI."""

from vidcls.cli import main

main()
