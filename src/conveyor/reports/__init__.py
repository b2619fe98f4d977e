"""Test reports a Job writes (JUnit XML), read into counts and failures."""
