"""An app factory for the multi-process tests: ``gunicorn 'tests.gunicorn_app:create_app()'``.

The database comes from ``STUBBER_TEST_DATABASE_URL``; the tables are created by the test.
"""

from __future__ import annotations

import copy
import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_stubber import StubberWebhooks

from .conftest import ORDER


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["STUBBER_TEST_DATABASE_URL"]
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True, "pool_size": 8}
    db = SQLAlchemy(app)
    stubber = StubberWebhooks(db=db)
    stubber.register_template(copy.deepcopy(ORDER))
    stubber.init_app(app)
    return app
