"""The plugin's questions to the database (SQLAlchemy Core, PostgreSQL and SQLite).

Providers read through the functions of this package; event and automation counts go
through a reader of ``..rollups``, which answers them from raw rows or from rollups plus
raw rows, so the providers never know which.
"""
