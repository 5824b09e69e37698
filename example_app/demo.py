"""Drive the example app's jobs step by step against a running server.

Start the app in one terminal and run the demo in another::

    flask --app example_app run
    python -m example_app.demo                  # or give the base URL: ... demo http://127.0.0.1:8000

Each step prints the HTTP call, the answer and the stub's state change. The
demo plays the outside world: a customer's browser posting the help desk's
contact form, a ticketing system, a payment processor signing its notifications
Stripe-style, a warehouse, and a person opening the links of an email (and the
mail scanner that opens them first). It uses the standard library only, and
exits with status 1 when an answer is not the expected one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import urlencode, urlsplit

from .config import stripe_secret


def stripe_signature(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """Return a ``Stripe-Signature`` header value: ``t=<unix time>,v1=<hex HMAC-SHA256>``.

    The signed message is the timestamp, a dot and the raw body bytes.
    """
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def payment_event(stubref: str, amount: int) -> bytes:
    """Return the body of a ``payment_intent.succeeded`` event for an order, as a payment processor sends it."""
    event = {
        "id": f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "data": {"object": {"id": f"pi_{secrets.token_hex(12)}", "object": "payment_intent",
                            "amount": amount, "currency": "zar", "metadata": {"stubref": stubref}}},
    }
    return json.dumps(event).encode()


def signed(body: bytes, secret: str | None = None) -> dict[str, str]:
    """Return the headers that sign ``body`` now, with the app's signing secret or another one."""
    return {"Stripe-Signature": stripe_signature(body, secret or stripe_secret())}


#: A stubref, as found in an answer's body or ``Location``.
STUBREF = re.compile(r"\d{4}-\d\d-\d\d-[A-Z0-9]{4}-[A-Z0-9]{4}")
#: What a browser sends as ``Accept``: the webhooks answer it with pages and redirects.
BROWSER = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}


@dataclass
class Answer:
    """The status, headers and body of one HTTP answer."""

    status: int
    headers: Message
    content: bytes

    @property
    def json(self) -> dict[str, Any]:
        """The JSON body, or ``{}`` when the body is not JSON."""
        if "json" not in self.headers.get("Content-Type", ""):
            return {}
        value = json.loads(self.content or b"{}")
        return value if isinstance(value, dict) else {}

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def stubref(self) -> str | None:
        """The stubref the answer names: its body's ``stubref``, or the one in ``Location``."""
        named = self.json.get("stubref")
        if isinstance(named, str):
            return named
        found = STUBREF.search(self.headers.get("Location", ""))
        return found.group() if found else None


@dataclass
class Step:
    """One call of the demo and what came of it."""

    label: str
    expected: int
    answer: Answer
    before: str | None
    after: str | None

    @property
    def ok(self) -> bool:
        return self.answer.status == self.expected


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    """Hand redirects back to the caller, as answers, instead of following them."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Demo:
    """Plays the outside systems against the app at ``base``.

    :param base: The app's base URL, such as ``http://127.0.0.1:5000``.
    :param out: Where each line goes.
    """

    def __init__(self, base: str, out: Callable[[str], object] = print) -> None:
        self.base = base.rstrip("/")
        self.out = out
        self.steps: list[Step] = []
        self.opener = urllib.request.build_opener(_KeepRedirects)

    def call(self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, *,
             raw: bytes | None = None, form: dict[str, str] | None = None) -> Answer:
        """Make one HTTP call: ``body`` is sent as JSON, ``form`` as a form, ``raw`` as it is."""
        content_type = "application/json"
        if form is not None:
            raw, content_type = urlencode(form).encode(), "application/x-www-form-urlencoded"
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + url if url.startswith("/") else url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with self.opener.open(request, timeout=30) as response:
                return Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.headers, error.read())

    def page(self, stubref: str) -> dict[str, Any]:
        """Return the app's ``/stubs/<stubref>`` page: state, data, history, webhooks."""
        answer = self.call("GET", f"/stubs/{stubref}")
        if answer.status != 200:
            raise RuntimeError(f"GET /stubs/{stubref} answered {answer.status}: {answer.text}")
        return answer.json

    def state(self, stubref: str) -> str:
        """Return the stub's current state."""
        return str(self.page(stubref)["state"])

    def step(self, label: str, expected: int, method: str, url: str, body: Any = None, *,
             stubref: str | None = None, headers: dict[str, str] | None = None, raw: bytes | None = None,
             form: dict[str, str] | None = None) -> Step:
        """Make a call, then print it with its answer and the stub's state before and after."""
        before = self.state(stubref) if stubref else None
        answer = self.call(method, url, body, headers, raw=raw, form=form)
        stubref = stubref or (answer.stubref() if answer.status < 400 else None)
        after = self.state(stubref) if stubref else None
        step = Step(label, expected, answer, before, after)
        self.steps.append(step)
        path = urlsplit(url).path if not url.startswith("/") else url
        shown = f"{answer.status} to {answer.headers['Location']}" if answer.status == 303 else str(answer.status)
        if answer.headers.get("Idempotent-Replayed") == "true":
            shown += " Idempotent-Replayed"
        change = f"{before} -> {after}" if before else f"{stubref} is {after}" if stubref else "nothing created"
        flag = "" if step.ok else f"  UNEXPECTED, wanted {expected}"
        self.out(f"  {label}\n    {method} {path} => {shown}, {change}{flag}")
        if answer.status >= 400:
            self.out(f"    {answer.json.get('error')}: {answer.json.get('detail')}")
        return step

    def website_form(self) -> str:
        """Job 1: the help desk's contact form, a plain HTML form, creates a support request."""
        self.out("\nA website form creates a support request")
        create = "/webhooks/create/support_request"
        sent = self.step("A customer sends the contact form; the browser is sent to the thank-you page", 303,
                         "POST", create, headers=BROWSER,
                         form={"email": "ada@example.com", "name": "Ada", "message": "My espresso machine leaks."})
        self.step("A form without a message is refused, nothing is created", 422, "POST", create,
                  {"email": "ada@example.com", "message": ""})
        return str(sent.answer.stubref())

    def ticketing(self, ref: str) -> None:
        """Job 2: a ticketing system posts status updates onto the support request."""
        self.out("\nA ticketing system posts status updates onto the support request")
        hooks = self.page(ref)["webhooks"]
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

    def order(self) -> str:
        """Job 3: a payment processor's signed notification moves an order to ``paid``."""
        self.out("\nA payment processor's signed notification moves an order to paid")
        created = self.step("A customer checks out", 201, "POST", "/orders",
                            {"items": ["espresso machine"], "total": 2500, "currency": "zar"})
        ref = str(created.answer.stubref())
        pay = created.answer.json["webhooks"]["payment_received"]
        short = payment_event(ref, 2000)
        self.step("A payment that does not cover the order is refused", 422, "POST", pay,
                  stubref=ref, raw=short, headers=signed(short))
        event = payment_event(ref, 2500)
        self.step("A forged notification, not signed with the shop's secret, is refused", 401, "POST", pay,
                  stubref=ref, raw=event, headers=signed(event, "whsec_forged"))
        self.step("The payment processor reports the payment", 200, "POST", pay,
                  stubref=ref, raw=event, headers=signed(event))
        self.step("It sends the event again (its answer was lost): the first answer comes back, nothing runs",
                  200, "POST", pay, stubref=ref, raw=event, headers=signed(event))
        other = payment_event(ref, 2500)
        self.step("A second payment finds the order already paid", 409, "POST", pay,
                  stubref=ref, raw=other, headers=signed(other))
        ship = self.page(ref)["webhooks"]["ship"]
        self.step("The warehouse ships it", 200, "POST", ship,
                  {"carrier": "PostNet", "tracking_number": "PN123456789ZA"}, stubref=ref)
        return ref

    def access(self) -> str:
        """Job 4: a link in an email, confirmed on its page, grants access."""
        self.out("\nA link in an email grants access")
        created = self.step("Ada asks for access; the app emails her two links", 201, "POST", "/access-requests",
                            {"email": "ada@example.com"})
        ref = str(created.answer.stubref())
        mail = created.answer.json["data"]["mail"]
        self.out(f"    mail to {mail['to']}: confirm {mail['confirm']}, decline {mail['decline']}")
        page = self.step("A mail scanner opens the link: a confirmation page, nothing changes", 200, "GET",
                         mail["confirm"], stubref=ref, headers=BROWSER)
        found = re.search(r'name="_confirm" value="([^"]+)"', page.answer.text)
        token = found.group(1) if found else ""
        self.step("Ada presses the page's button", 200, "POST", mail["confirm"], stubref=ref, headers=BROWSER,
                  form={"_confirm": token})
        self.step("The link is single-use: a second press is refused", 410, "POST", mail["confirm"], stubref=ref,
                  headers=BROWSER, form={"_confirm": token})
        self.step("The decline link finds access already granted", 409, "GET", mail["decline"], stubref=ref,
                  headers=BROWSER)
        return ref

    def run(self) -> bool:
        """Run every job; return whether every answer was the expected one."""
        self.ticketing(self.website_form())
        self.order()
        self.access()
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
