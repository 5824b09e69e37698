"""The example app's outgoing email, written to the app's log instead of being sent.

The access request's ``send_link`` action binds the links and keeps them in the stub's
data as ``mail`` (so the stub page shows what was sent); :func:`send_links` sends
that email once the action is committed, never for work that was rolled back.
"""

from __future__ import annotations

from typing import Any

from flask import Flask


def send_links(sender: Flask, *, stub: Any, action_name: str, **extra: Any) -> None:
    """An ``action_executed`` receiver: email the links ``send_link`` bound (here: log the email)."""
    if (stub.template, action_name) != ("access_request", "send_link"):
        return
    mail = stub.data["mail"]
    sender.logger.info("Mail to %s\n%s", mail["to"], body(mail))


def body(mail: dict[str, Any]) -> str:
    """Return the text of the email."""
    return (
        "Someone asked for access to the help desk with this email address.\n"
        f"If it was you, open this link to confirm: {mail['confirm']}\n"
        f"If it was not you, open this one: {mail['decline']}\n"
        "Each link works once, for a day."
    )
