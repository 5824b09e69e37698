"""pytest fixtures for apps built on flask-stubber.

Installed with the package and loaded through the ``pytest11`` entry point. Every
fixture name starts with ``stubber_``, so none clashes with an app's own ``app``,
``client`` or ``db`` fixtures or with pytest-flask's.

- ``stubber_client``: a :class:`~flask_stubber.testing.StubberClient` for your ``app`` fixture.
- ``stubber_signals``: a :class:`~flask_stubber.testing.SignalRecorder` of the signals your
  ``app`` sends during the test.
- ``stubber_app_factory``: builds apps with :func:`~flask_stubber.testing.create_test_app`
  on a SQLite file of the test's own, and disposes of their engines afterwards.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from .testing import SignalRecorder, StubberClient, capture_signals, create_test_app


@pytest.fixture
def stubber_client(request: pytest.FixtureRequest) -> StubberClient:
    """A :class:`~flask_stubber.testing.StubberClient` calling webhooks of the ``app`` fixture."""
    app: Flask = request.getfixturevalue("app")
    return StubberClient(app.test_client())


@pytest.fixture
def stubber_signals(request: pytest.FixtureRequest) -> Iterator[SignalRecorder]:
    """Record the stubber signals the ``app`` fixture sends during the test."""
    app: Flask = request.getfixturevalue("app")
    with capture_signals(app) as recorder:
        yield recorder


@pytest.fixture
def stubber_app_factory(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Return ``factory(stubber, **config)``, building a testing app with its tables created.

    The database is a SQLite file in the test's ``tmp_path`` unless ``database_url=`` is given.
    """
    apps: list[Flask] = []

    def factory(stubber: Any, **config: Any) -> Flask:
        config.setdefault("database_url", f"sqlite:///{tmp_path / f'stubber-{len(apps)}.db'}")
        app = create_test_app(stubber, **config)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            for engine in app.extensions["sqlalchemy"].engines.values():
                engine.dispose()
