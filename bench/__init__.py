"""Benchmarks for flask-stubber against a hand-written Flask view and a bare Flask floor.

Run ``python -m bench --help`` from the repository root; ``bench/RESULTS.md`` has the
figures measured on the reference machine and how to reproduce them.
"""
