"""Benchmarks of the course's estimators and simulators (see ``benchmarks/README.md``).

Run ``python -m benchmarks.run --help`` from the repository root.
"""
