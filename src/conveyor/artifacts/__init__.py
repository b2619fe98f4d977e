"""Artifacts on the local filesystem: the content-addressed store and the job cache."""
