"""Persistence: SQL tables, migrations and repositories. ORM rows never leave this package."""
