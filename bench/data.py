"""The benchmark's database: the ``db`` object, stubrefs by number, bulk loading, databases.

Rows are bulk-loaded with ``COPY`` (PostgreSQL) or ``executemany`` (SQLite) on the raw
driver connection, not through flask-stubber, so that a million stubs load in seconds.
Stub number ``i`` always has the stubref :func:`stubref` ``(i)``, which is how the load
generator's Lua script addresses a different stub with every request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import create_engine, make_url, text

db = SQLAlchemy()

_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DAY = "2026-01-01"

#: The tables of each implementation: (stub table, history table).
TABLES = {"stubber": ("stubber_stubs", "stubber_posts"), "baseline": ("bench_orders", "bench_order_events")}

_STUB_COLUMNS = "stubref, template, state, data, subject, created_at, updated_at"
_POST_COLUMNS = "stub_id, action_name, source, from_state, to_state, data, delivery_id, created_at"


def stubref(number: int) -> str:
    """Return the stubref of stub ``number``: ``2026-01-01-`` and ``number`` in base 36, as ``XXXX-XXXX``."""
    chars = []
    for _ in range(8):
        number, digit = divmod(number, 36)
        chars.append(_DIGITS[digit])
    ref = "".join(reversed(chars))
    return f"{_DAY}-{ref[:4]}-{ref[4:]}"


def _stub_rows(start: int, count: int, state: str) -> Iterator[tuple[Any, ...]]:
    now = datetime.now(UTC)
    data = json.dumps({"customer": "ada", "items": ["book", "lamp"], "total": 25})
    for number in range(start, start + count):
        yield (stubref(number), "order", state, data, "Order", now, now)


def load_stubs(table: str, start: int, count: int, state: str = "awaiting_payment") -> None:
    """Bulk-load stubs ``start`` .. ``start + count - 1`` into ``table``, in state ``state``."""
    _load(table, _STUB_COLUMNS, _stub_rows(start, count, state))


def load_posts(table: str, stub_table: str, number: int, count: int) -> None:
    """Bulk-load ``count`` history rows onto stub ``number``."""
    with db.engine.connect() as conn:
        stub_id = conn.execute(text(f"SELECT id FROM {stub_table} WHERE stubref = :r"), {"r": stubref(number)}).scalar()
    now = datetime.now(UTC)
    rows = ((stub_id, "add_note", "webhook", "paid", "paid", '{"note": "hello"}', None, now) for _ in range(count))
    _load(table, _POST_COLUMNS, rows)


def _load(table: str, columns: str, rows: Iterator[tuple[Any, ...]]) -> None:
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if db.engine.dialect.name == "postgresql":
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * (columns.count(",") + 1))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(rows))
        raw.commit()
    finally:
        raw.close()
    analyze(table)


def analyze(table: str) -> None:
    """Refresh the planner's statistics for ``table``, as autovacuum would on a live table."""
    with db.engine.connect() as conn:
        conn.execute(text(f"ANALYZE {table}"))
        conn.commit()


def reset_tables() -> None:
    """Drop and create every table of the benchmark app (inside its app context)."""
    db.session.remove()
    db.drop_all()
    db.create_all()


@contextmanager
def postgresql_database(server_url: str, name: str) -> Iterator[str]:
    """Create the database ``name`` on the server of ``server_url``, yield its URL, drop it afterwards."""
    url = make_url(server_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
