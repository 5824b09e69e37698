"""End to end in headless Chromium: a form on another site creates a stub, an email link authorizes one.

The app runs in a real threaded server; a second server on another port plays the
website that hosts the plain HTML form and the landing pages. Needs the Debian
packages ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask, request
from markupsafe import escape
from werkzeug.serving import make_server

from flask_stubber import StubberWebhooks

from .test_concurrency import server  # noqa: F401  (the fixture is used by name)
from .test_create import REQUEST
from .test_responses import ACCESS

pytestmark = pytest.mark.slow

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
CHROMEDRIVER = shutil.which("chromedriver")

FORM_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Contact us</title></head>
<body><h1>Contact us</h1>
<form method="post" action="{action}" enctype="{enctype}">
  <label>Name <input name="name"></label>
  <label>Email <input name="email" type="email"></label>
  <label>Seats <input name="seats" type="number"></label>
  <label>Topic <select name="topic"><option value="billing">Billing</option>
                                    <option value="tech">Technical</option></select></label>
  <label>Products <select name="products" multiple><option>a</option><option>b</option>
                                                   <option>c</option></select></label>
  <label><input type="checkbox" name="urgent"> Urgent</label>
  <button type="submit">Send</button>
</form></body></html>
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("Chromium is not installed: apt-get install chromium chromium-driver (.ci/run does).")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the 'test' extra")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory() as profile:
        for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", f"--user-data-dir={profile}"):
            options.add_argument(arg)
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        driver.set_page_load_timeout(30)
        try:
            yield driver
        finally:
            driver.quit()


@dataclass
class Site:
    """Another website on another port: a contact form posting to ``form_action``, and landing pages."""

    url: str
    form_action: str = ""


@pytest.fixture
def site() -> Iterator[Site]:
    app = Flask("site")

    @app.get("/contact")
    def contact() -> str:
        return FORM_PAGE.format(action=escape(site.form_action), enctype=escape(request.args["enctype"]))

    @app.get("/<page>")
    def landing(page: str) -> str:
        return (f'<!doctype html><title>{escape(page)}</title><h1>{escape(page.title())}</h1>'
                f'<p>Your reference: <output id="ref">{escape(request.args.get("ref", ""))}</output></p>')

    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    site = Site(f"http://127.0.0.1:{srv.server_port}")
    yield site
    srv.shutdown()
    thread.join(10)


def land(browser: Any, prefix: str) -> str:
    """Wait for the browser to reach a page under ``prefix``; return the reference it shows."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 20).until(lambda d: d.current_url.startswith(prefix))
    return str(browser.find_element("id", "ref").text)


@pytest.mark.parametrize("enctype", ["application/x-www-form-urlencoded", "multipart/form-data"])
def test_form_on_another_site_creates_a_stub(browser: Any, app: Flask, server: str, site: Site,  # noqa: F811
                                             stubber: StubberWebhooks, db, enctype: str) -> None:
    from selenium.webdriver.support.ui import Select

    template = {**REQUEST, "details": {**REQUEST["details"], "webhooks": {"create": {
        **REQUEST["details"]["webhooks"]["create"], "redirect": f"{site.url}/thanks?ref=~~stub.stubref"}}}}
    stubber.register_template(template)
    site.form_action = f"{server}/webhooks/create/request"
    browser.get(f"{site.url}/contact?enctype={enctype}")
    browser.find_element("name", "name").send_keys("Ada Lovelace")
    browser.find_element("name", "email").send_keys("ada@example.com")
    browser.find_element("name", "seats").send_keys("3")
    Select(browser.find_element("name", "topic")).select_by_visible_text("Technical")
    products = Select(browser.find_element("name", "products"))
    products.select_by_visible_text("a")
    products.select_by_visible_text("c")
    browser.find_element("name", "urgent").click()
    browser.find_element("css selector", "button[type=submit]").click()

    stubref = land(browser, f"{site.url}/thanks")
    assert browser.find_element("tag name", "h1").text == "Thanks"
    db.session.rollback()
    stub = stubber.get_stub(stubref)
    assert stub is not None, f"the landing page shows {stubref!r}, which is no stub"
    assert (stub.template, stub.state, stub.subject) == ("request", "new", "Request from Ada Lovelace")
    assert stub.data == {"payload": {"name": "Ada Lovelace", "email": "ada@example.com", "seats": 3,
                                     "topic": "tech", "products": ["a", "c"], "urgent": True}}
    assert [(p.action_name, p.source, p.from_state) for p in stub.posts] == [("create", "create_webhook", None)]


def test_email_link_asks_before_it_authorizes(browser: Any, app: Flask, server: str, site: Site,  # noqa: F811
                                              stubber: StubberWebhooks, db) -> None:
    source = {**ACCESS, "actions": {**ACCESS["actions"], "authorize": {"to_state": "authorized", "action_meta": {
        "webhooks": {"confirm": {"title": "Authorize?", "button": "Authorize"},
                     "redirect": f"{site.url}/authorized?ref=~~stub.stubref"}}}}}
    stubber.register_template(source)
    stub = stubber.create_stub("access", {"who": "Eve"})
    hook = stubber.create_webhook(stub, "authorize", single_use=True)

    browser.get(f"{server}/webhooks/ex/{hook.uuid}")
    assert browser.find_element("tag name", "h1").text == "Authorize?"
    db.session.rollback()
    assert stubber.get_stub(stub.stubref).state == "pending"  # opening the link changed nothing

    browser.find_element("css selector", "button[type=submit]").click()
    assert land(browser, f"{site.url}/authorized") == stub.stubref
    db.session.rollback()
    got = stubber.get_stub(stub.stubref)
    assert got.state == "authorized"
    assert [(p.action_name, p.source) for p in got.posts] == [("authorize", "explicit_webhook")]
