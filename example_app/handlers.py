"""Action handlers of the example app's templates.

Each runs inside the action's transaction, after the payload was validated
against the template's fields and before anything is committed.
"""

from __future__ import annotations

from typing import Any

from flask_stubber import ActionContext, ActionRejected

from .extensions import stubber


@stubber.action_handler("support_request", "ticket_update")
def ticket_update(stub: Any, payload: dict[str, Any], ctx: ActionContext) -> None:
    """Follow the ticket's status: the action may move to any of its targets."""
    stub.data["ticket_id"] = payload["ticket_id"]
    ctx.to_state = payload["status"]


@stubber.action_handler("support_request", "add_comment")
def add_comment(stub: Any, payload: dict[str, Any], ctx: ActionContext) -> None:
    """Keep every comment, oldest first, next to the latest payload."""
    comment = {"author": payload["author"], "body": payload["body"]}
    stub.data["comments"] = [*stub.data.get("comments", []), comment]


@stubber.action_handler("order", "payment_received")
def payment_received(stub: Any, payload: dict[str, Any], ctx: ActionContext) -> None:
    """Accept the payment only when it covers the order; remember the payment intent."""
    intent = payload["data"]["object"]
    expected = (stub.data["total"], stub.data["currency"])
    if (intent["amount"], intent["currency"]) != expected:
        raise ActionRejected(
            "amount_mismatch",
            f"The order is {expected[0]} {expected[1]}; the payment was {intent['amount']} {intent['currency']}.",
            status=422,
        )
    stub.data["payment"] = {"event": payload["id"], "intent": intent["id"], "amount": intent["amount"]}
