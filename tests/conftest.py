"""Fixtures: a fresh app per test, parametrized over the configured databases.

SQLite always runs. PostgreSQL and MariaDB run when ``TEST_POSTGRESQL_URL`` and
``TEST_MARIADB_URL`` are set (``.ci/run`` sets both).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_stubber import StubberWebhooks

ORDER: dict[str, Any] = {
    "name": "order",
    "details": {"busy_start_state": "awaiting_payment", "webhooks": {"create": {"enable": True}}},
    "states": {
        "awaiting_payment": {"actions": ["payment_received", "cancel", "add_note"]},
        "paid": {"actions": ["ship", "add_note"]},
        "shipped": {"actions": []},
        "cancelled": {"actions": []},
    },
    "actions": {
        "payment_received": {
            "to_state": {"paid": {}},
            "fields": {
                "amount": {
                    "fieldtype": "number",
                    "params": {"min": 0},
                    "validations": [{"validationtype": "required", "invalid_message": "amount is required"}],
                },
                "currency": {
                    "fieldtype": "select",
                    "params": {"options": [{"label": "Rand", "value": "ZAR"}, {"label": "Dollar", "value": "USD"}]},
                },
            },
            "action_meta": {"webhooks": {"enable": True}},
        },
        "add_note": {"to_state": {}, "action_meta": {"webhooks": {"enable": True, "post_data_on_root": True}}},
        "cancel": {"to_state": {"cancelled": {}}},
        "ship": {"to_state": {"shipped": {}}, "action_meta": {"webhooks": {"enable": True, "methods": ["POST"]}}},
    },
}


def _database_params() -> list[Any]:
    params: list[Any] = [pytest.param("sqlite", id="sqlite")]
    for name, var in (("postgresql", "TEST_POSTGRESQL_URL"), ("mariadb", "TEST_MARIADB_URL")):
        url = os.environ.get(var)
        if url:
            params.append(pytest.param(url, id=name))
    return params


@pytest.fixture(params=_database_params())
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A database URL: a SQLite file per test, or the configured server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'stubber.db'}"
    return str(request.param)


@pytest.fixture
def db() -> SQLAlchemy:
    return SQLAlchemy()


@pytest.fixture
def stubber() -> StubberWebhooks:
    ext = StubberWebhooks()
    ext.register_template(copy.deepcopy(ORDER))
    return ext


def make_app(database_url: str, db: SQLAlchemy, stubber: StubberWebhooks, **config: Any) -> Flask:
    """Build an app the way a host app factory does."""
    app = Flask("stubber_test_app")
    app.config.update({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "SERVER_NAME": "hooks.example.com",
        **config,
    })
    db.init_app(app)
    stubber.init_app(app)
    return app


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Extra config for the ``app`` fixture; override in a module or with ``indirect``."""
    return {}


@pytest.fixture
def app(database_url: str, db: SQLAlchemy, stubber: StubberWebhooks, app_config: dict[str, Any]) -> Iterator[Flask]:
    app = make_app(database_url, db, stubber, **app_config)
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@contextmanager
def own_tables(db: SQLAlchemy) -> Iterator[None]:
    """Fresh tables for an app, dropped afterwards; call inside its app context."""
    db.drop_all()
    db.create_all()
    try:
        yield
    finally:
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.fixture
def stub(app: Flask, stubber: StubberWebhooks) -> Any:
    """A committed ``order`` stub in ``awaiting_payment``."""
    return stubber.create_stub("order", {"customer": "ada"})


def count_rows(db: SQLAlchemy, model: Any) -> int:
    """Count the rows of ``model``'s table in a fresh transaction."""
    from sqlalchemy import func, select

    db.session.rollback()
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)
