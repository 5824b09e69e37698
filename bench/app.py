"""The benchmark application: flask-stubber, the hand-written baseline and the bare floor in one app.

Three endpoints run under the same server and database:

- ``POST /webhooks/im/<stubref>/<action>``: flask-stubber's implicit webhook;
- ``POST /orders/<stubref>/<action>``: the hand-written baseline (:mod:`bench.baseline`);
- ``POST /floor/<stubref>/<action>``: a view that only parses the JSON body.

``create_app()`` with no argument reads ``BENCH_DATABASE_URL``, so gunicorn can load
``bench.app:create_app()``.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy import event

from flask_stubber import StubberWebhooks, Template

from . import baseline
from .data import db

#: The template of the workload: ``payment_received`` validates its payload and leaves
#: ``awaiting_payment``; ``add_note`` keeps the state and merges its payload into the data.
ORDER = (
    Template("order", start_state="awaiting_payment")
    .state("awaiting_payment", actions=["payment_received", "cancel", "add_note"])
    .state("paid", actions=["ship", "add_note"])
    .state("shipped")
    .state("cancelled")
    .action("payment_received", to_state="paid", webhook=True, methods=["POST"], fields={
        "amount": {"fieldtype": "number", "params": {"min": 0},
                   "validations": [{"validationtype": "required", "invalid_message": "amount is required"}]},
        "currency": {"fieldtype": "select", "params": {"options": [
            {"label": "Rand", "value": "ZAR"}, {"label": "Dollar", "value": "USD"}]}},
    })
    .action("add_note", webhook=True, methods=["POST"], post_data_on_root=True)
    .action("cancel", to_state="cancelled")
    .action("ship", to_state="shipped")
)

#: The request bodies of the two actions.
BODIES: dict[str, dict[str, Any]] = {
    "payment_received": {"amount": 25, "currency": "ZAR", "reference": "pi_3Nk8sF2eZvKYlo2C"},
    "add_note": {"note": "Customer called about delivery", "agent": "ada"},
}

stubber = StubberWebhooks(db=db)
stubber.register_template(ORDER)


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_app(database_url: str | None = None, **config: Any) -> Flask:
    """Build the benchmark app on ``database_url`` (default: ``BENCH_DATABASE_URL``)."""
    app = Flask("bench")
    url = database_url or os.environ["BENCH_DATABASE_URL"]
    engine_options: dict[str, Any] = {}
    if not url.startswith("sqlite"):
        # One connection per worker thread; no pre-ping (it would cost a round trip per request).
        engine_options = {"pool_size": 5, "max_overflow": 10}
    app.config.update(SQLALCHEMY_DATABASE_URI=url, SQLALCHEMY_ENGINE_OPTIONS=engine_options, **config)
    db.init_app(app)
    stubber.init_app(app)
    app.register_blueprint(baseline.blueprint)

    @app.post("/floor/<stubref>/<action_name>")
    def floor(stubref: str, action_name: str) -> Any:
        """The floor: parse the JSON body and answer, no database."""
        payload = request.get_json()
        return jsonify(success=True, stubref=stubref, action_name=action_name, keys=len(payload))

    with app.app_context():
        if url.startswith("sqlite"):
            event.listen(db.engine, "connect", _sqlite_pragmas)
        db.create_all()
    return app


def stub_model() -> Any:
    """Return flask-stubber's stub model for the benchmark's ``db``."""
    return stubber_models().stub


def stubber_models() -> Any:
    """Return flask-stubber's models for the benchmark's ``db``."""
    from flask_stubber.models import get_models

    return get_models(db)
