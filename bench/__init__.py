"""Benchmarks: each script prints a table and writes JSON, markdown and plots to bench/results."""
