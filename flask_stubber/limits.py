"""Optional rate limiting of the webhook routes with Flask-Limiter.

Switched on by ``STUBBER_RATE_LIMIT`` (a Flask-Limiter limit string such as
``"120/minute"``); needs the ``ratelimit`` extra (``pip install flask-stubber[ratelimit]``).
Requests are counted per client address before anything else is done with them, and one
over the limit is answered ``429 rate_limited`` with ``Retry-After``.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from flask import Blueprint, g

from .errors import StubberError

if TYPE_CHECKING:
    from flask import Flask

_RETRY_AFTER = "_stubber_retry_after"


def init_rate_limit(app: Flask, blueprint: Blueprint, limit: str, storage_uri: str) -> Any:
    """Limit every route of ``blueprint`` on ``app`` to ``limit`` per client address.

    :return: The :class:`flask_limiter.Limiter`.
    :raises StubberError: when Flask-Limiter is not installed or the limit is malformed.
    """
    try:
        from flask_limiter import Limiter
        from flask_limiter.util import get_remote_address
        from limits import parse_many
    except ImportError:
        raise StubberError(
            "STUBBER_RATE_LIMIT needs Flask-Limiter: pip install 'flask-stubber[ratelimit]'."
        ) from None
    try:
        parse_many(limit)
    except ValueError:
        raise StubberError(
            f"STUBBER_RATE_LIMIT {limit!r} is not a rate limit; write e.g. '120/minute' or '10/second;1000/day'."
        ) from None
    limiter = Limiter(get_remote_address, app=app, storage_uri=storage_uri, key_prefix="stubber")
    limiter.limit(limit, on_breach=_remember_reset)(blueprint)
    return limiter


def _remember_reset(request_limit: Any) -> None:
    setattr(g, _RETRY_AFTER, max(1, math.ceil(request_limit.reset_at - time.time())))


def retry_after() -> int:
    """Return the seconds until the breached limit resets, for the ``Retry-After`` header."""
    return int(getattr(g, _RETRY_AFTER, 1))
