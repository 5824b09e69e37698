"""Schemathesis against /webhooks/openapi.json: what the document promises, the webhooks keep.

Schemathesis generates requests from the document, positive and negative, for every
operation, and each answer is checked: no 5xx, every refusal is problem+json, and the
status code, content type, headers and body are the ones the document lists. Most
cases target a stub (or an explicit webhook) made for the case, so that actions run,
validate and refuse; the rest use the generated stubref or uuid.

Runs on SQLite and PostgreSQL. ``STUBBER_CONFORMANCE_EXAMPLES`` sets the examples per
operation and database (default 30); ``-s`` prints how many cases each operation ran.
"""

from __future__ import annotations

import copy
import os
from collections import Counter
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from flask_stubber import StubberWebhooks

from .conftest import ORDER, _database_params
from .test_openapi import CONTACT

EXAMPLES = int(os.environ.get("STUBBER_CONFORMANCE_EXAMPLES", "30"))
TOKEN = {"Authorization": "Bearer t0ken"}
#: Every case's method, path and status, for the summary printed at the end.
RAN: Counter[tuple[str, str, int]] = Counter()


@pytest.fixture(params=[p for p in _database_params() if p.id != "mariadb"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """SQLite, and PostgreSQL when configured; MariaDB adds time, not findings, to these cases."""
    return f"sqlite:///{tmp_path / 'stubber.db'}" if request.param == "sqlite" else str(request.param)


def contact() -> dict[str, Any]:
    """The contact template of test_openapi without the verifier these cases cannot sign for."""
    source = copy.deepcopy(CONTACT)
    note = source["actions"]["note"]
    del note["action_meta"]["webhooks"]["auth"]
    note["fields"] = {"uuid": {"fieldtype": "text"}, "text": {"fieldtype": "text", "params": {"max": 40}}}
    return source


@pytest.fixture
def stubber() -> StubberWebhooks:
    ext = StubberWebhooks()
    ext.register_template(copy.deepcopy(ORDER))
    ext.register_template(contact())
    return ext


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"STUBBER_VERIFIERS": {"partner": {"scheme": "bearer", "tokens": ["t0ken"]}}, "SECRET_KEY": "s"}


#: The operations of the document of these templates (checked by the first test).
OPERATIONS = [
    ("GET", "/webhooks/im/{stubref}/add_note"), ("POST", "/webhooks/im/{stubref}/add_note"),
    ("POST", "/webhooks/im/{stubref}/note"), ("GET", "/webhooks/im/{stubref}/payment_received"),
    ("POST", "/webhooks/im/{stubref}/payment_received"), ("POST", "/webhooks/im/{stubref}/ship"),
    ("POST", "/webhooks/create/contact"), ("POST", "/webhooks/create/order"),
    ("GET", "/webhooks/ex/{uuid}"), ("POST", "/webhooks/ex/{uuid}"),
]


def api(app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi("/webhooks/openapi.json", app)


@schemathesis.check
def problem_json(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every refusal is application/problem+json with the status and a machine code."""
    if response.status_code < 400:
        return None
    assert response.headers["content-type"][0].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == response.status_code and body["success"] is False
    assert isinstance(body["error"], str) and body["error"] and {"type", "title", "detail"} <= body.keys()
    return True


@schemathesis.check
def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """Nothing the document allows, or almost allows, is answered with a 5xx."""
    assert response.status_code < 500, response.text
    return True


CHECKS = [no_server_error, problem_json, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


#: The template whose stubs each implicit action runs on.
OWNER = {"note": "contact"}
#: The actions explicit webhooks are bound to.
BOUND = [("order", "add_note"), ("order", "payment_received"), ("order", "ship"), ("contact", "verify"),
         ("contact", "note")]


def target(stubber: StubberWebhooks, case: Any, data: st.DataObject) -> None:
    """Point three cases in four at a fresh stub (an order maybe paid), or at an explicit webhook bound to
    one of its actions."""
    if data.draw(st.integers(0, 3), label="generated target") == 3:  # Hypothesis favours 0.
        return
    params = case.path_parameters
    if "stubref" in params:
        template = OWNER.get(case.operation.path.rsplit("/", 1)[1], "order")
        stub = stubber.create_stub(template, {"customer": "ada"})
        if template == "order" and data.draw(st.booleans(), label="paid"):
            stubber.run_action(stub, "payment_received", {"amount": 1})
        params["stubref"] = stub.stubref
    elif "uuid" in params:
        template, action = data.draw(st.sampled_from(BOUND), label="bound action")
        stub = stubber.create_stub(template)
        hook = stubber.create_webhook(stub, action, single_use=data.draw(st.booleans(), label="single use"))
        params["uuid"] = hook.uuid


def test_the_operations_are_these(app: Flask) -> None:
    found = [(op.ok().method.upper(), op.ok().path) for op in api(app).get_all_operations()]
    assert sorted(found) == sorted(OPERATIONS)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_the_webhooks_keep_what_the_document_promises(app: Flask, db: SQLAlchemy, stubber: StubberWebhooks,
                                                     method: str, path: str) -> None:
    operation = api(app)[path][method]
    cases = st.one_of(*(operation.as_strategy(mode) for mode in GenerationMode))

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=cases, data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        # The requests share the test's app context, and so its session: end its transaction, as the
        # end of a request would, so that MariaDB's REPEATABLE READ shows the rows committed since.
        db.session.rollback()
        target(stubber, case, data)
        response = case.call(headers=TOKEN)
        RAN[(method, path, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS)

    run()


def test_every_operation_ran_into_success(capsys: pytest.CaptureFixture[str]) -> None:
    """After the cases above: each operation ran, and some of its cases succeeded, so the fuzzing got past
    the lookups into the actions. With ``-s`` it prints how many cases each operation ran, by status."""
    if not RAN:
        pytest.skip("The conformance cases did not run in this session.")
    by_operation: dict[str, Counter[int]] = {f"{method} {path}": Counter() for method, path in OPERATIONS}
    for (method, path, status), count in RAN.items():
        by_operation[f"{method} {path}"][status] += count
    with capsys.disabled():
        for operation, statuses in by_operation.items():
            print(f"\n{operation}: {sum(statuses.values())} cases, by status {dict(sorted(statuses.items()))}", end="")
    for operation, statuses in by_operation.items():
        assert any(status < 400 for status in statuses), f"{operation} never succeeded: {dict(statuses)}"
