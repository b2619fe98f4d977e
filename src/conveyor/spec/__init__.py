"""`conveyor.yaml` to typed, frozen models; owns every user-facing validation message."""
