"""Deployments as pure state machines: a persisted status, a spec, an observation, a decision."""
