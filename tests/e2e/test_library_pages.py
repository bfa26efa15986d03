"""The library's own pages in a real browser: Back after signing in, a role-protected page
(with the demo's replacement of the 403 template), and every page entra-auth shows at 375 px."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from entra_auth.emulator import EntraEmulator, Fault
from entra_auth.errors import SessionStoreUnavailable
from entra_auth.integrations.flask import login

from ..helpers import ADELE, MEGAN
from ..security.web import Web
from ..test_signin_pages import make_app
from .conftest import PHONE, Demo
from .test_demo_in_browser import shot, sign_in_as

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("demo", ["flask", "fastapi"], indirect=True)
def test_back_after_signing_in_goes_on_to_the_page(
    page: Page, demo: Demo, entra_emulator: EntraEmulator
) -> None:
    page.goto(f"{demo.url}/claims")
    page.wait_for_url(re.compile(re.escape(entra_emulator.urls.browser_base)))
    page.click(f"button[data-upn='{MEGAN}']")
    expect(page.locator("h1")).to_have_text("Permissions requested")
    page.click("#accept")
    page.wait_for_url(f"{demo.url}/claims")
    expect(page.locator("#claims-table")).to_be_visible()
    # Back, past the consent page (a POST's answer), to the IdP's authorize URL of the sign-in
    # just finished: signed in there, the IdP comes straight back to the callback with that
    # sign-in's state. No "already used" page: on to /claims.
    with page.expect_request(lambda r: "/get_token?" in r.url and "state=" in r.url):
        page.evaluate("history.go(-2)")
    page.wait_for_url(f"{demo.url}/claims")
    page.wait_for_load_state("load")
    expect(page.locator("#claims-table")).to_be_visible()
    expect(page.locator("#who")).to_have_text("Megan Bowen")
    assert "already used" not in page.content()
    shot(page, "9-back-after-sign-in")


@pytest.mark.parametrize("demo", ["flask", "fastapi"], indirect=True)
def test_role_protected_page_and_the_replaced_403_template(
    page: Page, demo: Demo, entra_emulator: EntraEmulator
) -> None:
    page.goto(demo.url)
    sign_in_as(page, entra_emulator, MEGAN)
    page.click("#accept")
    page.wait_for_url(f"{demo.url}/")
    page.click("#nav-admin")
    # Megan lacks the web app's Admin role: the demo's own 403 page (its menu, its words).
    expect(page.locator("#demo-forbidden h1")).to_contain_text("have access to this page")
    expect(page.locator("#message")).to_contain_text(MEGAN)
    expect(page.locator("#nav-home")).to_be_visible()
    expect(page.locator("#detail")).not_to_have_attribute("open", "")
    shot(page, "10-admin-refused")
    # "Sign in as someone else": Entra's account picker, then Adele (who has the role) gets in.
    page.click("#retry")
    page.wait_for_url(re.compile(re.escape(entra_emulator.urls.browser_base)))
    page.click(f"button[data-upn='{ADELE}']")
    expect(page.locator("h1")).to_have_text("Permissions requested")
    page.click("#accept")
    page.wait_for_url(f"{demo.url}/admin")
    expect(page.locator("#roles")).to_contain_text("Admin")
    shot(page, "11-admin")


# -- every page the library shows, at a phone's width --------------------------------------
PageMaker = Callable[[Web], str]


def _cancelled(web: Web) -> str:
    state = parse_qs(urlsplit(web.begin()).query)["state"][0]
    return web.callback({"error": "access_denied", "state": state}).get_data(as_text=True)


def _already_used(web: Web) -> str:
    params = web.authorize(web.begin())
    web.callback(params)
    with web.client.session_transaction() as session:
        session.clear()
    return web.callback(params).get_data(as_text=True)


def _another_browser(web: Web) -> str:
    params = Web(web.emulator, web.app).authorize(Web(web.emulator, web.app).begin())
    web.begin()
    return web.callback(params).get_data(as_text=True)


def _forbidden(web: Web) -> str:
    web.sign_in(user=MEGAN)
    return web.client.get("/admin").get_data(as_text=True)


def _unavailable(web: Web) -> str:
    params = web.authorize(web.begin())
    web.emulator.inject_fault("token", Fault("status", status=503, retry_after=7, times=5))
    return web.callback(params).get_data(as_text=True)


def _store_unavailable(web: Web) -> str:
    if web.adapter == "fastapi":
        from starlette.requests import HTTPConnection

        scope = {"type": "http", "method": "GET", "path": "/profile", "query_string": b"",
                 "headers": []}  # fmt: skip
        return bytes(web.app.auth._store_unavailable(HTTPConnection(scope)).body).decode()
    with web.app.test_request_context("/profile"):
        response = login._store_unavailable(SessionStoreUnavailable("Redis is down."))
        return response.get_data(as_text=True)


def _sign_out(web: Web) -> str:
    web.sign_in()
    return web.client.get("/logout").get_data(as_text=True)


LIBRARY_PAGES: dict[str, PageMaker] = {
    "sign-in-cancelled": _cancelled,
    "sign-in-already-used": _already_used,
    "sign-in-another-browser": _another_browser,
    "forbidden": _forbidden,
    "unavailable": _unavailable,
    "store-unavailable": _store_unavailable,
    "sign-out": _sign_out,
}


@pytest.fixture
def library_app(entra_emulator: EntraEmulator, tmp_path: Path, web_adapter: str) -> Iterator[Any]:
    app = make_app(web_adapter, entra_emulator, tmp_path)
    yield app
    if hasattr(app, "close"):  # the FastAPI app's client and loop
        app.close()


# Not Django (yet): Playwright's loop in this thread makes Django refuse its ORM (async-unsafe).
@pytest.mark.parametrize("web_adapter", ["flask", "fastapi"])
@pytest.mark.parametrize("name", list(LIBRARY_PAGES))
def test_every_library_page_fits_a_phone(
    phone_page: Page, library_app: Any, entra_emulator: EntraEmulator, name: str, web_adapter: str
) -> None:
    html = LIBRARY_PAGES[name](Web(entra_emulator, library_app))
    phone_page.set_content(html)
    expect(phone_page.locator("h1")).to_be_visible()
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name}: {width} px wide"
    # Words for the user up front; the developer's detail folded away.
    main = phone_page.locator("main")
    assert "AADSTS" not in main.evaluate(
        "m => [...m.children].filter(e => e.tagName !== 'DETAILS').map(e => e.innerText).join()"
    )
    if phone_page.locator("details").count():
        expect(phone_page.locator("details")).not_to_have_attribute("open", "")
    shot(phone_page, f"375px-library-{name}" + ("" if web_adapter == "flask" else "-fastapi"))
