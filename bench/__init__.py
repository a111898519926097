"""Benchmarks for Hearth; see bench/README.md."""
