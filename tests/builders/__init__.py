"""Builders of domain values for tests: every field has a plain default; tests name the rest."""
