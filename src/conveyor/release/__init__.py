"""Releases as values: versions, conventional commits, release notes and changelogs (pure)."""
