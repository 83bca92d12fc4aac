"""The only place the plugin's SQL lives (SQLAlchemy Core, PostgreSQL and SQLite).

Every provider reads the database through the functions of this package, so that a
pre-aggregated path can replace the raw scans here without touching the providers.
"""
