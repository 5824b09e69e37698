"""Signatures made the way each sender makes them, independently of flask-stubber.

Standard Webhooks and Svix signatures come from their own PyPI packages, Stripe's from the
``stripe`` package; GitHub's and the generic HMAC ones follow the senders' documentation.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

import standardwebhooks
import stripe
from svix.webhooks import Webhook as SvixWebhook

SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_OLD_SECRET = "whsec_c2VjcmV0LWtleS1vbmUtdGhhdC13YXMtcm90YXRlZA=="
STRIPE_SECRET = "whsec_stripe_current"
STRIPE_OLD_SECRET = "whsec_stripe_previous"
GITHUB_SECRET = "gh-s3cret"
HMAC_SECRET = "ticket-key"
SLACK_SECRET = "slack-signing-secret"
TOKEN = "t0ken-partner"
API_KEY = "k3y-partner"

#: The app config every signed test uses: one verifier per scheme, several secrets each.
VERIFIERS: dict[str, Any] = {
    "payments": {"scheme": "standard-webhooks", "secrets": [SW_SECRET, SW_OLD_SECRET]},
    "stripe": {"scheme": "stripe", "secrets": [STRIPE_SECRET, STRIPE_OLD_SECRET], "tolerance": 600},
    "github": {"scheme": "github", "secrets": [GITHUB_SECRET, "gh-previous"]},
    "tickets": {"scheme": "hmac", "secrets": [HMAC_SECRET], "header": "X-Signature", "algorithm": "sha256",
                "encoding": "hex", "prefix": "sha256="},
    "slack": {"scheme": "hmac", "secrets": [SLACK_SECRET], "header": "X-Slack-Signature", "prefix": "v0=",
              "timestamp_header": "X-Slack-Request-Timestamp", "signed_payload": "v0:{timestamp}:{body}"},
    "partner": {"scheme": "bearer", "tokens": [TOKEN, "t0ken-old"]},
    "apikey": {"scheme": "bearer", "tokens": [API_KEY], "header": "X-Api-Key"},
}
ALL_SECRETS = [SW_SECRET, SW_OLD_SECRET, STRIPE_SECRET, STRIPE_OLD_SECRET, GITHUB_SECRET, HMAC_SECRET, SLACK_SECRET,
               TOKEN, API_KEY, "gh-previous", "t0ken-old"]


def now() -> int:
    return int(time.time())


def standard(body: bytes, *, secret: str = SW_SECRET, msg_id: str = "msg_1", ts: int | None = None) -> dict[str, str]:
    ts = now() if ts is None else ts
    signature = standardwebhooks.Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, UTC), body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def svix(body: bytes, *, secret: str = SW_SECRET, msg_id: str = "msg_1", ts: int | None = None) -> dict[str, str]:
    ts = now() if ts is None else ts
    signature = SvixWebhook(secret).sign(msg_id, datetime.fromtimestamp(ts, UTC), body.decode())
    return {"svix-id": msg_id, "svix-timestamp": str(ts), "svix-signature": signature}


def stripe_signature(body: bytes, *, secret: str = STRIPE_SECRET, ts: int | None = None) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=ts or now())
    return {"Stripe-Signature": header}


def stripe_documented(body: bytes, secrets: list[str], ts: int) -> dict[str, str]:
    """Stripe's documented scheme by hand: ``t=`` then one ``v1=`` per secret being rolled."""
    parts = [f"t={ts}"] + [
        "v1=" + hmac.new(s.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest() for s in secrets
    ]
    return {"Stripe-Signature": ",".join(parts)}


def github(body: bytes, *, secret: str = GITHUB_SECRET, delivery: str = "72d3162e") -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Delivery": delivery}


def tickets(body: bytes, *, secret: str = HMAC_SECRET) -> dict[str, str]:
    return {"X-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def slack(body: bytes, *, secret: str = SLACK_SECRET, ts: int | None = None) -> dict[str, str]:
    ts = now() if ts is None else ts
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Signature": f"v0={digest}", "X-Slack-Request-Timestamp": str(ts)}


def partner(body: bytes, *, token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def apikey(body: bytes, *, token: str = API_KEY) -> dict[str, str]:
    return {"X-Api-Key": token}
