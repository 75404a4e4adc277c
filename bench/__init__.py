"""Benchmark of tap-spanning against a no-SDK floor: `python -m bench` (see bench.cli).

Kept free of imports: `python -m bench.floor` loads this package too, and the floor
must not import the tap or the SDK.
"""
