"""The extension objects, created once and initialised in :func:`example_app.create_app`."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy

from flask_stubber import StubberWebhooks

db = SQLAlchemy()
stubber = StubberWebhooks()
