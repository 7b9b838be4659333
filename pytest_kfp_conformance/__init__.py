"""The pytest layer over the harness library (registered through the pytest11 entry point)."""
