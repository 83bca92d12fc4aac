"""The plugin's own /api/v2 routes."""
