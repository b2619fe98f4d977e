"""The shared control plane over HTTP: the FastAPI app, its API, auth, health and metrics."""
