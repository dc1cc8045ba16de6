"""`python -m plughost` runs the command line."""

from plughost.cli.app import main

main()
