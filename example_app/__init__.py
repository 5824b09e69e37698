"""An example shop and help desk that run on flask-stubber.

Run it with ``flask --app example_app run``, then drive it with
``python -m example_app.demo`` (see the README).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from flask_stubber import signals

from . import config, handlers, mail, views
from .extensions import db, stubber

__all__ = ["create_app", "handlers"]


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the app; ``overrides`` replaces settings (tests use it)."""
    app = Flask(__name__, template_folder="pages")
    app.config.from_mapping(config.from_environment())
    app.config.update(overrides or {})
    db.init_app(app)
    stubber.init_app(app)
    app.register_blueprint(views.bp)
    signals.action_executed.connect(log_action, app)
    signals.action_executed.connect(mail.send_links, app)
    if app.logger.level == logging.NOTSET:
        # Show the app's INFO lines (actions, email) under `flask run` and gunicorn.
        app.logger.setLevel(logging.INFO)
    with app.app_context():
        # A real deployment runs migrations instead; see docs/migrations.rst.
        db.create_all()
        # No connection opened here may be shared by forked gunicorn workers.
        db.engine.dispose()
    return app


def log_action(sender: Flask, **kwargs: Any) -> None:
    """Log every committed action: ``order 2026-...: payment_received awaiting_payment -> paid``."""
    stub = kwargs["stub"]
    sender.logger.info(
        "%s %s: %s %s -> %s",
        stub.template, stub.stubref, kwargs["action_name"], kwargs["from_state"], kwargs["to_state"],
    )
