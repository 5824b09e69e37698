"""Settings of the example app, read from the environment.

``DATABASE_URL`` picks the database (a SQLite file in the instance folder by
default); ``SECRET_KEY`` keys the tokens of the confirmation pages of email links
(a random key per start by default); ``STRIPE_WEBHOOK_SECRET`` is the signing
secret of the payment processor's endpoint (a demo secret by default, fine on
your laptop only).
"""

from __future__ import annotations

import os
import secrets
from typing import Any

#: The signing secret used when ``STRIPE_WEBHOOK_SECRET`` is not set. Demo use only.
DEMO_STRIPE_SECRET = "whsec_example_app_demo_secret"

#: Pool settings per gunicorn worker process; see docs/deploying.rst.
POOL = {"pool_size": 5, "max_overflow": 5, "pool_timeout": 10}


def database_url(url: str) -> str:
    """Return ``url`` with the psycopg 3 driver named for PostgreSQL URLs.

    ``postgres://`` and ``postgresql://`` (as hosting platforms hand them out)
    would otherwise ask SQLAlchemy for psycopg2.
    """
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def stripe_secret() -> str:
    """Return the payment processor's signing secret."""
    return os.environ.get("STRIPE_WEBHOOK_SECRET", DEMO_STRIPE_SECRET)


def from_environment() -> dict[str, Any]:
    """Return the app's configuration."""
    url = database_url(os.environ.get("DATABASE_URL", "sqlite:///example.db"))
    engine_options: dict[str, Any] = {"pool_pre_ping": True}
    if not url.startswith("sqlite"):
        engine_options.update(POOL)
    return {
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
        # Keys the confirmation tokens of email links. Set it in production: every worker
        # process must share it (a random key only works with gunicorn's preload_app).
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_hex(32),
        # The stubber templates of this app: every *.json file in example_app/templates/.
        "STUBBER_TEMPLATE_FOLDER": "templates",
        # Named sender verifiers, referenced by "auth" in the templates.
        "STUBBER_VERIFIERS": {
            "stripe": {"scheme": "stripe", "secrets": [stripe_secret()], "tolerance": 300},
        },
        # Stripe retries an event for up to three days: remember deliveries as long.
        "STUBBER_IDEMPOTENCY_TTL": 3 * 24 * 3600,
    }
