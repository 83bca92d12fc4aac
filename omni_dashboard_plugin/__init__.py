"""Dashboard metrics, timelines and a live event feed for Omni-style Flask APIs."""

__version__ = "0.1.0"
