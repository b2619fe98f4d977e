"""The one interface the CLI reaches services through: embedded now, remote later."""
