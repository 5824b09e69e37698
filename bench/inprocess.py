"""In-process measurements with Flask's test client: time per webhook, round trips, flat cost."""

from __future__ import annotations

import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .app import BODIES, create_app
from .data import TABLES, db, load_posts, load_stubs, reset_tables, stubref

#: URL of each target; ``{ref}`` and ``{action}`` are filled in per request.
PATHS = {
    "floor": "/floor/{ref}/{action}",
    "baseline": "/orders/{ref}/{action}",
    "stubber": "/webhooks/im/{ref}/{action}",
}
#: The two workloads: a validated webhook that leaves the state, and an update that keeps it.
WORKLOADS = {"transition": "payment_received", "update": "add_note"}
#: Slices each series is timed in, taking turns with the others.
BATCHES = 10


def _timings(app: Flask, target: str, action: str, numbers: Iterable[int]) -> tuple[list[float], int]:
    client = app.test_client()
    body = json.dumps(BODIES[action]).encode()
    path = PATHS[target]
    timings: list[float] = []
    errors = 0
    for number in numbers:
        url = path.format(ref=stubref(number), action=action)
        start = time.perf_counter()
        response = client.post(url, data=body, content_type="application/json")
        timings.append((time.perf_counter() - start) * 1e6)
        if response.status_code != 200:
            errors += 1
    return timings, errors


def _summary(timings: list[float], errors: int) -> dict[str, Any]:
    timings = sorted(timings)
    return {
        "requests": len(timings),
        "errors": errors,
        "mean_us": round(statistics.fmean(timings), 1),
        "p50_us": round(timings[len(timings) // 2], 1),
        "p99_us": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 1),
    }


def time_requests(app: Flask, target: str, action: str, numbers: Iterable[int]) -> dict[str, Any]:
    """POST ``action`` to the stubs ``numbers`` one after the other; return the timings in microseconds."""
    return _summary(*_timings(app, target, action, numbers))


#: One series of an interleaved measurement: the app, the endpoint, the action and the stubs.
Job = tuple[Flask, str, str, Sequence[int]]


def interleaved(jobs: dict[str, Job], batches: int) -> dict[str, dict[str, Any]]:
    """Time every job in ``batches`` slices, taking turns, so that a slow spell of the machine hits all alike."""
    collected: dict[str, tuple[list[float], list[int]]] = {key: ([], []) for key in jobs}
    keys = list(jobs)
    for batch in range(batches):
        for key in keys[batch % len(keys):] + keys[:batch % len(keys)]:
            app, target, action, numbers = jobs[key]
            size = -(-len(numbers) // batches)
            timings, errors = _timings(app, target, action, numbers[batch * size:(batch + 1) * size])
            collected[key][0].extend(timings)
            collected[key][1].append(errors)
    return {key: _summary(timings, sum(errors)) for key, (timings, errors) in collected.items()}


class RoundTripCounter:
    """Counts what one engine sends to the database.

    ``statements`` are counted by SQLAlchemy's ``before_cursor_execute``. The driver adds
    its own: psycopg sends ``BEGIN`` before the first statement of a transaction (a round
    trip of its own) and ``COMMIT``/``ROLLBACK`` only when a transaction is open, so each
    transaction that executed a statement counts one ``begin`` and one ``commit`` or
    ``rollback``; the pool's rollback-on-return of an idle connection sends nothing.
    On PostgreSQL the count is checked against libpq's protocol trace: one
    ``ReadyForQuery`` message from the server ends every round trip.
    """

    def __init__(self, engine: Engine, trace_path: str | None) -> None:
        self.counts = {"statements": 0, "begin": 0, "commit": 0, "rollback": 0}
        self.open = False
        self.trace_path = trace_path
        self.trace_offset = 0
        event.listen(engine, "before_cursor_execute", self._execute)
        event.listen(engine, "commit", self._end("commit"))
        event.listen(engine, "rollback", self._end("rollback"))
        event.listen(engine.pool, "reset", self._reset)

    def _execute(self, *args: Any) -> None:
        if not self.open:
            self.open = True
            self.counts["begin"] += 1
        self.counts["statements"] += 1

    def _end(self, kind: str) -> Any:
        def listener(*args: Any) -> None:
            if self.open:
                self.open = False
                self.counts[kind] += 1

        return listener

    def _reset(self, *args: Any) -> None:
        self._end("rollback")()

    def start(self) -> None:
        self.counts = dict.fromkeys(self.counts, 0)
        if self.trace_path is not None:
            self.trace_offset = os.path.getsize(self.trace_path)

    def result(self, webhooks: int) -> dict[str, Any]:
        per = {key: round(value / webhooks, 2) for key, value in self.counts.items()}
        per["round_trips"] = round(sum(self.counts.values()) / webhooks, 2)
        if self.trace_path is not None:
            with open(self.trace_path, encoding="utf-8", errors="replace") as trace:
                trace.seek(self.trace_offset)
                ready = sum(1 for line in trace if "\tReadyForQuery" in line and line.startswith("B"))
            per["protocol_round_trips"] = round(ready / webhooks, 2)
        return per


@contextmanager
def traced(app: Flask) -> Iterator[RoundTripCounter]:
    """Count the round trips of ``app``'s engine; on PostgreSQL also trace the wire protocol."""
    with app.app_context():
        engine = db.engine
        trace_path = None
        handle: Any = None
        if engine.dialect.name == "postgresql":
            from psycopg import pq

            handle = tempfile.NamedTemporaryFile("w", suffix=".trace", delete=False)  # noqa: SIM115
            trace_path = handle.name

            def trace(dbapi_connection: Any, record: Any) -> None:
                dbapi_connection.pgconn.trace(handle.fileno())
                dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

            engine.dispose()
            event.listen(engine, "connect", trace)
        counter = RoundTripCounter(engine, trace_path)
    try:
        yield counter
    finally:
        if handle is not None:
            with app.app_context():
                db.engine.dispose()
            handle.close()
            os.unlink(handle.name)


def run_inprocess(url: str, requests: int, warmup: int) -> dict[str, Any]:
    """Time both workloads for every target on ``url``, then count their round trips."""
    app = create_app(url)
    sample = 50
    total = warmup + requests + sample
    with app.app_context():
        reset_tables()
        for stub_table, _ in TABLES.values():
            load_stubs(stub_table, 0, total)
    results: dict[str, Any] = {target: {} for target in PATHS}
    for target in PATHS:
        time_requests(app, target, "payment_received", range(warmup))
    measured = range(warmup, warmup + requests)
    for name, action in WORKLOADS.items():
        figures = interleaved({target: (app, target, action, measured) for target in PATHS}, BATCHES)
        for target, summary in figures.items():
            results[target][name] = summary
    with traced(app) as counter:
        for target in PATHS:
            time_requests(app, target, "add_note", range(3))  # a fresh, traced connection
            for name, action in WORKLOADS.items():
                counter.start()
                time_requests(app, target, action, range(total - sample, total))
                results[target][name]["round_trips"] = counter.result(sample)
    return results


def run_flat(open_database: Callable[[str], AbstractContextManager[str]], sizes: list[int], requests: int,
             posts: int) -> dict[str, Any]:
    """Time the update webhook on random stubs of tables of ``sizes`` stubs, then on a stub with ``posts`` posts.

    The update (``add_note``) keeps the state, so a stub may be drawn more than once and even
    the smallest table serves every request with real work. Each size gets a database of its
    own (from ``open_database(suffix)``); the sizes are timed in turns, so the comparison holds
    while the machine's load drifts.
    """
    stub_table, post_table = TABLES["stubber"]
    rng = random.Random(7)
    results: dict[str, Any] = {"sizes": {}}
    with ExitStack() as stack:
        jobs: dict[str, Job] = {}
        apps: dict[int, Flask] = {}
        for size in sizes:
            app = apps[size] = create_app(stack.enter_context(open_database(f"_flat_{size}")))
            started = time.perf_counter()
            with app.app_context():
                reset_tables()
                load_stubs(stub_table, 0, size)
            results["sizes"][str(size)] = {"load_seconds": round(time.perf_counter() - started, 1)}
            time_requests(app, "stubber", "add_note", [rng.randrange(size) for _ in range(requests // 5)])
            jobs[str(size)] = (app, "stubber", "add_note", [rng.randrange(size) for _ in range(requests)])
        for size, figures in interleaved(jobs, BATCHES).items():
            results["sizes"][size].update(figures)
        app = apps[sizes[0]]
        heavy, light = 1, 2
        with app.app_context():
            load_posts(post_table, stub_table, heavy, posts)
        time_requests(app, "stubber", "add_note", [heavy, light] * 20)
        figures = interleaved({
            "with_posts": (app, "stubber", "add_note", [heavy] * requests),
            "without_posts": (app, "stubber", "add_note", [light] * requests),
        }, BATCHES)
        results["posts"] = {"posts": posts, **figures}
        for app in apps.values():
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    return results
