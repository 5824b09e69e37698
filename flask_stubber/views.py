"""The ``stubber`` blueprint: HTTP in, one engine call, JSON or problem+json out."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import limits, signals
from .create import create_from_webhook
from .deliveries import DeliveryReplayed, fingerprint
from .engine import Engine, Outcome
from .errors import (
    FeatureUnavailable,
    InternalError,
    InvalidBody,
    MethodNotAllowed,
    PayloadTooLarge,
    RateLimited,
    StubberError,
    Unavailable,
    UnsupportedMediaType,
)
from .extension import StubberState
from .guard import Guard
from .responses import call_explicit, json_response, respond
from .verifiers import SignedRequest

logger = logging.getLogger("flask_stubber")

blueprint = Blueprint("stubber", __name__)

#: Every method is routed so that a wrong one is answered in problem+json, not by Flask.
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_CONTROL = "_synchronous"
#: The deepest nesting of objects and arrays a JSON body may have (MariaDB stores at most
#: 32 levels, and the stub's data adds one).
MAX_NESTING = 30


def _state() -> StubberState:
    return current_app.extensions["stubber"]  # type: ignore[no-any-return]


def _app() -> Any:
    return current_app._get_current_object()  # type: ignore[attr-defined]


@blueprint.route("/im/<stubref>/<action_name>", methods=_ALL_METHODS)
def implicit(stubref: str, action_name: str) -> Response:
    """Run a webhook-enabled action on a stub: ``/webhooks/im/<stubref>/<action_name>``."""
    return handle_webhook(
        "implicit",
        lambda engine, payload: engine.run_action(
            stubref, action_name, payload, source="webhook", webhook=True, method=request.method
        ),
    )


@blueprint.route("/ex/<uuid>", methods=_ALL_METHODS)
def explicit(uuid: str) -> Response:
    """Run the action bound to an explicit webhook: ``/webhooks/ex/<uuid>``."""
    return handle_webhook(
        "explicit", lambda engine, payload: call_explicit(engine, uuid, payload, synchronous=wants_synchronous())
    )


@blueprint.route("/create/<template_name>", methods=_ALL_METHODS)
def create(template_name: str) -> Response:
    """Create a stub of a template that allows it: ``/webhooks/create/<template_name>``."""
    return handle_webhook(
        "create", lambda engine, payload: create_from_webhook(engine, template_name, payload, method=request.method),
        201,
    )


@blueprint.route("/openapi.json", methods=_ALL_METHODS)
def openapi() -> Response:
    """The OpenAPI 3.1 document of the app's webhooks; 501 without the ``openapi`` extra."""
    if request.method != "GET":
        raise MethodNotAllowed(f"The OpenAPI document answers GET, not {request.method}.")
    try:
        from .openapi import openapi_document
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("apispec"):
            raise
        raise FeatureUnavailable(
            "The OpenAPI document needs apispec; install flask-stubber[openapi]."
        ) from None
    return json_response(openapi_document(), 200)


def handle_webhook(
    kind: str, run: Callable[[Engine, dict[str, Any]], Outcome | Response], status: int = 200
) -> Response:
    """The path every webhook takes: announce, read the body, verify the sender, check the
    delivery id, run one engine call, answer.

    The sender is verified, and the delivery id checked, by the engine's hooks once it knows
    the target (see :class:`~flask_stubber.guard.Guard`); a body that cannot be decoded is
    refused only after the sender was verified, so a forger learns nothing but ``401``.

    :param kind: ``implicit``, ``explicit`` or ``create``, as sent with ``webhook_received``.
    :param run: Makes the one engine call with the payload; it may answer itself (a page).
    :param status: The success status.
    """
    signals.webhook_received.send(_app(), request=request, kind=kind)
    state = _state()
    raw = read_body(state.config.max_content_length)
    payload: dict[str, Any] = {}
    deferred: StubberError | None = None
    try:
        payload = parse_payload(raw)
    except (InvalidBody, UnsupportedMediaType) as exc:
        if not state.verifiers:
            raise
        deferred = exc
    query = [(k, v) for k, v in request.args.items(multi=True) if k != _CONTROL]
    guard = Guard(
        verifiers=state.verifiers,
        default_auth=state.config.default_auth,
        store=state.deliveries,
        signed=SignedRequest(raw, dict(request.headers.items()), None if deferred else payload),
        print_=fingerprint(request.method, request.mimetype, query, raw),
        respond=lambda outcome: success(outcome, status),
        deferred=deferred,
    )
    try:
        result = run(state.engine.bind(guard), payload)
    except DeliveryReplayed as replay:
        return replay.response
    finally:
        guard.close()
    if isinstance(result, Response):
        return result
    return guard.response or success(result, status)


def read_body(max_length: int) -> bytes:
    """Return the raw body bytes of a POST (empty for GET), exactly as received.

    :raises MethodNotAllowed: for methods other than GET and POST.
    :raises PayloadTooLarge: before reading a body larger than ``max_length``.
    """
    if request.method == "GET":
        return b""
    if request.method != "POST":
        raise MethodNotAllowed(f"Webhooks accept GET and POST, not {request.method}.")
    too_large = PayloadTooLarge(f"The body is larger than the {max_length} bytes this endpoint accepts.")
    if request.content_length is not None and request.content_length > max_length:
        raise too_large
    # One byte over the limit is read so that a chunked body that is too large is noticed.
    request.max_content_length = max_length + 1
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise too_large from None
    if len(raw) > max_length:
        raise too_large
    return raw


def parse_payload(raw: bytes) -> dict[str, Any]:
    """Decode the payload: the query string on GET, a JSON object or form on POST.

    :raises UnsupportedMediaType: for other content types.
    :raises InvalidBody: for malformed JSON or a JSON value that is not an object.
    """
    if request.method == "GET":
        return _flatten(request.args.to_dict(flat=False), drop=_CONTROL)
    mimetype = request.mimetype
    if mimetype == "application/json" or mimetype.endswith("+json"):
        try:
            value = json.loads(raw, parse_constant=_no_constant) if raw.strip() else {}
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise InvalidBody("The body is not valid JSON.") from None
        if not isinstance(value, dict):
            raise InvalidBody('The JSON body must be an object, such as {"amount": 10}.')
        if _depth(value) > MAX_NESTING:
            raise InvalidBody(f"The JSON body is nested more than {MAX_NESTING} levels deep.")
        return value
    if mimetype in _FORMS:
        try:
            form = request.form.to_dict(flat=False)
        except ValueError:
            raise InvalidBody("The form body could not be decoded.") from None
        return _flatten(form)
    if not mimetype and not raw:
        return {}
    raise UnsupportedMediaType(
        f"POST bodies must be application/json or a form, not {mimetype or 'an untyped body'}."
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any) -> int:
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_NESTING:
            children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
            todo.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _flatten(values: dict[str, list[str]], drop: str | None = None) -> dict[str, Any]:
    return {k: v[0] if len(v) == 1 else v for k, v in values.items() if k != drop}


def wants_synchronous() -> bool:
    """Return whether the caller asked for ``?_synchronous=true``."""
    return request.args.get(_CONTROL, "").lower() in ("1", "true", "yes", "on")


def success(outcome: Outcome, status: int = 200) -> Response:
    """Answer a successful execution; see :mod:`flask_stubber.responses`."""
    return respond(outcome, status, synchronous=wants_synchronous())


@blueprint.errorhandler(Exception)
def handle_error(exc: Exception) -> Response:
    """Answer every error of the blueprint with ``application/problem+json``."""
    error: StubberError
    if isinstance(exc, StubberError):
        error = exc
    elif isinstance(exc, RequestEntityTooLarge):
        error = PayloadTooLarge("The body is larger than this endpoint accepts.")
    elif isinstance(exc, HTTPException) and exc.code == 429:
        error = RateLimited("Too many requests; retry after the time in Retry-After.", retry_after=limits.retry_after())
    elif isinstance(exc, HTTPException):
        error = StubberError(exc.description or exc.name)
        error.status, error.code, error.title = exc.code or 500, exc.name.lower().replace(" ", "_"), exc.name
    else:
        logger.exception("Unhandled error in a webhook.")
        error = InternalError("The webhook failed; nothing was written.")
    args = request.view_args or {}
    signals.webhook_rejected.send(
        _app(), error=error.code, status=error.status,
        stubref=args.get("stubref"), action_name=args.get("action_name"),
    )
    response = json_response(error.to_problem(), error.status, mimetype="application/problem+json")
    if isinstance(error, (RateLimited, Unavailable)):
        response.headers["Retry-After"] = str(error.retry_after)
    return response
