"""Promotions as values: gates and their outcomes, approvals and segregation of duties (pure)."""
