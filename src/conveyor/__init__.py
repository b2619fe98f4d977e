"""Conveyor: one paved road from commit to production."""

__version__ = "0.1.0"
