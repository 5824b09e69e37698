"""A small shop that takes payment notifications through flask-stubber.

Run it with ``flask --app example_app run`` and see the README for the calls.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify
from flask_sqlalchemy import SQLAlchemy

from flask_stubber import StubberWebhooks, signals

db = SQLAlchemy()
stubber = StubberWebhooks()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the example app; ``DATABASE_URL`` points it at another database."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get("DATABASE_URL", "sqlite:///example.db")
    app.config["STUBBER_TEMPLATE_FOLDER"] = "templates"
    app.config.update(config or {})
    db.init_app(app)
    stubber.init_app(app)

    @app.post("/orders")
    def new_order() -> Any:
        stub = stubber.create_stub("order", {"items": ["book"]}, subject="Order")
        return jsonify(stubref=stub.stubref, pay_url=stubber.webhook_url(stub, "payment_received")), 201

    @app.get("/orders/<stubref>")
    def show_order(stubref: str) -> Any:
        stub = stubber.get_stub(stubref)
        if stub is None:
            return jsonify(error="no such order"), 404
        return jsonify(stubref=stub.stubref, state=stub.state, data=stub.data,
                       history=[[p.action_name, p.from_state, p.to_state] for p in stub.posts])

    @signals.action_executed.connect_via(app)
    def log_action(sender: Flask, **kwargs: Any) -> None:
        sender.logger.info("%s: %s -> %s", kwargs["action_name"], kwargs["from_state"], kwargs["to_state"])

    with app.app_context():
        db.create_all()
    return app
