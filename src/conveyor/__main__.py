"""`python -m conveyor` is the `conveyor` command."""

from conveyor.cli.start import entry

entry()
