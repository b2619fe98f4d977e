"""Real servers the tests talk to over real sockets, shared by every test level."""
