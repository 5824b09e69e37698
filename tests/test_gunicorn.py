"""Several gunicorn worker processes on one PostgreSQL or MariaDB database."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from flask_stubber import StubberWebhooks

from .test_concurrency import fire

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 4
THREADS = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def gunicorn(app: Flask, database_url: str, tmp_path: Path) -> Iterator[str]:
    """Start gunicorn (gthread workers) on a free port once the tables exist; always stop it."""
    if database_url.startswith("sqlite"):
        pytest.skip("Several processes writing one SQLite file is not a deployment this test is about.")
    env = {**os.environ, "STUBBER_TEST_DATABASE_URL": database_url}
    with (tmp_path / "gunicorn.log").open("w+") as log:
        for _ in range(3):
            base = f"http://127.0.0.1:{free_port()}"
            proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--worker-class", "gthread",
                 "--threads", str(THREADS), "--bind", base.removeprefix("http://"), "--graceful-timeout", "5",
                 "--timeout", "60", "tests.gunicorn_app:create_app()"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
            try:
                if _ready(proc, base):
                    yield base
                    return
            finally:
                _stop(proc)
        log.seek(0)
        pytest.fail(f"gunicorn did not start:\n{log.read()[-3000:]}")


def _ready(proc: subprocess.Popen[bytes], base: str) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False  # e.g. the port was taken meanwhile: try another
        try:
            if requests.get(f"{base}/webhooks/im/x/y", timeout=5).status_code == 404:
                return True
        except requests.RequestException:  # not listening yet, or no worker booted yet
            time.sleep(0.2)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _posts(stubber: StubberWebhooks, db: Any, stubref: str) -> list[str]:
    db.session.rollback()
    return [p.action_name for p in stubber.get_stub(stubref).posts]


@pytest.mark.slow
def test_one_execution_per_state_across_processes(gunicorn: str, stubber: StubberWebhooks, db: Any) -> None:
    shared = stubber.create_stub("order").stubref
    independent = [stubber.create_stub("order").stubref for _ in range(50)]
    calls = [(f"{gunicorn}/webhooks/im/{shared}/payment_received", {"amount": i}) for i in range(50)]
    calls += [(f"{gunicorn}/webhooks/im/{ref}/payment_received", {"amount": 1}) for ref in independent]
    responses = fire(calls)
    shared_statuses = Counter(r.status_code for r in responses[:50])
    assert shared_statuses == {200: 1, 409: 49}, [r.text for r in responses if r.status_code >= 500]
    assert all(r.json()["error"] == "action_not_in_state" for r in responses[:50] if r.status_code == 409)
    assert [r.status_code for r in responses[50:]] == [200] * 50
    assert _posts(stubber, db, shared) == ["payment_received"]
    assert all(_posts(stubber, db, ref) == ["payment_received"] for ref in independent)


@pytest.mark.slow
def test_one_delivery_sent_to_every_process_executes_once(gunicorn: str, stubber: StubberWebhooks, db: Any) -> None:
    stubref = stubber.create_stub("order").stubref
    url = f"{gunicorn}/webhooks/im/{stubref}/payment_received"
    responses = fire([(url, {"amount": 9})] * 30, headers={"Idempotency-Key": "evt_across"})
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 409}, [r.text for r in responses]
    assert all(r.json()["error"] == "idempotency_conflict" for r in responses if r.status_code == 409)
    bodies = {json.dumps(r.json(), sort_keys=True) for r in responses if r.status_code == 200}
    assert len(bodies) == 1
    assert sum(r.status_code == 200 and "Idempotent-Replayed" not in r.headers for r in responses) == 1
    assert _posts(stubber, db, stubref) == ["payment_received"]
