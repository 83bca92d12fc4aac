"""Prometheus metrics: the collector a host may register, and the per-process families."""

from .collector import DashboardCollector

__all__ = ["DashboardCollector"]
