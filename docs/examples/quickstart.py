from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_stubber import ActionRejected, StubberWebhooks, Template

db = SQLAlchemy()
stubber = StubberWebhooks()

order = Template("order", start_state="awaiting_payment")
order.state("awaiting_payment", actions=["payment_received", "cancel", "add_note"])
order.state("paid", actions=["ship", "add_note"])
order.state("shipped").state("cancelled")
order.action(
    "payment_received",
    to_state="paid",
    webhook=True,
    fields={
        "amount": {
            "fieldtype": "number",
            "params": {"min": 0},
            "validations": [
                {"validationtype": "required", "invalid_message": "amount is required"},
            ],
        },
        "currency": {"fieldtype": "select", "params": {"options": ["ZAR", "USD"]}},
    },
)
order.action("add_note", webhook=True, post_data_on_root=True)
order.action("ship", to_state="shipped", webhook=True, methods=["POST"])
order.action("cancel", to_state="cancelled")
stubber.register_template(order)


@stubber.action_handler("order", "payment_received")
def check_amount(stub, payload, ctx):
    if payload["amount"] < stub.data["total"]:
        message = f"The order total is {stub.data['total']}."
        raise ActionRejected("amount_too_small", message, status=422)
    stub.data["paid"] = payload["amount"]


def create_app(config=None):
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///quickstart.db"
    app.config.update(config or {})
    db.init_app(app)
    stubber.init_app(app)

    @app.cli.command("init-db")
    def init_db():
        """Create the tables."""
        db.create_all()

    @app.post("/orders")
    def new_order():
        stub = stubber.create_stub("order", {"customer": "ada", "total": 25})
        pay = stubber.webhook_url(stub, "payment_received")
        return {"stubref": stub.stubref, "pay": pay}, 201

    return app
