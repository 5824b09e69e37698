"""Drive the example app's jobs step by step against a running server.

Start the app in one terminal and run the demo in another::

    flask --app example_app run
    python -m example_app.demo                  # or give the base URL: ... demo http://127.0.0.1:8000

Each step prints the HTTP call, the answer and the stub's state change. The
demo plays the outside systems: a ticketing system, a payment processor
signing its notifications Stripe-style, and a warehouse. It uses the standard
library only, and exits with status 1 when an answer is not the expected one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .config import stripe_secret


def stripe_signature(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """Return a ``Stripe-Signature`` header value: ``t=<unix time>,v1=<hex HMAC-SHA256>``.

    The signed message is the timestamp, a dot and the raw body bytes.
    """
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def payment_event(stubref: str, amount: int, secret: str | None = None) -> tuple[bytes, dict[str, str]]:
    """Return a signed ``payment_intent.succeeded`` event and its headers, as a payment processor sends them.

    :param secret: The endpoint's signing secret; the app's own by default.
    """
    event = {
        "id": f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "data": {"object": {"id": f"pi_{secrets.token_hex(12)}", "object": "payment_intent",
                            "amount": amount, "currency": "zar", "metadata": {"stubref": stubref}}},
    }
    body = json.dumps(event).encode()
    return body, {"Stripe-Signature": stripe_signature(body, secret or stripe_secret())}


@dataclass
class Step:
    """One call of the demo and what came of it."""

    label: str
    status: int
    expected: int
    before: str | None
    after: str | None
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == self.expected


class Demo:
    """Plays the outside systems against the app at ``base``.

    :param base: The app's base URL, such as ``http://127.0.0.1:5000``.
    :param out: Where each line goes.
    """

    def __init__(self, base: str, out: Callable[[str], object] = print) -> None:
        self.base = base.rstrip("/")
        self.out = out
        self.steps: list[Step] = []

    def call(self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
             raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
        """Make one HTTP call and return its status and JSON body."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + url if url.startswith("/") else url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def state(self, stubref: str) -> str:
        """Return the stub's current state, read from the app's ``/stubs/<stubref>`` page."""
        status, page = self.call("GET", f"/stubs/{stubref}")
        if status != 200:
            raise RuntimeError(f"GET /stubs/{stubref} answered {status}: {page}")
        return str(page["state"])

    def step(self, label: str, expected: int, method: str, url: str, body: Any = None, *,
             stubref: str | None = None, headers: dict[str, str] | None = None, raw: bytes | None = None) -> Step:
        """Make a call, then print it with its answer and the stub's state before and after."""
        before = self.state(stubref) if stubref else None
        status, answer = self.call(method, url, body, headers, raw)
        stubref = stubref or answer.get("stubref")
        after = self.state(stubref) if stubref else None
        step = Step(label, status, expected, before, after, answer)
        self.steps.append(step)
        path = urlsplit(url).path if not url.startswith("/") else url
        change = f"{before} -> {after}" if before else f"{stubref} is {after}"
        flag = "" if step.ok else f"  UNEXPECTED, wanted {expected}"
        self.out(f"  {label}\n    {method} {path} => {status}, {change}{flag}")
        if status >= 400:
            self.out(f"    {answer.get('error')}: {answer.get('detail')}")
        return step

    def support_request(self) -> str:
        """Job 2: a ticketing system posts status updates onto a support request."""
        self.out("\nA ticketing system posts status updates onto a support request")
        created = self.step("The help desk opens a support request", 201, "POST", "/support-requests",
                            {"email": "ada@example.com", "message": "My espresso machine leaks."})
        ref, hooks = str(created.body["stubref"]), created.body["webhooks"]
        update, comment = hooks["ticket_update"], hooks["add_comment"]
        self.step("Ticket 4711 is opened and assigned", 200, "POST", update,
                  {"id": 4711, "status": "open", "assignee": "sam@help.example"}, stubref=ref)
        self.step("An agent comments", 200, "POST", comment,
                  {"author": "Sam", "body": "Could you send a photo?", "public": True}, stubref=ref)
        self.step("The ticket waits for the customer", 200, "POST", update, {"id": 4711, "status": "pending"},
                  stubref=ref)
        self.step("A malformed update is refused, nothing changes", 422, "POST", update,
                  {"id": 4711, "status": "on fire"}, stubref=ref)
        self.step("The ticket is solved", 200, "POST", update, {"id": 4711, "status": "solved"}, stubref=ref)
        self.step("The ticket is closed", 200, "POST", update, {"id": 4711, "status": "closed"}, stubref=ref)
        self.step("A late comment finds the request closed", 409, "POST", comment,
                  {"author": "Ada", "body": "Thanks!"}, stubref=ref)
        return ref

    def order(self) -> str:
        """Job 3: a payment processor's signed notification moves an order to ``paid``."""
        self.out("\nA payment processor's signed notification moves an order to paid")
        created = self.step("A customer checks out", 201, "POST", "/orders",
                            {"items": ["espresso machine"], "total": 2500, "currency": "zar"})
        ref = str(created.body["stubref"])
        pay = created.body["webhooks"]["payment_received"]
        body, headers = payment_event(ref, 2000)
        self.step("A payment that does not cover the order is refused", 422, "POST", pay,
                  stubref=ref, raw=body, headers=headers)
        body, headers = payment_event(ref, 2500)
        self.step("The payment processor reports the payment", 200, "POST", pay,
                  stubref=ref, raw=body, headers=headers)
        body, headers = payment_event(ref, 2500)
        self.step("A second payment finds the order already paid", 409, "POST", pay,
                  stubref=ref, raw=body, headers=headers)
        ship = self.current_webhooks(ref)["ship"]
        self.step("The warehouse ships it", 200, "POST", ship,
                  {"carrier": "PostNet", "tracking_number": "PN123456789ZA"}, stubref=ref)
        return ref

    def current_webhooks(self, stubref: str) -> dict[str, str]:
        """Return the webhooks that can run on the stub now, by action."""
        return dict(self.call("GET", f"/stubs/{stubref}")[1]["webhooks"])

    def run(self) -> bool:
        """Run every job; return whether every answer was the expected one."""
        self.support_request()
        self.order()
        failed = [step for step in self.steps if not step.ok]
        self.out(f"\n{len(self.steps)} steps, {len(failed)} unexpected. See every stub at {self.base}/")
        return not failed


def main(argv: list[str] | None = None) -> int:
    """Run the demo against the base URL in ``argv`` (default ``http://127.0.0.1:5000``)."""
    args = sys.argv[1:] if argv is None else argv
    base = args[0] if args else "http://127.0.0.1:5000"
    try:
        return 0 if Demo(base).run() else 1
    except urllib.error.URLError as error:
        print(f"Cannot reach the example app at {base} ({error.reason}); start it with: flask --app example_app run")
        return 2


if __name__ == "__main__":
    sys.exit(main())
