"""The extension object: init_app, per-app state, configuration, misuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_stubber import StubberWebhooks, TemplateError

from .conftest import ORDER, make_app


def test_needs_an_app_context_without_pytest_flask() -> None:
    """No context pushed here: the documented RuntimeError."""
    ext = StubberWebhooks()
    with pytest.raises(RuntimeError, match="application context"):
        ext.get_stub("2026-01-01-AAAA-AAAA")


def test_needs_init_app(tmp_path: Path) -> None:
    app = Flask(__name__)
    with app.app_context(), pytest.raises(RuntimeError, match="init_app"):
        StubberWebhooks().create_stub("order")


def test_second_init_app_is_refused(app: Flask, stubber: StubberWebhooks) -> None:
    with pytest.raises(RuntimeError, match="already initialised"):
        stubber.init_app(app)
    with pytest.raises(RuntimeError, match="already initialised"):
        StubberWebhooks().init_app(app)


def test_needs_flask_sqlalchemy() -> None:
    with pytest.raises(RuntimeError, match="Flask-SQLAlchemy"):
        StubberWebhooks(Flask(__name__))


def test_config_defaults_are_set(app: Flask) -> None:
    assert app.config["STUBBER_URL_PREFIX"] == "/webhooks"
    assert app.config["STUBBER_MAX_CONTENT_LENGTH"] == 1024 * 1024
    assert app.config["STUBBER_IDEMPOTENCY_TTL"] == 86400
    assert app.config["STUBBER_TIMESTAMP_TOLERANCE"] == 300
    assert app.extensions["stubber"].config.url_prefix == "/webhooks"


def test_constructor_with_app_and_db(tmp_path: Path) -> None:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'a.db'}"
    db = SQLAlchemy(app)
    ext = StubberWebhooks(app, db=db)
    ext.register_template(ORDER)
    with app.app_context():
        db.create_all()
        stub = ext.create_stub("order")
        assert ext.get_stub(stub.stubref).state == "awaiting_payment"
        db.engine.dispose()


def test_one_instance_serves_two_apps(tmp_path: Path) -> None:
    db = SQLAlchemy()
    ext = StubberWebhooks()
    ext.register_template(ORDER)
    apps = [make_app(f"sqlite:///{tmp_path / f'{i}.db'}", db, ext) for i in range(2)]
    refs = []
    for app in apps:
        with app.app_context():
            db.create_all()
            refs.append(ext.create_stub("order").stubref)
    for app, ref, other in zip(apps, refs, reversed(refs), strict=True):
        with app.app_context():
            assert ext.get_stub(ref) is not None
            assert ext.get_stub(other) is None
            response = app.test_client().post(f"/webhooks/im/{ref}/payment_received", json={"amount": 1})
            assert response.status_code == 200
            db.engine.dispose()


def test_template_folder_adds_app_templates(tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    source = dict(ORDER, name="folder_order")
    (folder / "folder_order.json").write_text(json.dumps(source))
    db = SQLAlchemy()
    ext = StubberWebhooks()
    app = make_app(f"sqlite:///{tmp_path / 'f.db'}", db, ext, STUBBER_TEMPLATE_FOLDER=str(folder))
    other = make_app(f"sqlite:///{tmp_path / 'g.db'}", SQLAlchemy(), ext)
    with app.app_context():
        assert "folder_order" in ext.templates()
    with other.app_context():
        assert "folder_order" not in ext.templates()


def test_template_folder_with_broken_template_fails_init(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text(json.dumps({"name": "bad", "states": {}}))
    with pytest.raises(TemplateError, match="'bad'"):
        make_app(f"sqlite:///{tmp_path / 'f.db'}", SQLAlchemy(), StubberWebhooks(),
                 STUBBER_TEMPLATE_FOLDER=str(tmp_path))


def test_register_schema_needs_a_schema_class(stubber: StubberWebhooks) -> None:
    with pytest.raises(TypeError, match="marshmallow Schema"):
        stubber.register_schema("x", dict)  # type: ignore[arg-type]


def test_public_names() -> None:
    import flask_stubber

    for name in ("StubberWebhooks", "Template", "StubberError", "TemplateError", "ActionRejected", "signals"):
        assert hasattr(flask_stubber, name)
    assert issubclass(flask_stubber.TemplateError, flask_stubber.StubberError)
    assert issubclass(flask_stubber.ActionRejected, flask_stubber.StubberError)


