"""Identifiers, time, errors and small value types shared by every layer."""
