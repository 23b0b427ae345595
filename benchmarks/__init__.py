"""Seeded instance generators and benchmark runners (``python -m benchmarks.<name>``)."""
