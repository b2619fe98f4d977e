"""What starts a Run from outside: signatures, payloads, projects' repositories (pure)."""
