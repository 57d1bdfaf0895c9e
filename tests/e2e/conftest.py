"""End-to-end tests use the session-wide `stack` fixture of tests/conftest.py."""
