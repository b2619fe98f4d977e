"""Where instances run: the Target port, the local target, a fake, and the action driver."""
