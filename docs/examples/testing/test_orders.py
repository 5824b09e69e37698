from quickstart import stubber

from flask_stubber.testing import StubberClient, assert_not_posted, assert_posted, assert_problem


def test_a_payment_moves_the_order_to_paid(app, stubber_client, stubber_signals):
    order = stubber.create_stub("order", {"customer": "ada", "total": 25})
    response = stubber_client.run(order, "payment_received", json={"amount": 25})
    assert response.status_code == 200
    assert_posted(order, "payment_received", from_state="awaiting_payment", to_state="paid",
                  source="webhook", payload={"amount": 25})
    assert stubber_signals.names() == [
        "stub_created", "webhook_received", "action_executing", "action_executed"]
    [executed] = stubber_signals.of("action_executed")
    assert (executed["from_state"], executed["to_state"]) == ("awaiting_payment", "paid")


def test_a_short_payment_is_refused(app, stubber_client):
    order = stubber.create_stub("order", {"customer": "ada", "total": 25})
    response = stubber_client.run(order, "payment_received", json={"amount": 10})
    problem = assert_problem(response, 422, "amount_too_small")
    assert problem["detail"] == "The order total is 25."
    assert_not_posted(order)


def test_notes_from_a_form_and_a_link(app, stubber_client):
    order = stubber.create_stub("order", {"customer": "ada", "total": 25})
    stubber_client.run(order, "add_note", data={"note": "Ring twice."})
    response = stubber_client.run(order, "add_note", query={"gift": "yes"}, synchronous=True)
    assert response.get_json()["data"] == {"customer": "ada", "total": 25, "note": "Ring twice.", "gift": "yes"}
    assert_posted(order, "add_note", payload={"gift": "yes"}, source="webhook")


def test_only_signed_payments_count(stubber_app_factory):
    verifiers = {"payments": {"scheme": "standard-webhooks", "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}}
    app = stubber_app_factory(stubber, STUBBER_VERIFIERS=verifiers, STUBBER_DEFAULT_AUTH="payments")
    hooks = StubberClient(app.test_client())
    with app.app_context():
        order = stubber.create_stub("order", {"customer": "ada", "total": 25})
        assert_problem(hooks.run(order, "payment_received", json={"amount": 25}), 401, "unauthorized")
        assert hooks.run(order, "payment_received", json={"amount": 25}, sign="payments").status_code == 200
        assert_posted(order, "payment_received", to_state="paid")
