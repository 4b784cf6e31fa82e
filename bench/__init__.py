"""Benchmarks of streamgenre's pipeline stages (run as ``python -m bench.<name>``)."""
