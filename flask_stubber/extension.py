"""The extension object and its per-application state."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Flask, current_app, url_for
from marshmallow import Schema

from .deliveries import DeliveryStore
from .engine import ActionContext, Engine
from .errors import StubberError, StubNotFound
from .explicit import WebhookSpec, create_webhook, revoke_webhook
from .models import get_models
from .tasks import BUILTIN_TASKS, TaskHandler
from .templates import CompiledTemplate, Template, compile_template, load_source
from .verifiers import SCHEMES, Verifier, VerifierFactory, build_verifiers, check_template

if TYPE_CHECKING:
    from datetime import timedelta

    from flask_sqlalchemy import SQLAlchemy

    from .engine import Outcome

#: An action handler: ``handler(stub, payload, ctx)``.
ActionHandler = Callable[[Any, dict[str, Any], ActionContext], None]
F = TypeVar("F", bound=Callable[..., Any])

TemplateSource = str | os.PathLike[str] | Mapping[str, Any] | Template

_DEFAULTS: dict[str, Any] = {
    "STUBBER_URL_PREFIX": "/webhooks",
    "STUBBER_TEMPLATE_FOLDER": None,
    "STUBBER_MAX_CONTENT_LENGTH": 1024 * 1024,
    "STUBBER_VERIFIERS": {},
    "STUBBER_DEFAULT_AUTH": None,
    "STUBBER_REQUIRE_AUTH": False,
    "STUBBER_IDEMPOTENCY_TTL": 86400,
    "STUBBER_TIMESTAMP_TOLERANCE": 300,
    "STUBBER_RATE_LIMIT": None,
    "STUBBER_RATE_LIMIT_STORAGE_URI": "memory://",
}


@dataclass
class StubberConfig:
    """The ``STUBBER_*`` settings of one application, read once in ``init_app``."""

    url_prefix: str
    template_folder: str | None
    max_content_length: int
    verifiers: Mapping[str, Any]
    default_auth: str | None
    require_auth: bool
    idempotency_ttl: int
    timestamp_tolerance: int
    rate_limit: str | None = None
    rate_limit_storage_uri: str = "memory://"


@dataclass(eq=False)
class StubberState:
    """What ``app.extensions["stubber"]`` holds for one application."""

    ext: StubberWebhooks
    config: StubberConfig
    engine: Engine
    templates: dict[str, CompiledTemplate]
    verifiers: dict[str, Verifier] = field(default_factory=dict)
    deliveries: DeliveryStore = field(init=False)

    def __post_init__(self) -> None:
        engine = self.engine
        self.deliveries = DeliveryStore(engine.models.delivery, engine.db.session, self.config.idempotency_ttl)

    def check_template(self, template: CompiledTemplate) -> None:
        """Refuse ``template`` when its verifiers do not hold together with this app's config."""
        check_template(template, self.verifiers, default_auth=self.config.default_auth,
                       require_auth=self.config.require_auth)


class StubberWebhooks:
    """Receive webhooks that drive stubs through their templates.

    :param app: The application to initialise now; or call :meth:`init_app` later.
    :param db: The host's Flask-SQLAlchemy extension; found in ``app.extensions`` when omitted.
    :param stub_model: A host model built on :class:`~flask_stubber.models.StubMixin` to
        store stubs in, instead of the default ``stubber_stubs`` table.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        db: SQLAlchemy | None = None,
        stub_model: type[Any] | None = None,
    ) -> None:
        self._db = db
        self._stub_model = stub_model
        self._sources: dict[str, dict[str, Any]] = {}
        self._templates: dict[str, CompiledTemplate] = {}
        self._schemas: dict[str, type[Schema]] = {}
        self._handlers: dict[tuple[str, str], ActionHandler] = {}
        self._tasks: dict[str, TaskHandler] = dict(BUILTIN_TASKS)
        #: Changes whenever a template is registered; caches of derived documents (OpenAPI) compare it.
        self.revision = 0
        self._verifier_schemes: dict[str, VerifierFactory] = dict(SCHEMES)
        self._states: weakref.WeakSet[StubberState] = weakref.WeakSet()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, *, db: SQLAlchemy | None = None) -> None:
        """Wire the extension into ``app``.

        :param db: Overrides the ``db`` given to the constructor for this app.
        :raises RuntimeError: when ``app`` already has flask-stubber, or has no Flask-SQLAlchemy.
        """
        if "stubber" in app.extensions:
            raise RuntimeError(
                "flask-stubber is already initialised on this app; call init_app once per app."
            )
        db = db or self._db or app.extensions.get("sqlalchemy")
        if db is None:
            raise RuntimeError(
                "flask-stubber needs Flask-SQLAlchemy: call db.init_app(app) before stubber.init_app(app), "
                "or pass db=."
            )
        for key, value in _DEFAULTS.items():
            app.config.setdefault(key, value)
        config = _read_config(app)
        verifiers = build_verifiers(config.verifiers, self._verifier_schemes, config.timestamp_tolerance)
        if config.default_auth is not None and config.default_auth not in verifiers:
            raise StubberError(
                f"STUBBER_DEFAULT_AUTH names {config.default_auth!r}, which is not in STUBBER_VERIFIERS."
            )
        state = StubberState(
            ext=self, config=config, engine=Engine(self, db, get_models(db, self._stub_model)), templates={},
            verifiers=verifiers,
        )
        if config.template_folder:
            for path in sorted(Path(app.root_path, config.template_folder).glob("*.json")):
                compiled = self._compile(load_source(path))
                state.templates[compiled.name] = compiled
        for template in {**self._templates, **state.templates}.values():
            state.check_template(template)
        app.extensions["stubber"] = state
        self._states.add(state)

        from .cli import stubber_cli
        from .views import blueprint

        app.register_blueprint(blueprint, url_prefix=config.url_prefix)
        app.cli.add_command(stubber_cli)
        if config.rate_limit is not None:
            from .limits import init_rate_limit

            init_rate_limit(app, blueprint, config.rate_limit, config.rate_limit_storage_uri)

    # -- registration ---------------------------------------------------------------

    def register_template(self, source: TemplateSource) -> CompiledTemplate:
        """Check, compile and register a template for every app of this extension.

        :param source: A path to a JSON file, a dict in the Stubber format, or a :class:`Template`.
        :raises TemplateError: when the template does not hold together.
        """
        compiled = self._compile(load_source(source))
        for state in list(self._states):
            state.check_template(compiled)
        self._templates[compiled.name] = compiled
        self.revision += 1
        return compiled

    def _compile(self, source: dict[str, Any]) -> CompiledTemplate:
        return compile_template(source, schemas=self._schemas, tasktypes=self._tasks.keys())

    def register_schema(self, name: str, schema: type[Schema]) -> None:
        """Make a marshmallow schema available to templates as ``action_meta.schema``.

        Register it before the templates that name it.

        :param name: The name templates use.
        :param schema: A :class:`marshmallow.Schema` subclass.
        :raises TypeError: when ``schema`` is not a Schema class.
        """
        if not (isinstance(schema, type) and issubclass(schema, Schema)):
            raise TypeError(f"register_schema({name!r}, ...) needs a marshmallow Schema class.")
        self._schemas[name] = schema

    def action_handler(self, template: str, action: str) -> Callable[[F], F]:
        """Register ``handler(stub, payload, ctx)`` to run inside an action's transaction.

        The handler may change ``stub.data``, set ``ctx.to_state`` to one of ``ctx.targets``,
        or raise :class:`~flask_stubber.ActionRejected` to refuse. Registering another handler
        for the same action replaces it.

        :param template: The template's name.
        :param action: The action's name.
        """

        def decorator(func: F) -> F:
            self._handlers[(template, action)] = func
            return func

        return decorator

    def register_verifier_scheme(self, name: str, factory: VerifierFactory) -> None:
        """Make a sender verification scheme available to ``STUBBER_VERIFIERS``.

        ``factory(settings)`` receives a :class:`~flask_stubber.verifiers.Settings` and returns
        an object with ``verify(request, now) -> delivery_id | None`` that raises
        :class:`~flask_stubber.verifiers.VerificationFailed` to refuse. Register schemes
        before ``init_app``, which builds the verifiers.
        """
        if not callable(factory):
            raise TypeError(f"register_verifier_scheme({name!r}, ...) needs a callable factory.")
        self._verifier_schemes[name] = factory

    def task(self, tasktype: str) -> Callable[[F], F]:
        """Register ``handler(ctx, params) -> dict | None`` for a template tasktype.

        The handler gets a :class:`~flask_stubber.tasks.TaskContext` and the task's params,
        with ``~~`` substitutions applied; what it returns is the task's result. Register it
        before the templates that use the tasktype.

        :param tasktype: The ``tasktype`` templates name.
        """

        def decorator(func: F) -> F:
            self._tasks[tasktype] = func
            return func

        return decorator

    # -- lookups used by the engine -------------------------------------------------

    def get_template(self, name: str) -> CompiledTemplate | None:
        """Return the template ``name`` for the current app, or ``None``."""
        own = _state().templates.get(name)
        return own if own is not None else self._templates.get(name)

    def templates(self) -> dict[str, CompiledTemplate]:
        """Return every template the current app serves, by name."""
        return {**self._templates, **_state().templates}

    def get_handler(self, template: str, action: str) -> ActionHandler | None:
        """Return the handler for ``template``/``action``, or ``None``."""
        return self._handlers.get((template, action))

    def get_task(self, tasktype: str) -> TaskHandler:
        """Return the handler for ``tasktype``."""
        return self._tasks[tasktype]

    # -- operations -----------------------------------------------------------------

    def create_stub(
        self, template_name: str, data: Mapping[str, Any] | None = None, *, subject: str | None = None
    ) -> Any:
        """Create a stub of ``template_name`` in its start state, committed, and return it.

        ``stub_created`` is sent after the commit, with the source ``api``.

        :param template_name: The template of the new stub.
        :param data: The stub's initial data (copied).
        :param subject: A free text describing the stub.
        :raises ActionNotFound: when no such template is registered.
        """
        return _state().engine.create_stub(template_name, data, subject=subject)

    def run_action(
        self, stub_or_ref: Any, action_name: str, data: Mapping[str, Any] | None = None, *, source: str = "api"
    ) -> Any:
        """Run ``action_name`` on a stub in one transaction and return the new post.

        Availability in the current state, validation, handlers and signals apply as for
        webhooks; ``webhooks.enable`` is not required.

        :param stub_or_ref: The stub or its stubref.
        :param action_name: The action to run.
        :param data: The payload, validated with the action's schema.
        :param source: Recorded on the post and sent with the signals.
        :raises StubberError: the refusal, as a webhook would answer it:
            :class:`~flask_stubber.errors.StubNotFound`,
            :class:`~flask_stubber.errors.ActionNotFound`,
            :class:`~flask_stubber.errors.ActionNotInState`,
            :class:`~flask_stubber.errors.ValidationFailed`,
            :class:`~flask_stubber.ActionRejected`,
            :class:`~flask_stubber.errors.InternalError` or
            :class:`~flask_stubber.errors.Unavailable`. Nothing is written then.
        """
        outcome: Outcome = _state().engine.run_action(_ref(stub_or_ref), action_name, data, source=source)
        return outcome.post

    def get_stub(self, stubref: str) -> Any:
        """Return the stub with ``stubref`` (case-insensitive), or ``None``."""
        return _state().engine.get_stub(stubref)

    def available_actions(self, stub: Any) -> list[str]:
        """Return the actions available in the stub's current state, webhook-enabled or not.

        :param stub: The stub or its stubref.
        :raises StubNotFound: when no stub has that stubref.
        """
        if isinstance(stub, str):
            found = self.get_stub(stub)
            if found is None:
                raise StubNotFound(f"No stub has the stubref {stub!r}.")
            stub = found
        template = self.get_template(stub.template)
        return list(template.states.get(stub.state, ())) if template is not None else []

    def create_webhook(
        self,
        stub_or_ref: Any,
        action_name: str,
        *,
        uuid: str | None = None,
        expires_in: float | timedelta | None = None,
        single_use: bool = False,
    ) -> Any:
        """Bind an explicit webhook (``/webhooks/ex/<uuid>``) to ``action_name`` on a stub, committed.

        The action must be available in the stub's state when the webhook is called; it needs no
        ``webhooks.enable``. Calling again with the same ``uuid``, stub and action updates that
        webhook (idempotent).

        :param uuid: Your own uuid; a fresh ``uuid4`` when omitted.
        :param expires_in: Seconds (or a timedelta) until calls answer ``410 webhook_gone``.
        :param single_use: The webhook runs once; later calls answer ``410 webhook_gone``.
        :returns: The webhook; ``webhook.url`` is its absolute URL.
        :raises StubNotFound: when no stub has that stubref.
        :raises ActionNotFound: when the stub's template has no such action.
        :raises WebhookConflict: when ``uuid`` is bound to another stub or action, or was revoked.
        :raises ValueError: for a ``uuid`` that is not a uuid, or a non-positive ``expires_in``.

        .. versionadded:: 0.1
        """
        spec = WebhookSpec.check(action_name, uuid=uuid, expires_in=expires_in, single_use=single_use)
        return create_webhook(_state().engine, _ref(stub_or_ref), spec)

    def revoke_webhook(self, uuid: str) -> None:
        """Revoke the explicit webhook ``uuid`` for good; calls then answer ``404 webhook_not_found``.

        :raises WebhookNotFound: when no webhook has that uuid.

        .. versionadded:: 0.1
        """
        revoke_webhook(_state().engine, uuid)

    def prune_deliveries(self, older_than: int | None = None) -> int:
        """Delete recorded deliveries older than ``older_than`` seconds (default
        ``STUBBER_IDEMPOTENCY_TTL``) and return how many were deleted.
        """
        return _state().deliveries.prune(older_than)

    def webhook_url(self, stub_or_ref: Any, action_name: str) -> str:
        """Return the absolute URL of the implicit webhook for ``action_name`` on a stub.

        It needs a request context, or ``SERVER_NAME`` in an app context.

        :param stub_or_ref: The stub or its stubref.
        :param action_name: The action the URL runs.
        """
        return url_for("stubber.implicit", stubref=_ref(stub_or_ref), action_name=action_name, _external=True)


def _ref(stub_or_ref: Any) -> str:
    return stub_or_ref if isinstance(stub_or_ref, str) else str(stub_or_ref.stubref)


def _state() -> StubberState:
    """Return the current app's flask-stubber state.

    :raises RuntimeError: outside an app context, or when ``init_app`` was not called.
    """
    try:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    except RuntimeError:
        raise RuntimeError(
            "flask-stubber needs an application context; use 'with app.app_context():'."
        ) from None
    state = app.extensions.get("stubber")
    if state is None:
        raise RuntimeError(
            "flask-stubber is not initialised on this app; call stubber.init_app(app) in the app factory."
        )
    return state  # type: ignore[no-any-return]


def _read_config(app: Flask) -> StubberConfig:
    cfg = app.config
    prefix = str(cfg["STUBBER_URL_PREFIX"]).rstrip("/")
    max_length = cfg["STUBBER_MAX_CONTENT_LENGTH"]
    if not isinstance(max_length, int) or max_length <= 0:
        raise StubberError("STUBBER_MAX_CONTENT_LENGTH must be a positive number of bytes.")
    for key in ("STUBBER_IDEMPOTENCY_TTL", "STUBBER_TIMESTAMP_TOLERANCE"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int) or cfg[key] <= 0:
            raise StubberError(f"{key} must be a positive number of seconds.")
    if not isinstance(cfg["STUBBER_VERIFIERS"], Mapping):
        raise StubberError("STUBBER_VERIFIERS must be a dict of verifier name -> settings.")
    for key in ("STUBBER_DEFAULT_AUTH", "STUBBER_RATE_LIMIT"):
        if cfg[key] is not None and not isinstance(cfg[key], str):
            raise StubberError(f"{key} must be a string or None.")
    return StubberConfig(
        url_prefix=prefix,
        template_folder=cfg["STUBBER_TEMPLATE_FOLDER"],
        max_content_length=max_length,
        verifiers=dict(cfg["STUBBER_VERIFIERS"]),
        default_auth=cfg["STUBBER_DEFAULT_AUTH"],
        require_auth=bool(cfg["STUBBER_REQUIRE_AUTH"]),
        idempotency_ttl=int(cfg["STUBBER_IDEMPOTENCY_TTL"]),
        timestamp_tolerance=int(cfg["STUBBER_TIMESTAMP_TOLERANCE"]),
        rate_limit=cfg["STUBBER_RATE_LIMIT"],
        rate_limit_storage_uri=str(cfg["STUBBER_RATE_LIMIT_STORAGE_URI"]),
    )



