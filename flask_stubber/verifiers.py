"""Sender verification: named verifiers built from ``STUBBER_VERIFIERS``.

A verifier checks one request's **raw body bytes** and headers, and answers with the
delivery id it vouches for (or ``None``), or raises :class:`VerificationFailed`. The
webhook pipeline turns a failure into ``401 unauthorized`` without saying which part
failed; the reason is logged (never a secret).

Built-in schemes: ``standard-webhooks`` (with the ``svix-*`` header aliases), ``stripe``,
``github``, ``hmac`` and ``bearer``. Every scheme takes several secrets (or tokens) so they
can be rotated, compares in constant time, and, where the scheme signs a timestamp,
refuses timestamps more than ``tolerance`` seconds off in either direction.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import StubberError, TemplateError
from .templates import CompiledTemplate

__all__ = [
    "SCHEMES",
    "Settings",
    "SignedRequest",
    "VerificationFailed",
    "Verifier",
    "VerifierFactory",
    "build_verifiers",
    "check_template",
]

#: At most this many signatures of one header are compared, whatever a sender sends.
MAX_SIGNATURES = 16
_TIMESTAMP = re.compile(r"\A[0-9]{1,15}\Z")


class VerificationFailed(Exception):
    """A request failed a verifier's check; ``reason`` is for logs only, never for the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SignedRequest:
    """What a verifier sees of a request.

    :param body: The raw body bytes, exactly as received.
    :param headers: The request headers (any case).
    :param payload: The decoded body when it is a JSON object or form, else ``None``.
    """

    body: bytes
    headers: Mapping[str, str]
    payload: Mapping[str, Any] | None = None
    _lower: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lower", {k.lower(): v for k, v in self.headers.items()})

    def header(self, name: str) -> str | None:
        """Return the header ``name`` (case-insensitive), or ``None`` when absent or empty."""
        value = self._lower.get(name.lower())
        return value if value else None


class Verifier(Protocol):
    """A configured verifier: checks a request and returns the delivery id it vouches for."""

    def verify(self, request: SignedRequest, now: float) -> str | None:
        """Return the delivery id (or ``None``); raise :class:`VerificationFailed` to refuse."""
        ...


class Settings:
    """The settings of one named verifier, read with clear errors.

    A scheme factory receives this object, takes the settings it knows, and the rest
    are refused as unknown, so a typo such as ``"secret"`` fails at ``init_app``.

    :param name: The verifier's name, the key in ``STUBBER_VERIFIERS``.
    :param values: Its settings mapping.
    :param default_tolerance: ``STUBBER_TIMESTAMP_TOLERANCE``.
    """

    def __init__(self, name: str, values: Mapping[str, Any], default_tolerance: int) -> None:
        self.name = name
        self.values = values
        self.default_tolerance = default_tolerance
        self._taken: set[str] = {"scheme"}

    def fail(self, message: str) -> StubberError:
        """Return the error for a bad setting; ``message`` must never contain a secret."""
        return StubberError(f"STUBBER_VERIFIERS[{self.name!r}]: {message}")

    def get(self, key: str, default: Any = None) -> Any:
        """Return the raw setting ``key``, or ``default``."""
        self._taken.add(key)
        return self.values.get(key, default)

    def string(self, key: str, default: str | None = None, *, choices: Iterable[str] = ()) -> str:
        """Return a non-empty string setting; required when ``default`` is ``None``."""
        value = self.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(f"{key!r} must be a non-empty string.")
        allowed = tuple(choices)
        if allowed and value not in allowed:
            raise self.fail(f"{key!r} must be one of {', '.join(map(repr, allowed))}, not {value!r}.")
        return value

    def optional_string(self, key: str) -> str | None:
        """Return a string setting, or ``None`` when it is absent."""
        return None if self.values.get(key) is None else self.string(key)

    def secrets(self, key: str = "secrets") -> list[str]:
        """Return a non-empty list of non-empty strings (the values are never shown in errors)."""
        value = self.get(key)
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
            raise self.fail(f"{key!r} must be a non-empty list of strings, such as [\"...\"]; several allow rotation.")
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.fail(f"{key}[{index}] must be a non-empty string.")
        return list(value)

    @property
    def tolerance(self) -> int:
        """The ``tolerance`` setting in seconds, else ``STUBBER_TIMESTAMP_TOLERANCE``."""
        value = self.get("tolerance", self.default_tolerance)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail("'tolerance' must be a positive number of seconds.")
        return value

    def finish(self) -> None:
        """Refuse settings that no part of the scheme read."""
        for key in self.values:
            if key not in self._taken:
                hint = difflib.get_close_matches(str(key), sorted(self._taken), n=1)
                fix = f" Did you mean {hint[0]!r}?" if hint else ""
                raise self.fail(f"unknown setting {key!r}.{fix}")


#: A scheme: builds a verifier from its settings.
VerifierFactory = Callable[[Settings], Verifier]


# -- checks shared by the schemes ------------------------------------------------------


def _matches(expected: Iterable[bytes], offered: Iterable[str]) -> bool:
    """Compare every expected signature with every offered one, in constant time each."""
    wanted = list(expected)
    found = False
    for candidate in list(offered)[:MAX_SIGNATURES]:
        given = candidate.encode("utf-8", "replace")
        for signature in wanted:
            found |= hmac.compare_digest(signature, given)
    return found


def _timestamp(value: str | None, now: float, tolerance: int) -> str:
    if value is None or not _TIMESTAMP.match(value):
        raise VerificationFailed("the timestamp is missing or not a number of seconds")
    if abs(now - int(value)) > tolerance:
        raise VerificationFailed("the timestamp is outside the tolerance")
    return value


def _digest(algorithm: str, key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, algorithm).digest()


# -- the schemes ------------------------------------------------------------------------


class StandardWebhooks:
    """`Standard Webhooks <https://www.standardwebhooks.com>`_: ``webhook-id``,
    ``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64>`` entries separated by
    spaces), HMAC-SHA256 over ``id.timestamp.body`` with ``whsec_`` secrets. The
    ``svix-id``, ``svix-timestamp`` and ``svix-signature`` aliases are accepted. The delivery
    id is ``webhook-id``.
    """

    def __init__(self, keys: list[bytes], tolerance: int) -> None:
        self.keys = keys
        self.tolerance = tolerance

    @classmethod
    def from_settings(cls, settings: Settings) -> StandardWebhooks:
        keys = []
        for index, secret in enumerate(settings.secrets()):
            raw = secret.strip().removeprefix("whsec_")
            try:
                key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if not key:
                raise settings.fail(f"secrets[{index}] is not a base64 secret such as 'whsec_...'.")
            keys.append(key)
        return cls(keys, settings.tolerance)

    def verify(self, request: SignedRequest, now: float) -> str | None:
        msg_id = request.header("webhook-id") or request.header("svix-id")
        stamp = request.header("webhook-timestamp") or request.header("svix-timestamp")
        offered = request.header("webhook-signature") or request.header("svix-signature")
        if msg_id is None or offered is None:
            raise VerificationFailed("the webhook-id or webhook-signature header is missing")
        stamp = _timestamp(stamp, now, self.tolerance)
        message = f"{msg_id}.{stamp}.".encode() + request.body
        expected = [base64.b64encode(_digest("sha256", key, message)) for key in self.keys]
        versioned = [part[3:] for part in offered.split() if part.startswith("v1,")]
        if not _matches(expected, versioned):
            raise VerificationFailed("no v1 signature matches")
        return msg_id


class Stripe:
    """Stripe: ``Stripe-Signature: t=<timestamp>,v1=<hex>[,v1=...]``, HMAC-SHA256 over
    ``timestamp.body`` keyed with the endpoint secret as written (``whsec_...``). The
    delivery id is the event's ``id`` from the JSON body.
    """

    def __init__(self, secrets: list[str], tolerance: int) -> None:
        self.keys = [s.encode() for s in secrets]
        self.tolerance = tolerance

    @classmethod
    def from_settings(cls, settings: Settings) -> Stripe:
        return cls(settings.secrets(), settings.tolerance)

    def verify(self, request: SignedRequest, now: float) -> str | None:
        header = request.header("Stripe-Signature")
        if header is None:
            raise VerificationFailed("the Stripe-Signature header is missing")
        pairs = [item.split("=", 1) for item in header.split(",") if "=" in item]
        stamps = [v.strip() for k, v in pairs if k.strip() == "t"]
        stamp = _timestamp(stamps[0] if stamps else None, now, self.tolerance)
        offered = [v.strip().lower() for k, v in pairs if k.strip() == "v1"]
        message = f"{stamp}.".encode() + request.body
        expected = [_digest("sha256", key, message).hex().encode() for key in self.keys]
        if not _matches(expected, offered):
            raise VerificationFailed("no v1 signature matches")
        event_id = request.payload.get("id") if request.payload is not None else None
        return event_id if isinstance(event_id, str) and event_id else None


class HMACSignature:
    """A signature of the raw body in one header: GitHub's ``X-Hub-Signature-256`` or any
    other sender's (``hmac`` scheme: ``header``, ``algorithm``, ``encoding``, ``prefix``).

    Optional settings for senders that sign more than the body: ``timestamp_header`` (the
    timestamp is checked against the tolerance), ``id_header`` (the delivery id), and
    ``signed_payload``, a pattern such as ``"v0:{timestamp}:{body}"`` (default ``"{body}"``).
    """

    def __init__(
        self,
        secrets: list[str],
        *,
        header: str,
        algorithm: str = "sha256",
        encoding: str = "hex",
        prefix: str = "",
        timestamp_header: str | None = None,
        id_header: str | None = None,
        signed_payload: str = "{body}",
        tolerance: int = 300,
    ) -> None:
        self.keys = [s.encode() for s in secrets]
        self.header = header
        self.algorithm = algorithm
        self.encoding = encoding
        self.prefix = prefix
        self.timestamp_header = timestamp_header
        self.id_header = id_header
        self.before, _, self.after = signed_payload.partition("{body}")
        self.tolerance = tolerance

    @classmethod
    def github(cls, settings: Settings) -> HMACSignature:
        return cls(settings.secrets(), header="X-Hub-Signature-256", prefix="sha256=", id_header="X-GitHub-Delivery")

    @classmethod
    def from_settings(cls, settings: Settings) -> HMACSignature:
        algorithm = settings.string("algorithm", "sha256", choices=("sha1", "sha256", "sha384", "sha512"))
        encoding = settings.string("encoding", "hex", choices=("hex", "base64"))
        prefix = settings.get("prefix", "")
        if not isinstance(prefix, str):
            raise settings.fail("'prefix' must be a string, such as 'sha256='.")
        pattern = settings.string("signed_payload", "{body}")
        timestamp_header = settings.optional_string("timestamp_header")
        id_header = settings.optional_string("id_header")
        if pattern.count("{body}") != 1:
            raise settings.fail("'signed_payload' must contain '{body}' once, such as 'v0:{timestamp}:{body}'.")
        for placeholder, needed in (("{timestamp}", timestamp_header), ("{id}", id_header)):
            if placeholder in pattern and needed is None:
                raise settings.fail(f"'signed_payload' uses {placeholder}; set the header it comes from.")
        return cls(
            settings.secrets(), header=settings.string("header"), algorithm=algorithm, encoding=encoding,
            prefix=prefix, timestamp_header=timestamp_header, id_header=id_header, signed_payload=pattern,
            tolerance=settings.tolerance,
        )

    def verify(self, request: SignedRequest, now: float) -> str | None:
        offered = request.header(self.header)
        if offered is None or not offered.startswith(self.prefix):
            raise VerificationFailed(f"the {self.header} header is missing or malformed")
        stamp = delivery = ""
        if self.timestamp_header is not None:
            stamp = _timestamp(request.header(self.timestamp_header), now, self.tolerance)
        if self.id_header is not None:
            delivery = request.header(self.id_header) or ""
        fill = {"timestamp": stamp, "id": delivery}
        message = self.before.format_map(fill).encode() + request.body + self.after.format_map(fill).encode()
        digests = [_digest(self.algorithm, key, message) for key in self.keys]
        given = offered[len(self.prefix):].strip()
        if self.encoding == "hex":
            expected = [d.hex().encode() for d in digests]
            given = given.lower()
        else:
            expected = [base64.b64encode(d) for d in digests]
        if not _matches(expected, [given]):
            raise VerificationFailed(f"the {self.header} signature does not match")
        return delivery or None


class Bearer:
    """Static tokens: ``Authorization: Bearer <token>``, or the raw value of another
    ``header`` (such as ``X-Api-Key``). Settings: ``tokens``, optional ``header``.
    """

    def __init__(self, tokens: list[str], header: str | None = None) -> None:
        self.digests = [hashlib.sha256(t.encode()).digest() for t in tokens]
        self.header = header

    @classmethod
    def from_settings(cls, settings: Settings) -> Bearer:
        return cls(settings.secrets("tokens"), settings.optional_string("header"))

    def verify(self, request: SignedRequest, now: float) -> str | None:
        if self.header is None:
            value = request.header("Authorization") or ""
            scheme, _, token = value.partition(" ")
            token = token.strip() if scheme.lower() == "bearer" else ""
        else:
            token = request.header(self.header) or ""
        # Hashing first makes every comparison the same length, whatever was sent.
        offered = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        found = False
        for digest in self.digests:
            found |= hmac.compare_digest(digest, offered)
        if not token or not found:
            raise VerificationFailed("the token is missing or unknown")
        return None


#: The built-in schemes by name.
SCHEMES: dict[str, VerifierFactory] = {
    "standard-webhooks": StandardWebhooks.from_settings,
    "stripe": Stripe.from_settings,
    "github": HMACSignature.github,
    "hmac": HMACSignature.from_settings,
    "bearer": Bearer.from_settings,
}


def build_verifiers(
    config: Any, schemes: Mapping[str, VerifierFactory], default_tolerance: int
) -> dict[str, Verifier]:
    """Build every verifier of ``STUBBER_VERIFIERS``.

    :param config: The ``STUBBER_VERIFIERS`` value: verifier name -> settings.
    :param schemes: The schemes by name, built-in and registered.
    :param default_tolerance: ``STUBBER_TIMESTAMP_TOLERANCE``.
    :raises StubberError: naming the verifier and the setting at fault, never a secret.
    """
    if not isinstance(config, Mapping):
        raise StubberError("STUBBER_VERIFIERS must be a dict of verifier name -> settings.")
    verifiers: dict[str, Verifier] = {}
    for name, values in config.items():
        if not isinstance(values, Mapping):
            raise StubberError(f"STUBBER_VERIFIERS[{name!r}] must be a dict with a 'scheme'.")
        settings = Settings(str(name), values, default_tolerance)
        scheme = values.get("scheme")
        factory = schemes.get(scheme) if isinstance(scheme, str) else None
        if factory is None:
            raise settings.fail(
                f"unknown scheme {scheme!r}; use one of {', '.join(sorted(schemes))}, or register one with "
                "stubber.register_verifier_scheme(name, factory) before init_app."
            )
        verifiers[str(name)] = factory(settings)
        settings.finish()
    return verifiers


def check_template(
    template: CompiledTemplate,
    verifiers: Mapping[str, Verifier],
    *,
    default_auth: str | None,
    require_auth: bool,
) -> None:
    """Refuse a template that names an unknown verifier, or, with ``require_auth``, has
    webhooks that no verifier guards.

    :raises TemplateError: naming every offending action.
    """
    unknown: dict[str, str] = {}
    unguarded: list[str] = []
    entries = [(f"actions.{name}.action_meta.webhooks.auth", a.webhooks.auth, a.webhooks.enable, name)
               for name, a in template.actions.items()]
    create = template.create_options
    create_auth = create.get("auth")
    entries.append(("details.webhooks.create.auth", create_auth if isinstance(create_auth, str) else None,
                    bool(create.get("enable")), "create"))
    for path, auth, enabled, label in entries:
        if auth is not None and auth not in verifiers:
            unknown[path] = auth
        elif enabled and require_auth and auth is None and default_auth is None:
            unguarded.append(label)
    if unknown:
        raise TemplateError(
            f"no verifier named {', '.join(map(repr, sorted(set(unknown.values()))))} is configured.",
            template=template.name,
            path=", ".join(unknown),
            fix="Add it to STUBBER_VERIFIERS (secrets stay in the app config, never in templates).",
        )
    if unguarded:
        raise TemplateError(
            f"STUBBER_REQUIRE_AUTH is on and these webhooks have no verifier: {', '.join(unguarded)}.",
            template=template.name,
            path="action_meta.webhooks.auth",
            fix="Name a verifier in action_meta.webhooks.auth (details.webhooks.create.auth for the create "
            "route) or set STUBBER_DEFAULT_AUTH.",
        )
