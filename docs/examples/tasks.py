from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_stubber import StubberWebhooks, Template

db = SQLAlchemy()
stubber = StubberWebhooks()


@stubber.task("add_vat")
def add_vat(ctx, params):
    """Return the total with VAT; later tasks read it as ~~tasks.<name>.total."""
    total = round(params["amount"] * (1 + params["rate"]), 2)
    return {"total": total}


quote = Template("quote", start_state="offered")
quote.state("offered", actions=["accept"]).state("accepted")
quote.action(
    "accept",
    to_state="accepted",
    webhook=True,
    fields={"customer": {"fieldtype": "text", "validations": ["required"]}},
    synchronous=True,
    response={
        "success": True,
        "quote": "~~stub.stubref",
        "order": "~~tasks.order.stubref",
        "total": "~~tasks.vat.total",
    },
    tasks={
        "vat": {
            "tasktype": "add_vat",
            "sequence": 1,
            "params": {"amount": "~~stub.data.price", "rate": 0.15},
        },
        "order": {
            "tasktype": "create_stub",
            "sequence": 2,
            "params": {
                "template": "order",
                "subject": "Order for ~~stubpost.data.customer",
                "data": {"quote": "~~stub.stubref", "total": "~~tasks.vat.total"},
            },
        },
        "remember": {
            "tasktype": "savedata",
            "sequence": 3,
            "params": {"order": "~~tasks.order.stubref"},
        },
    },
)
order = Template("order", start_state="awaiting_payment")
order.state("awaiting_payment")
stubber.register_template(quote)
stubber.register_template(order)


def create_app(config=None):
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///tasks.db"
    app.config.update(config or {})
    db.init_app(app)
    stubber.init_app(app)
    return app
