"""The app's own pages: the shop's checkout, the help desk's contact form, access requests,
and a look at every stub.

The webhooks themselves are served by flask-stubber under ``/webhooks``: the contact
form posts straight to ``/webhooks/create/support_request``.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, render_template, request, url_for
from sqlalchemy import select

from flask_stubber.models import get_models

from .extensions import db, stubber

bp = Blueprint("site", __name__)

CURRENCIES = ("zar", "usd", "eur")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def stub_model() -> Any:
    """The model flask-stubber stores this app's stubs with."""
    return get_models(db).stub


@bp.get("/")
def index() -> str:
    """List the latest stubs of every template."""
    model = stub_model()
    stubs = db.session.scalars(select(model).order_by(model.updated_at.desc(), model.id.desc()).limit(50)).all()
    return render_template("index.html", stubs=stubs)


@bp.get("/stubs/<stubref>")
def show_stub(stubref: str) -> dict[str, Any]:
    """Show a stub: its state, data, history and the webhooks that can run now."""
    stub = stubber.get_stub(stubref)
    if stub is None:
        abort(404, description=f"No stub has the stubref {stubref!r}.")
    template = stubber.get_template(stub.template)
    actions = template.webhook_actions(stub.state) if template is not None else []
    return {
        "stubref": stub.stubref,
        "template": stub.template,
        "subject": stub.subject,
        "state": stub.state,
        "data": stub.data,
        "history": [
            {"action": p.action_name, "source": p.source, "from": p.from_state, "to": p.to_state}
            for p in stub.posts
        ],
        "webhooks": {name: stubber.webhook_url(stub, name) for name in actions},
    }


@bp.post("/orders")
def new_order() -> tuple[dict[str, Any], int]:
    """Check out: ``{"items": [...], "total": 2500, "currency": "zar"}`` (total in cents)."""
    body = json_body()
    total, currency = body.get("total"), body.get("currency")
    if not isinstance(total, int) or isinstance(total, bool) or total < 1 or currency not in CURRENCIES:
        abort(422, description=f"Send a positive whole 'total' in cents and a 'currency' among {CURRENCIES}.")
    data = {"items": list(body.get("items") or []), "total": total, "currency": currency}
    stub = stubber.create_stub("order", data, subject=f"Order of {total / 100:.2f} {currency.upper()}")
    return created(stub)


@bp.get("/support")
def support() -> str:
    """The help desk's contact form: a plain HTML form posting to ``/webhooks/create/support_request``."""
    return render_template("support.html")


@bp.get("/support/thanks")
def support_thanks() -> str:
    """Where the contact form's post is redirected: ``/support/thanks?ref=<stubref>``."""
    stub = stubber.get_stub(request.args.get("ref", ""))
    if stub is None or stub.template != "support_request":
        abort(404, description="No support request has that reference.")
    return render_template("thanks.html", stub=stub)


@bp.post("/access-requests")
def new_access_request() -> tuple[dict[str, Any], int]:
    """Ask for access to the help desk: ``{"email": ...}``.

    ``send_link`` binds the confirmation links (its template's ``create_webhook`` tasks)
    and keeps them as ``mail``; :func:`example_app.mail.send_links` sends them after the commit.
    """
    email = json_body().get("email")
    if not (isinstance(email, str) and EMAIL.fullmatch(email)):
        abort(422, description="Send the 'email' address that asks for access.")
    stub = stubber.create_stub("access_request", {"email": email}, subject=f"Access for {email}")
    stubber.run_action(stub, "send_link")
    return created(stub)


def json_body() -> dict[str, Any]:
    """Return the JSON object sent, or answer 400."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="Send a JSON object.")
    return body


def created(stub: Any) -> tuple[dict[str, Any], int]:
    """Answer 201 with the new stub's page and its webhooks."""
    page = show_stub(stub.stubref)
    return {**page, "url": url_for("site.show_stub", stubref=stub.stubref, _external=True)}, 201


@bp.errorhandler(400)
@bp.errorhandler(404)
@bp.errorhandler(422)
def error(exc: Any) -> tuple[dict[str, Any], int]:
    """Answer the app's own errors in JSON."""
    return {"error": exc.name, "detail": exc.description}, exc.code
