"""Benchmarks, run by hand (not timed tests); results go to docs/performance.md."""
