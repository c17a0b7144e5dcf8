"""Benchmark scripts, not tests: ``python -m benchmarks.run`` measures the functions and prints a
markdown table (BENCHMARKS.md records the figures). Nothing here is imported by the runtime.
"""
