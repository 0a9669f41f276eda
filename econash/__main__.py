"""`python -m econash` runs the command line."""

from econash.cli import main

main()
