"""The `conveyor` command line: parse, call the control plane, render."""
