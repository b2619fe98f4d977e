"""payments-api: a small JSON service that records payments in memory."""

__version__ = "1.0.0"
