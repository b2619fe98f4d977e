"""End-to-end tests: the real `conveyor` CLI as a subprocess, real jobs, a real store."""
