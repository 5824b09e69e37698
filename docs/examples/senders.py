import hashlib
import hmac

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_stubber import StubberWebhooks, Template
from flask_stubber.verifiers import VerificationFailed

db = SQLAlchemy()
stubber = StubberWebhooks()

VERIFIERS = {
    # Standard Webhooks (and Svix): during a rotation, the new secret and the old one.
    "payments": {
        "scheme": "standard-webhooks",
        "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"],
    },
    "stripe": {"scheme": "stripe", "secrets": ["whsec_test_4eC39HqLyjWDarjtT1zdp7dc"], "tolerance": 300},
    "github": {"scheme": "github", "secrets": ["It's a Secret to Everybody"]},
    "tickets": {
        "scheme": "hmac",
        "secrets": ["tk_0c2f9e6b1d"],
        "header": "X-Signature",
        "algorithm": "sha256",
        "encoding": "hex",
        "prefix": "sha256=",
    },
    "slack": {
        "scheme": "hmac",
        "secrets": ["8f742231b10e8888abcd99yyyzzz85a5"],
        "header": "X-Slack-Signature",
        "prefix": "v0=",
        "timestamp_header": "X-Slack-Request-Timestamp",
        "signed_payload": "v0:{timestamp}:{body}",
    },
    "partner": {"scheme": "bearer", "tokens": ["pt_5d41402abc4b2a76b971"]},
    "mail": {"scheme": "mailgun", "secrets": ["key-3ax6xnjp29jd6fds4gc373sgvjxteol0"]},
}

inbox = Template("inbox", start_state="open")
inbox.state("open", actions=["payment", "charge", "push", "ticket", "command", "partner_update", "mail_event"])
inbox.action("payment", webhook=True, methods=["POST"], auth="payments")
inbox.action("charge", webhook=True, methods=["POST"], auth="stripe")
inbox.action("push", webhook=True, methods=["POST"], auth="github")
inbox.action("ticket", webhook=True, methods=["POST"], auth="tickets")
inbox.action("command", webhook=True, methods=["POST"], auth="slack")
inbox.action("partner_update", webhook=True, methods=["POST"], auth="partner")
inbox.action("mail_event", webhook=True, methods=["POST"], auth="mail")


class MailgunSignature:
    """Mailgun signs a timestamp and a token, and sends all three inside the JSON body:
    ``{"signature": {"timestamp": "...", "token": "...", "signature": "<hex>"}, ...}``.
    """

    def __init__(self, settings):
        self.keys = [secret.encode() for secret in settings.secrets()]
        self.tolerance = settings.tolerance

    def verify(self, request, now):
        signed = (request.payload or {}).get("signature")
        if not isinstance(signed, dict):
            raise VerificationFailed("the body has no signature object")
        timestamp, token = str(signed.get("timestamp", "")), str(signed.get("token", ""))
        if not timestamp.isdigit() or abs(now - int(timestamp)) > self.tolerance:
            raise VerificationFailed("the timestamp is missing or outside the tolerance")
        message = (timestamp + token).encode()
        offered = str(signed.get("signature", "")).encode()
        matches = [
            hmac.compare_digest(hmac.new(key, message, hashlib.sha256).hexdigest().encode(), offered)
            for key in self.keys
        ]
        if not any(matches):
            raise VerificationFailed("the signature does not match")
        return token  # the delivery id: each event has a token of its own


stubber.register_verifier_scheme("mailgun", MailgunSignature)
stubber.register_template(inbox)


def create_app(config=None):
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///senders.db"
    app.config["STUBBER_VERIFIERS"] = VERIFIERS
    app.config.update(config or {})
    db.init_app(app)
    stubber.init_app(app)
    return app
