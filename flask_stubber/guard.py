"""What every webhook request passes through around its engine call: sender verification
and idempotency.

A :class:`Guard` is made per request by the view pipeline and handed to the engine, which
calls :meth:`Guard.admit` once it knows which action (or create route) the request targets:
first before its transaction with a plain read where it can, then again under the stub's row
lock; and :meth:`Guard.record` just before the commit. So a forged request is refused with
``401`` before any row lock is taken or anything is written, and a delivery is recorded in
the same transaction as the action it caused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING

from flask import Response

from .deliveries import DeliveryStore, delivery_key
from .errors import StubberError, Unauthorized
from .verifiers import SignedRequest, VerificationFailed, Verifier

if TYPE_CHECKING:
    from .engine import Outcome

logger = logging.getLogger("flask_stubber")

#: Headers that carry a delivery id when no verifier vouches for one, in order of preference.
DELIVERY_HEADERS = ("Idempotency-Key", "webhook-id", "svix-id")


class Guard:
    """Verification and idempotency for one webhook request.

    :param verifiers: The app's verifiers by name.
    :param default_auth: ``STUBBER_DEFAULT_AUTH``.
    :param store: The app's deliveries.
    :param signed: The request's raw body and headers.
    :param print_: The request's fingerprint, see :func:`~flask_stubber.deliveries.fingerprint`.
    :param respond: Builds the success response for an outcome.
    :param deferred: A body error to raise only after the sender was verified, so that an
        unverified sender learns nothing but ``401``.
    """

    def __init__(
        self,
        *,
        verifiers: dict[str, Verifier],
        default_auth: str | None,
        store: DeliveryStore,
        signed: SignedRequest,
        print_: str,
        respond: Callable[[Outcome], Response],
        deferred: StubberError | None = None,
    ) -> None:
        self.verifiers = verifiers
        self.default_auth = default_auth
        self.store = store
        self.signed = signed
        self.print = print_
        self.respond = respond
        self.deferred = deferred
        self.response: Response | None = None
        self._verified: set[str] = set()
        self._vouched: str | None = None
        self._scope: str | None = None
        self._claims = ExitStack()

    @property
    def early(self) -> bool:
        """Whether a look-up before the transaction is worth it (a verifier or a delivery id)."""
        return bool(self.verifiers) or self.delivery_id() is not None

    def delivery_id(self) -> str | None:
        """The delivery id: the one a verifier vouched for, else the first delivery header."""
        if self._vouched is not None:
            return delivery_key(self._vouched)
        for name in DELIVERY_HEADERS:
            value = self.signed.header(name)
            if value is not None:
                return delivery_key(value.strip())
        return None

    def admit(self, auth: str | None, scope: str | None) -> None:
        """Verify the sender for ``auth`` (or the default verifier) and check the delivery id.

        Called with ``scope=None`` when the target is unknown, to verify only.

        :raises Unauthorized: when the request fails the verifier.
        :raises DeliveryReplayed: for a finished delivery; carries its stored response.
        :raises IdempotencyKeyReused: for a known delivery id with another request.
        :raises IdempotencyConflict: while the same delivery runs in this process.
        """
        name = auth or self.default_auth
        if name is not None and name not in self._verified:
            self._verify(name)
        if self.deferred is not None:
            raise self.deferred
        key = self.delivery_id()
        if scope is None or key is None:
            return
        if self._scope != scope:
            self._claims.enter_context(self.store.claim(scope, key))
            self._scope = scope
        self.store.check(scope, key, self.print)

    def _verify(self, name: str) -> None:
        verifier = self.verifiers.get(name)
        if verifier is None:
            logger.error("No verifier named %r is configured; the webhook was refused.", name)
            raise Unauthorized("The request could not be authenticated.")
        try:
            vouched = verifier.verify(self.signed, time.time())
        except VerificationFailed as exc:
            logger.info("A webhook failed the verifier %r: %s.", name, exc.reason)
            raise Unauthorized("The request could not be authenticated.") from None
        self._verified.add(name)
        if vouched:
            self._vouched = vouched

    def record(self, outcome: Outcome) -> None:
        """Build the response and, for a delivery with an id, record both in the transaction."""
        self.response = self.respond(outcome)
        key = self.delivery_id()
        if self._scope is not None and key is not None:
            self.store.add(self._scope, key, self.print, self.response, outcome)

    def close(self) -> None:
        """Release this request's claims; prune old deliveries now and then."""
        self._claims.close()
        if self.response is not None and self._scope is not None:
            self.store.prune_if_due()

