"""Flask-Migrate autogenerate: ``flask db init/migrate/upgrade`` on an empty database, then a webhook."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from flask_stubber.testing import StubberClient, assert_posted

from .conftest import ORDER

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

APP = """
import json, os
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_stubber import StubberWebhooks

db = SQLAlchemy()
migrate = Migrate()
stubber = StubberWebhooks()
stubber.register_template(json.loads({order!r}))


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["MIGRATE_DATABASE_URL"]
    app.config["SERVER_NAME"] = "hooks.example.com"
    db.init_app(app)
    migrate.init_app(app, db)
    stubber.init_app(app)
    return app
"""


def _postgresql() -> Any:
    url = os.environ.get("TEST_POSTGRESQL_URL")
    return pytest.param(url, id="postgresql") if url else pytest.param(
        None, id="postgresql", marks=pytest.mark.skip(reason="TEST_POSTGRESQL_URL is not set"))


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite"), _postgresql()])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with no tables: a SQLite file, or a PostgreSQL database made for the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    import psycopg

    server = make_url(request.param)
    name = f"{server.database}_migrate"
    admin = server.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flask(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]), MIGRATE_DATABASE_URL=url,
               FLASK_APP="migapp:create_app")
    done = subprocess.run([sys.executable, "-m", "flask", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, f"flask {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def test_migrate_upgrade_then_serve_a_webhook(tmp_path: Path, empty_database: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "migapp.py").write_text(textwrap.dedent(APP.format(order=json.dumps(ORDER))))
    flask(tmp_path, empty_database, "db", "init")
    flask(tmp_path, empty_database, "db", "migrate", "-m", "stubber tables")
    [migration] = (tmp_path / "migrations" / "versions").glob("*.py")
    script = migration.read_text()
    assert "op.create_table('stubber_stubs'" in script and "op.create_table('stubber_posts'" in script
    engine = create_engine(empty_database)
    try:
        assert not {"stubber_stubs", "stubber_posts"} & set(inspect(engine).get_table_names())
        flask(tmp_path, empty_database, "db", "upgrade")
        inspector = inspect(engine)
        assert {"stubber_stubs", "stubber_posts", "alembic_version"} <= set(inspector.get_table_names())
        assert {c["name"] for c in inspector.get_columns("stubber_stubs")} >= {
            "id", "stubref", "template", "state", "data", "subject", "created_at", "updated_at"}
        assert [fk["referred_table"] for fk in inspector.get_foreign_keys("stubber_posts")] == ["stubber_stubs"]
        # The models and the migrated schema agree: a second autogenerate finds nothing to do.
        again = flask(tmp_path, empty_database, "db", "migrate", "-m", "nothing")
        assert "No changes in schema detected." in again.stdout + again.stderr
        stubref = json.loads(flask(tmp_path, empty_database, "stubber", "create", "order", "--json").stdout)["stubref"]
    finally:
        engine.dispose()

    spec = importlib.util.spec_from_file_location(f"migapp_{tmp_path.name}", tmp_path / "migapp.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setenv("MIGRATE_DATABASE_URL", empty_database)
    spec.loader.exec_module(module)
    app = module.create_app()
    with app.app_context():
        try:
            response = StubberClient(app.test_client()).run(stubref, "payment_received", json={"amount": 12})
            assert response.status_code == 200, response.get_json()
            assert_posted(stubref, "payment_received", to_state="paid", source="webhook", payload={"amount": 12})
        finally:
            module.db.engine.dispose()
