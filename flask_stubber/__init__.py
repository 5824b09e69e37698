"""Webhooks that drive long-lived workflow instances (stubs) through state machines."""

from __future__ import annotations

from . import signals
from .engine import ActionContext
from .errors import ActionRejected, StubberError, TemplateError
from .explicit import WebhookMixin
from .extension import StubberWebhooks
from .models import StubMixin, StubPostMixin
from .templates import Template

__all__ = [
    "ActionContext",
    "ActionRejected",
    "StubMixin",
    "StubPostMixin",
    "StubberError",
    "StubberWebhooks",
    "Template",
    "TemplateError",
    "WebhookMixin",
    "signals",
]
