from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_stubber import ActionRejected, StubberWebhooks, Template

db = SQLAlchemy()
stubber = StubberWebhooks()

order = Template("order", start_state="delivered")
order.state("delivered", actions=["request_return"]).state("returning")
order.action("request_return", to_state="returning", webhook=True, methods=["POST"],
             fields={"reason": {"fieldtype": "text", "validations": ["required"]}})
parcel = Template("return_parcel", start_state="label_sent")
parcel.state("label_sent", actions=["received"]).state("received")
parcel.action("received", to_state="received")
stubber.register_template(order)
stubber.register_template(parcel)


@stubber.action_handler("order", "request_return")
def open_return(stub, payload, ctx):
    """Open a return parcel, and the link its courier scans, with the return itself."""
    if stub.data.get("final_sale"):
        raise ActionRejected("final_sale", "Items bought on final sale cannot be returned.")
    parcel = stubber.create_stub("return_parcel", {"order": stub.stubref, "reason": payload["reason"]})
    scan = stubber.create_webhook(parcel, "received", single_use=True, expires_in=30 * 24 * 3600)
    stub.data["return"] = {"parcel": parcel.stubref, "scan": scan.url}


def create_app(config=None):
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///returns.db"
    app.config.update(config or {})
    db.init_app(app)
    stubber.init_app(app)
    return app
