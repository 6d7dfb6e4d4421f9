"""Reproducible benchmarks: each prints JSON and compares against a baseline measured in
the same run (CONVENTIONS.md, "Tests")."""
