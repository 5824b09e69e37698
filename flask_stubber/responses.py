"""How a webhook that succeeded answers: JSON, synchronous bodies, redirects, confirmation pages.

- JSON (always for JSON callers): ``{"success", "stubref", "action_name", "post_id"}``.
  In synchronous mode (``?_synchronous=true`` or ``synchronous.enable``) it adds
  ``state``, ``data`` and, when the action ran tasks, ``tasks`` (their results by task
  name, such as the ``stubref`` a ``create_stub`` task made); a ``synchronous.response``
  template replaces the whole body, its ``~~stub.*``, ``~~stubpost.*`` and
  ``~~tasks.<name>.*`` strings substituted (a missing path gives ``null``).
- ``303 See Other`` to the action's ``redirect`` URL for browsers: a form post
  (urlencoded or multipart) or a GET whose ``Accept`` prefers ``text/html`` over JSON.
  ``~~`` values in the URL are percent-encoded, so data cannot steer it to another host.
- The confirmation page of an explicit webhook with ``confirm``: GET shows a small HTML
  page whose form posts back with a token bound to the webhook; only that POST runs the
  action (mail scanners that prefetch links run nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from flask import current_app, request
from flask.wrappers import Response
from markupsafe import Markup, escape

from .engine import Engine, Outcome
from .errors import ActionNotInState, ConfirmationRequired
from .explicit import find_webhook, run_webhook
from .tasks import substitute, substitute_text

#: The form field that carries the confirmation token.
CONFIRM_FIELD = "_confirm"


def respond(
    outcome: Outcome, status: int = 200, *, synchronous: bool = False, confirm: Mapping[str, str] | None = None
) -> Response:
    """Answer a successful execution.

    :param synchronous: The caller asked for ``?_synchronous=true``.
    :param confirm: The confirmation texts, when this is the POST from a confirmation page:
        without a redirect it is answered with a small "done" page.
    """
    options = outcome.webhooks
    if options.redirect and (confirm is not None or is_browser()):
        url = substitute_text(options.redirect, outcome.context(), escape=lambda text: quote(text, safe=""))
        return current_app.response_class(status=303, headers={"Location": url})
    if confirm is not None:
        context = outcome.context()
        done = substitute_text(confirm["done"], context)
        return html_page(substitute_text(confirm["title"], context), Markup("<p>{}</p>").format(done))
    synchronous = synchronous or options.synchronous
    if synchronous and options.response is not None:
        return json_response(substitute(options.response, outcome.context()), status)
    body = outcome.body(synchronous)
    if synchronous and outcome.results:
        body["tasks"] = outcome.results
    return json_response(body, status)


def is_browser() -> bool:
    """Return whether the request is a browser's: a form post or GET that prefers HTML to JSON."""
    if request.method not in ("GET", "POST") or request.is_json:
        return False
    return request.accept_mimetypes.best_match(("application/json", "text/html")) == "text/html"


def json_response(body: Any, status: int, mimetype: str = "application/json") -> Response:
    """Return ``body`` serialized as JSON."""
    return current_app.response_class(json.dumps(body, default=str), status=status, mimetype=mimetype)


# -- explicit webhooks and their confirmation page ------------------------------------------------


def call_explicit(engine: Engine, uuid: str, payload: dict[str, Any], *, synchronous: bool) -> Response:
    """Run the explicit webhook ``uuid``, or show or check its confirmation page, and answer."""
    hook = find_webhook(engine, uuid)
    template = engine.ext.get_template(hook.stub.template)
    action = template.actions.get(hook.action_name) if template is not None else None
    if template is None or action is None or action.webhooks.confirm is None:
        return respond(run_webhook(engine, hook, payload, method=request.method), synchronous=synchronous)
    confirm = action.webhooks.confirm
    token = confirm_token(hook.uuid)
    if request.method == "GET":
        if hook.action_name not in template.states.get(hook.stub.state, ()):
            raise ActionNotInState(
                f"The action {hook.action_name!r} is not available in the state {hook.stub.state!r}.",
                state=hook.stub.state,
                available_actions=template.webhook_actions(hook.stub.state),
            )
        context = {"stub": {"stubref": hook.stub.stubref, "state": hook.stub.state, "data": hook.stub.data}}
        return confirmation_page(confirm, token, payload, context)
    given = payload.pop(CONFIRM_FIELD, "")
    if not (isinstance(given, str) and hmac.compare_digest(given.encode(), token.encode())):
        raise ConfirmationRequired(
            "This webhook runs from its confirmation page only: open its link and press the button."
        )
    return respond(run_webhook(engine, hook, payload, method=request.method), confirm=confirm)


def confirm_token(uuid: str) -> str:
    """Return the token the confirmation page of webhook ``uuid`` posts back.

    An HMAC-SHA256 of the uuid keyed with the app's ``SECRET_KEY``, or with the uuid
    itself when the app has none.
    """
    secret = current_app.config.get("SECRET_KEY") or uuid
    key = secret if isinstance(secret, bytes) else str(secret).encode()
    return hmac.new(key, f"flask-stubber confirm {uuid}".encode(), hashlib.sha256).hexdigest()


def confirmation_page(
    texts: Mapping[str, str], token: str, payload: Mapping[str, Any], context: Mapping[str, Any]
) -> Response:
    """Return the confirmation page: the texts (``~~stub.*`` substituted) and a form posting back.

    The form keeps the link's query values as hidden fields, so the POST carries the same payload.
    """
    fields = [(CONFIRM_FIELD, token)]
    for key, value in payload.items():
        fields.extend((key, str(v)) for v in (value if isinstance(value, list) else [value]))
    hidden = Markup("").join(
        Markup('<input type="hidden" name="{}" value="{}">').format(k, v) for k, v in fields
    )
    message = substitute_text(texts["message"], context)
    body = Markup('<p>{}</p>\n<form method="post">{}<button type="submit">{}</button></form>').format(
        message, hidden, texts["button"]
    )
    return html_page(substitute_text(texts["title"], context), body)


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>body{{font:1.125rem/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}
button{{font:inherit;padding:.5rem 1.5rem;cursor:pointer}}</style>
</head>
<body>
<main>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"""


def html_page(title: str, body: Markup) -> Response:
    """Return a small page that is neither cached, indexed, framed nor leaks its URL as a referrer."""
    html = _PAGE.format(title=escape(title), body=body)
    response = current_app.response_class(html, status=200, mimetype="text/html")
    response.headers.update({
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Robots-Tag": "noindex",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
        "base-uri 'none'",
    })
    return response
