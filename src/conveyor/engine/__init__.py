"""Runs of a Pipeline: planning, scheduling, caching, recording."""
