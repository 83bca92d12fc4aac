"""Fast bulk inserts: one streaming COPY on PostgreSQL, batched executemany elsewhere."""

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice

from sqlalchemy import JSON, Boolean, DateTime, Table, Uuid

BATCH = 20_000
CHUNK_ROWS = 2_000


def _converter(column):
    kind = column.type
    if isinstance(kind, Boolean):
        return lambda v: "t" if v else "f"
    if isinstance(kind, DateTime):
        return lambda v: v.isoformat(sep=" ")
    if isinstance(kind, Uuid):
        return str
    if isinstance(kind, JSON):
        return json.dumps
    return None


class _CsvStream(io.TextIOBase):
    """A file-like view of CSV text produced on demand, for psycopg2's copy_expert."""

    def __init__(self, chunks: Iterator[str]):
        self._chunks = chunks
        self._buffer = ""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> str:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def _csv_chunks(table: Table, columns: Sequence[str], rows: Iterable[tuple]) -> Iterator[str]:
    converters = [_converter(table.c[name]) for name in columns]
    plain = [i for i, conv in enumerate(converters) if conv is None]
    converted = [(i, conv) for i, conv in enumerate(converters) if conv is not None]
    rows = iter(rows)
    while batch := list(islice(rows, CHUNK_ROWS)):
        buffer = io.StringIO()
        out = []
        for row in batch:
            cells = [None] * len(columns)
            for i in plain:
                value = row[i]
                cells[i] = "\\N" if value is None else value
            for i, conv in converted:
                value = row[i]
                cells[i] = "\\N" if value is None else conv(value)
            out.append(cells)
        csv.writer(buffer, lineterminator="\n").writerows(out)
        yield buffer.getvalue()


def bulk_insert(connection, table: Table, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table`` inside ``connection``.

    On PostgreSQL the rows stream through one COPY, so that the server indexes them
    while the next ones are generated.
    """
    if connection.dialect.name == "postgresql":
        statement = (
            f"COPY {table.name} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
        )
        with connection.connection.dbapi_connection.cursor() as cursor:
            cursor.copy_expert(statement, _CsvStream(_csv_chunks(table, columns, rows)), 1 << 16)
        return
    rows = iter(rows)
    while batch := list(islice(rows, BATCH)):
        connection.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in batch])


@contextmanager
def indexes_deferred(connection, table: Table):
    """On PostgreSQL, drop the table's secondary indexes and rebuild them afterwards.

    Building an index once over loaded rows is several times faster than maintaining it
    row by row; use it around a bulk load into an emptied table.
    """
    if connection.dialect.name != "postgresql":
        yield
        return
    for index in table.indexes:
        index.drop(connection)
    yield
    for index in table.indexes:
        index.create(connection)
