"""Policy as code: CEL rules over a documented decision input, decided as allow, warn or deny."""
