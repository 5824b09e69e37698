"""Typed errors raised by flask-stubber.

Every error derives from :class:`StubberError`. Errors that can reach an HTTP
caller carry the status and the machine ``code`` used in the
``application/problem+json`` body of the webhook's answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class StubberError(Exception):
    """Base class of every flask-stubber error.

    :param message: A full sentence naming the problem and, where there is one, the fix.
    :param extra: Additional members placed in the problem+json body.
    """

    #: HTTP status used when this error answers a webhook request.
    status: int = 500
    #: Machine readable code, the ``error`` member of the problem body.
    code: str = "internal_error"
    #: Short human title, the ``title`` member of the problem body.
    title: str = "Internal server error"

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.message = message or self.title
        self.extra: dict[str, Any] = extra
        super().__init__(self.message)

    def to_problem(self) -> dict[str, Any]:
        """Return the RFC 9457 problem document for this error."""
        body: dict[str, Any] = {
            "type": f"https://flask-stubber.readthedocs.io/errors/#{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.message,
            "success": False,
            "error": self.code,
        }
        body.update(self.extra)
        return body


class TemplateError(StubberError):
    """A template does not hold together; raised at registration.

    :param message: What is wrong.
    :param template: The template's name.
    :param path: The JSON path of the offending value, such as ``actions.pay.to_state``.
    :param fix: How to fix it.
    """

    code = "template_error"
    title = "Invalid template"

    def __init__(
        self,
        message: str,
        *,
        template: str | None = None,
        path: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.template = template
        self.path = path
        self.fix = fix
        parts = []
        if template is not None:
            parts.append(f"Template {template!r}")
        if path:
            parts.append(f"at {path}")
        prefix = " ".join(parts)
        text = f"{prefix}: {message}" if prefix else message
        if fix:
            text = f"{text} {fix}"
        super().__init__(text)


class ActionRejected(StubberError):
    """Raised by a handler or an ``action_executing`` receiver to refuse an action.

    Nothing is written; the webhook answers with ``status``, ``error`` = ``code``
    and ``detail`` = ``message``.

    :param code: The machine code placed in the ``error`` member.
    :param message: The sentence placed in the ``detail`` member.
    :param status: 409 (conflict with the stub's situation) or 422 (bad payload).
    """

    title = "Action rejected"

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        if status not in (409, 422):
            raise ValueError("ActionRejected status must be 409 or 422.")
        super().__init__(message)
        self.code = code
        self.status = status


class InvalidBody(StubberError):
    """The request body could not be decoded into a JSON object or form."""

    status = 400
    code = "invalid_body"
    title = "Invalid request body"


class Unauthorized(StubberError):
    """The sender could not be verified."""

    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class ConfirmationRequired(StubberError):
    """An explicit webhook that asks for confirmation was posted without its page's token."""

    status = 403
    code = "confirmation_required"
    title = "Confirmation required"


class StubNotFound(StubberError):
    """No stub has that stubref."""

    status = 404
    code = "stub_not_found"
    title = "Stub not found"


class ActionNotFound(StubberError):
    """The action does not exist or cannot be triggered by a webhook."""

    status = 404
    code = "action_not_found"
    title = "Action not found"


class WebhookNotFound(StubberError):
    """No active explicit webhook has that uuid."""

    status = 404
    code = "webhook_not_found"
    title = "Webhook not found"


class MethodNotAllowed(StubberError):
    """The HTTP method is not among the action's ``methods``."""

    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class ActionNotInState(StubberError):
    """The action is not available in the stub's current state.

    :param state: The stub's current state.
    :param available_actions: The webhook-enabled actions available in that state.
    """

    status = 409
    code = "action_not_in_state"
    title = "Action not available in the current state"

    def __init__(self, message: str, *, state: str, available_actions: Sequence[str]) -> None:
        super().__init__(message, state=state, available_actions=list(available_actions))
        self.state = state
        self.available_actions = list(available_actions)


class IdempotencyConflict(StubberError):
    """The same delivery id is still being processed."""

    status = 409
    code = "idempotency_conflict"
    title = "Delivery in progress"


class WebhookConflict(StubberError):
    """A caller-given explicit webhook uuid is bound to another stub or action, or was revoked."""

    status = 409
    code = "webhook_conflict"
    title = "Webhook uuid already in use"


class WebhookGone(StubberError):
    """The explicit webhook expired or was single-use and used."""

    status = 410
    code = "webhook_gone"
    title = "Webhook gone"


class PayloadTooLarge(StubberError):
    """The request body is larger than ``STUBBER_MAX_CONTENT_LENGTH``."""

    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class UnsupportedMediaType(StubberError):
    """The POST body has a content type other than JSON or a form."""

    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class ValidationFailed(StubberError):
    """The payload does not satisfy the action's schema.

    :param errors: The marshmallow messages, per field.
    """

    status = 422
    code = "validation_error"
    title = "Validation failed"

    def __init__(self, message: str, *, errors: Mapping[str, Any] | list[Any]) -> None:
        super().__init__(message, errors=errors)
        self.errors = errors


class IdempotencyKeyReused(StubberError):
    """A delivery id was seen before with a different body."""

    status = 422
    code = "idempotency_key_reused"
    title = "Idempotency key reused"


class RateLimited(StubberError):
    """Too many requests; retry after ``retry_after`` seconds."""

    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, message: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FeatureUnavailable(StubberError):
    """An optional feature is not installed, such as the OpenAPI document without apispec."""

    status = 501
    code = "not_implemented"
    title = "Not implemented"


class InternalError(StubberError):
    """A bug or a failing handler; the transaction was rolled back."""

    status = 500
    code = "internal_error"
    title = "Internal server error"


class Unavailable(StubberError):
    """The database is unreachable; retry after ``retry_after`` seconds."""

    status = 503
    code = "unavailable"
    title = "Service unavailable"

    def __init__(self, message: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after
