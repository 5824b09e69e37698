"""Models: stubrefs, default tables, and a host's own stub model."""

from __future__ import annotations

import re
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ForeignKey, String, inspect
from sqlalchemy.orm import Mapped, mapped_column

from flask_stubber import StubberWebhooks, StubMixin
from flask_stubber.models import new_stubref, normalize_stubref

from .conftest import ORDER


def test_stubref_shape_and_randomness() -> None:
    refs = {new_stubref() for _ in range(2000)}
    assert len(refs) == 2000
    for ref in list(refs)[:50]:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-[A-Z0-9]{4}-[A-Z0-9]{4}", ref)
    groups = {ref[11:] for ref in refs}
    assert len(groups) == 2000


@pytest.mark.parametrize(("given", "expected"), [
    ("2026-01-02-abcd-12ef", "2026-01-02-ABCD-12EF"),
    (" 2026-01-02-ABCD-12EF ", "2026-01-02-ABCD-12EF"),
    ("2026-01-02-ABCD", None),
    ("2026-01-02-ABCD-12EF-X", None),
    ("'; drop table x; --", None),
])
def test_normalize_stubref(given: str, expected: str | None) -> None:
    assert normalize_stubref(given) == expected


def test_default_tables_are_prefixed(app: Flask, db: SQLAlchemy) -> None:
    names = set(inspect(db.engine).get_table_names())
    assert {"stubber_stubs", "stubber_posts"} <= names


def test_stubs_are_unique_and_dated(app: Flask, stubber: StubberWebhooks) -> None:
    from datetime import datetime

    refs = {stubber.create_stub("order").stubref for _ in range(20)}
    assert len(refs) == 20
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert all(ref.startswith(today) for ref in refs)


def test_host_model_with_extra_columns(database_url: str) -> None:
    db = SQLAlchemy()

    class Customer(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "customer"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50))

    class Ticket(StubMixin, db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "tickets"
        priority: Mapped[str] = mapped_column(String(10), default="low")
        customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))

    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    db.init_app(app)
    ext = StubberWebhooks(app, db=db, stub_model=Ticket)
    ext.register_template(ORDER)
    with app.app_context():
        db.drop_all()
        db.create_all()
        try:
            customer = Customer(name="ada")
            db.session.add(customer)
            db.session.commit()
            stub = ext.create_stub("order")
            stub.customer_id = customer.id
            stub.priority = "high"
            db.session.commit()
            response = app.test_client().post(f"/webhooks/im/{stub.stubref}/payment_received", json={"amount": 2})
            assert response.status_code == 200
            db.session.expire_all()
            got: Any = ext.get_stub(stub.stubref)
            assert isinstance(got, Ticket)
            assert (got.priority, got.customer_id, got.state) == ("high", customer.id, "paid")
            assert [p.action_name for p in got.posts] == ["payment_received"]
            names = set(inspect(db.engine).get_table_names())
            assert {"tickets", "stubber_posts_tickets"} <= names
            assert "stubber_stubs" not in names
        finally:
            db.session.remove()
            db.drop_all()
            db.engine.dispose()


def test_models_are_declared_once_per_db(tmp_path: Path) -> None:
    from flask_stubber.models import get_models

    db = SQLAlchemy()
    assert get_models(db) is get_models(db)
    assert get_models(db).stub.__tablename__ == "stubber_stubs"
    assert get_models(db).post.__tablename__ == "stubber_posts"
