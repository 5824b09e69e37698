"""The engine through the Python API: transitions, handlers, tasks, transactions."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_stubber import ActionRejected, StubberWebhooks, Template
from flask_stubber.errors import ActionNotFound, ActionNotInState, InternalError, StubNotFound, ValidationFailed

from .conftest import ORDER


def fresh(stubber: StubberWebhooks, db: SQLAlchemy, stubref: str) -> Any:
    db.session.rollback()
    db.session.expire_all()
    return stubber.get_stub(stubref)


def test_create_stub_starts_in_start_state(app: Flask, stubber: StubberWebhooks, db: SQLAlchemy) -> None:
    stub = stubber.create_stub("order", {"a": 1}, subject="Order 1")
    got = fresh(stubber, db, stub.stubref)
    assert (got.template, got.state, got.data, got.subject) == ("order", "awaiting_payment", {"a": 1}, "Order 1")
    assert got.posts == []
    assert got.created_at is not None


def test_create_stub_of_unknown_template(app: Flask, stubber: StubberWebhooks) -> None:
    with pytest.raises(ActionNotFound, match="No template named 'nope'"):
        stubber.create_stub("nope")


def test_run_action_records_post_with_source(app: Flask, stub: Any, stubber: StubberWebhooks, db) -> None:
    post = stubber.run_action(stub, "cancel", source="cli")
    got = fresh(stubber, db, stub.stubref)
    assert got.state == "cancelled"
    assert [(p.id, p.action_name, p.source, p.from_state, p.to_state) for p in got.posts] == [
        (post.id, "cancel", "cli", "awaiting_payment", "cancelled")]


def test_run_action_accepts_a_stubref_and_validates(app: Flask, stub: Any, stubber: StubberWebhooks) -> None:
    with pytest.raises(ValidationFailed) as info:
        stubber.run_action(stub.stubref.lower(), "payment_received", {"amount": "lots"})
    assert "amount" in info.value.errors


def test_history_is_oldest_first(app: Flask, stub: Any, stubber: StubberWebhooks, db) -> None:
    stubber.run_action(stub, "add_note", {"n": 1})
    stubber.run_action(stub, "payment_received", {"amount": 5})
    stubber.run_action(stub, "ship")
    got = fresh(stubber, db, stub.stubref)
    assert [(p.action_name, p.to_state) for p in got.posts] == [
        ("add_note", "awaiting_payment"), ("payment_received", "paid"), ("ship", "shipped")]
    assert stubber.available_actions(got) == []


def test_state_gating_in_python(app: Flask, stub: Any, stubber: StubberWebhooks) -> None:
    with pytest.raises(ActionNotInState) as info:
        stubber.run_action(stub, "ship")
    assert info.value.state == "awaiting_payment"
    assert info.value.available_actions == ["payment_received", "cancel", "add_note"]
    with pytest.raises(StubNotFound):
        stubber.run_action("2020-01-01-AAAA-AAAA", "ship")
    with pytest.raises(ActionNotFound):
        stubber.run_action(stub, "fly")


def test_available_actions_and_get_stub(app: Flask, stub: Any, stubber: StubberWebhooks) -> None:
    assert stubber.available_actions(stub) == ["payment_received", "cancel", "add_note"]
    assert stubber.available_actions(stub.stubref) == ["payment_received", "cancel", "add_note"]
    assert stubber.get_stub(stub.stubref.lower()).id == stub.id
    assert stubber.get_stub("garbage") is None
    with pytest.raises(StubNotFound):
        stubber.available_actions("2020-01-01-AAAA-AAAA")


def test_webhook_url_is_absolute(app: Flask, stub: Any, stubber: StubberWebhooks) -> None:
    assert stubber.webhook_url(stub, "payment_received") == (
        f"http://hooks.example.com/webhooks/im/{stub.stubref}/payment_received")


def test_handler_changes_data_inside_the_transaction(app: Flask, stub: Any, stubber: StubberWebhooks, db) -> None:
    seen: list[Any] = []

    @stubber.action_handler("order", "payment_received")
    def on_paid(stub: Any, payload: dict[str, Any], ctx: Any) -> None:
        seen.append((payload, ctx.from_state, ctx.to_state, ctx.source))
        stub.data["paid_total"] = payload["amount"] * 2

    stubber.run_action(stub, "payment_received", {"amount": "2.5"})
    assert seen == [({"amount": 2.5}, "awaiting_payment", "paid", "api")]
    assert fresh(stubber, db, stub.stubref).data["paid_total"] == 5.0


def branching(stubber: StubberWebhooks) -> None:
    template = Template("review", start_state="open")
    template.state("open", actions=["decide"]).state("approved").state("rejected")
    template.action("decide", to_state=["approved", "rejected"], webhook=True)
    stubber.register_template(template)


@pytest.mark.parametrize("verdict", ["approved", "rejected"])
def test_handler_picks_among_targets(app: Flask, stubber: StubberWebhooks, db, verdict: str) -> None:
    branching(stubber)

    @stubber.action_handler("review", "decide")
    def decide(stub: Any, payload: dict[str, Any], ctx: Any) -> None:
        assert ctx.targets == ("approved", "rejected")
        ctx.to_state = payload["verdict"]

    stub = stubber.create_stub("review")
    stubber.run_action(stub, "decide", {"verdict": verdict})
    assert fresh(stubber, db, stub.stubref).state == verdict


@pytest.mark.parametrize("choice", [None, "nowhere"])
def test_several_targets_without_a_valid_choice_fail_cleanly(app: Flask, stubber: StubberWebhooks, db,
                                                             choice: str | None) -> None:
    branching(stubber)
    if choice:
        stubber.action_handler("review", "decide")(lambda stub, payload, ctx: setattr(ctx, "to_state", choice))
    stub = stubber.create_stub("review")
    with pytest.raises(InternalError):
        stubber.run_action(stub, "decide")
    got = fresh(stubber, db, stub.stubref)
    assert (got.state, got.posts) == ("open", [])


def test_action_rejected_writes_nothing(app: Flask, client, stub: Any, stubber: StubberWebhooks, db) -> None:
    @stubber.action_handler("order", "payment_received")
    def too_small(stub: Any, payload: dict[str, Any], ctx: Any) -> None:
        stub.data["touched"] = True
        raise ActionRejected("amount_too_small", "The amount must be at least 10.", status=422)

    response = client.post(f"/webhooks/im/{stub.stubref}/payment_received", json={"amount": 5})
    assert response.status_code == 422
    body = response.get_json()
    assert (body["error"], body["detail"]) == ("amount_too_small", "The amount must be at least 10.")
    got = fresh(stubber, db, stub.stubref)
    assert (got.state, got.data, got.posts) == ("awaiting_payment", {"customer": "ada"}, [])


def test_action_rejected_status_is_checked() -> None:
    with pytest.raises(ValueError, match="409 or 422"):
        ActionRejected("x", "y", status=500)


def tasks_template() -> dict[str, Any]:
    source = copy.deepcopy(ORDER)
    source["name"] = "intake"
    source["details"] = {"busy_start_state": "open"}
    source["states"] = {"open": {"actions": ["submit"]}, "done": {"actions": []}}
    source["actions"] = {"submit": {
        "to_state": "done",
        "action_meta": {"webhooks": {"enable": True}},
        "tasks": {
            "make_order": {"tasktype": "create_stub", "sequence": 1,
                           "params": {"template": "order", "subject": "~~stubpost.data.name",
                                      "data": {"from": "~~stub.stubref", "missing": "~~stub.data.nope"}}},
            "remember": {"tasktype": "savedata", "sequence": 2,
                         "params": {"order_ref": "~~tasks.make_order.stubref",
                                    "note": "made ~~tasks.make_order.stubref"}},
            "shout": {"tasktype": "shout", "sequence": 3, "params": {"text": "~~stubpost.data.name"}},
        },
    }}
    return source


def test_builtin_and_custom_tasks(app: Flask, stubber: StubberWebhooks, db) -> None:
    @stubber.task("shout")
    def shout(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        return {"loud": params["text"].upper()}

    stubber.register_template(tasks_template())
    intake = stubber.create_stub("intake")
    stubber.run_action(intake, "submit", {"name": "ada"})
    got = fresh(stubber, db, intake.stubref)
    order_ref = got.data["order_ref"]
    assert got.state == "done"
    assert got.data["note"] == f"made {order_ref}"
    order = stubber.get_stub(order_ref)
    assert (order.template, order.state, order.subject) == ("order", "awaiting_payment", "ada")
    assert order.data == {"from": intake.stubref, "missing": None}


def test_failing_task_rolls_back_created_stub(app: Flask, stubber: StubberWebhooks, db) -> None:
    from flask import current_app
    from sqlalchemy import func, select

    @stubber.task("shout")
    def shout(ctx: Any, params: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    stubber.register_template(tasks_template())
    intake = stubber.create_stub("intake")
    with pytest.raises(InternalError):
        stubber.run_action(intake, "submit", {"name": "ada"})
    model = current_app.extensions["stubber"].engine.stub_model
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(model)) == 1


def test_api_calls_from_a_handler_join_the_action_transaction(app: Flask, stub: Any, stubber: StubberWebhooks,
                                                              db: SQLAlchemy) -> None:
    from flask import current_app
    from sqlalchemy import func, select, text

    from flask_stubber import signals

    made: list[str] = []
    seen_committed: list[bool] = []

    @stubber.action_handler("order", "payment_received")
    def on_paid(stub: Any, payload: dict[str, Any], ctx: Any) -> None:
        made.append(stubber.create_stub("order", {"parent": stub.stubref}).stubref)
        stubber.create_webhook(stub, "ship", single_use=True)
        if payload["amount"] < 10:
            raise ActionRejected("too_small", "The amount must be at least 10.", status=422)

    def created(sender: Any, stub: Any, source: str) -> None:
        with db.engine.connect() as other:
            posts = other.execute(text("select count(*) from stubber_posts where action_name = 'payment_received'"))
            seen_committed.append(posts.scalar() == 1)

    models = current_app.extensions["stubber"].engine.models
    signals.stub_created.connect(created, app)
    try:
        with pytest.raises(ActionRejected):
            stubber.run_action(stub, "payment_received", {"amount": 5})
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(models.stub)) == 1
        assert db.session.scalar(select(func.count()).select_from(models.webhook)) == 0
        assert seen_committed == []
        stubber.run_action(stub, "payment_received", {"amount": 50})
    finally:
        signals.stub_created.disconnect(created, app)
    got = fresh(stubber, db, stub.stubref)
    assert got.state == "paid"
    assert stubber.get_stub(made[-1]).data == {"parent": stub.stubref}
    assert db.session.scalar(select(func.count()).select_from(models.webhook)) == 1
    assert seen_committed == [True]
