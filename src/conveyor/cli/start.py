"""The console script's first module: sets the collector aside while Conveyor starts.

Starting a command creates a few hundred thousand objects (modules,
functions, classes) that live as long as the process. While they are being
created the cyclic garbage collector keeps walking them, finding nothing to
free. The collector is therefore off from here until the command is set up:
`main()` turns it back on before handing a command to Typer, and
`conveyor run` once its Run is about to start its first jobs, after moving
everything made so far out of the collector's sight (`gc.freeze`), so that
the collections during the Run walk only what the Run itself creates.
"""

import gc

gc.disable()

from conveyor.cli.main import entry  # noqa: E402 - imported with the collector off

__all__ = ["entry"]
