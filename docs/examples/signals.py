import logging
from collections import Counter

from flask_stubber import ActionRejected, signals

audit_log = logging.getLogger("shop.audit")
rejections = Counter()


def audit(app, stub, action_name, from_state, to_state, post, source, **extra):
    """After the commit: record what happened."""
    audit_log.info(
        "%s %s: %s (%s -> %s) by %s",
        stub.template, stub.stubref, action_name, from_state, to_state, source,
    )


def pause_payments(app, action_name, **extra):
    """Inside the transaction: refuse payments while the shop is paused."""
    if action_name == "payment_received" and app.config.get("PAYMENTS_PAUSED"):
        raise ActionRejected("payments_paused", "Payments are paused; retry later.")


def count_rejection(app, error, status, stubref, action_name, **extra):
    """Count refused webhooks by error code."""
    rejections[error] += 1


def init_app(app):
    """Connect the receivers for this app only."""
    signals.action_executed.connect(audit, app)
    signals.action_executing.connect(pause_payments, app)
    signals.webhook_rejected.connect(count_rejection, app)
