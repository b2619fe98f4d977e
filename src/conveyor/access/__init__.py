"""Who may do what: roles, permissions and API tokens as values (pure)."""
