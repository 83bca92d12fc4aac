"""Rollups: exact pre-aggregates of closed time slots plus the raw rows after a watermark
(docs/rollups.md). ``reader`` answers every query of ``..queries`` either way."""
