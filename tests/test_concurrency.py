"""Parallel requests through a real threaded HTTP server against the real database."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from flask_stubber import StubberWebhooks, signals

PARALLEL = 24


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    thread.join(10)


def fire(urls: list[tuple[str, dict[str, Any]]], headers: dict[str, str] | None = None) -> list[requests.Response]:
    barrier = threading.Barrier(len(urls))

    def call(item: tuple[str, dict[str, Any]]) -> requests.Response:
        url, body = item
        with requests.Session() as session:
            barrier.wait(10)
            return session.post(url, json=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(call, urls))


@contextmanager
def executions(app: Flask) -> Iterator[list[str]]:
    """Collect the stubrefs of the actions executed meanwhile."""
    executed: list[str] = []
    receiver = lambda sender, **kw: executed.append(kw["stub"].stubref)  # noqa: E731
    signals.action_executed.connect(receiver, app)
    try:
        yield executed
    finally:
        signals.action_executed.disconnect(receiver, app)


@pytest.mark.slow
def test_same_state_leaving_action_executes_once(app: Flask, server: str, stubber: StubberWebhooks, db) -> None:
    stub = stubber.create_stub("order")
    with executions(app) as executed:
        url = f"{server}/webhooks/im/{stub.stubref}/payment_received"
        responses = fire([(url, {"amount": i}) for i in range(PARALLEL)])
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: PARALLEL - 1}, [r.text for r in responses if r.status_code >= 500]
    assert all(r.json()["error"] == "action_not_in_state" for r in responses if r.status_code == 409)
    assert executed == [stub.stubref]
    db.session.rollback()
    got = stubber.get_stub(stub.stubref)
    assert got.state == "paid"
    assert [p.action_name for p in got.posts] == ["payment_received"]


@pytest.mark.slow
def test_updates_that_keep_the_state_are_all_recorded(app: Flask, server: str, stubber: StubberWebhooks,
                                                      db) -> None:
    stubs = [stubber.create_stub("order") for _ in range(3)]
    calls = [(f"{server}/webhooks/im/{stubs[i % 3].stubref}/add_note", {f"note{i}": i}) for i in range(PARALLEL)]
    responses = fire(calls)
    assert Counter(r.status_code for r in responses) == {200: PARALLEL}
    db.session.rollback()
    for index, stub in enumerate(stubs):
        got = stubber.get_stub(stub.stubref)
        expected = {f"note{i}" for i in range(PARALLEL) if i % 3 == index}
        assert len(got.posts) == len(expected)
        assert expected <= got.data.keys()
