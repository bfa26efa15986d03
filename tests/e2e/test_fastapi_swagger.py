"""The FastAPI demo's Swagger UI in a real browser against the local Entra ID: Authorize signs
in (a popup through the emulator's pages), the browser redeems the code with PKCE, and *Try it
out* calls the protected API; a Web redirect URI shows Entra's AADSTS9002326 instead. Then the
API itself, served by uvicorn as ``make demo-fastapi`` serves it: the daemon's endpoint and the
authenticated WebSocket echo.

The demo is ``examples/fastapi_demo/run.py``'s own pieces: the app's socket first (port 0),
the emulator with the docs' SPA redirect URI on that port, uvicorn in a thread.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import requests
from examples.demo.run import APP_PORT, BROWSER_PORT, EMULATOR_PORT, take_port
from examples.fastapi_demo import run
from examples.fastapi_demo.app import create_app
from playwright.sync_api import Browser, BrowserContext, Page, expect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from entra_auth.emulator import EntraEmulator

from ..helpers import HANG_GUARD
from .conftest import ARTIFACTS, WAIT_MS, page_kept_on_failure

pytestmark = pytest.mark.e2e

ADELE = "adele@contoso.example"
WEB_APP = "4b7d2f1c-3a5e-4c8b-9d61-2e0f7a9b3c15"  # the Flask demo's web app: a Web platform app
DAEMON = "d2e4f6a8-1b3c-4d5e-8f70-9a1b2c3d4e5f"
API_URI = "api://a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c"


@dataclass
class FastApiDemo:
    url: str
    emulator: EntraEmulator


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastApiDemo]:
    listening = take_port(APP_PORT, {APP_PORT: 0})  # as run.py: the port first, then the rest
    port = listening.getsockname()[1]
    ports = {EMULATOR_PORT: 0, BROWSER_PORT: 0}
    state = str(tmp_path_factory.mktemp("fastapi-demo-emulator"))
    try:
        emulator = run.start_emulator(ports, state, run.seed_for(port))
    except BaseException:
        listening.close()
        raise
    try:
        app = create_app(run.settings(emulator, port))
        with listening, run.serving(app, listening):
            yield FastApiDemo(f"http://localhost:{port}", emulator)
    finally:
        emulator.stop()


@pytest.fixture
def demo(served: FastApiDemo) -> FastApiDemo:
    served.emulator.reset()  # no consent, no sign-in, no extra redirect URI from another test
    return served


@pytest.fixture
def trusting(browser: Browser) -> Iterator[BrowserContext]:
    """A browser that trusts the local Entra ID's HTTPS, as a developer's does once it trusts
    ``ca.pem`` (or accepted its certificate): Swagger UI calls its token endpoint itself."""
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    yield context
    context.close()


@pytest.fixture
def docs(trusting: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from page_kept_on_failure(trusting, request)


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def hosts_seen(page: Page) -> list[str]:
    """Every host the page asks something of, as the requests go out."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(urlsplit(r.url).hostname or r.url))
    return seen


def authorize(page: Page, *, client_id: str | None = None) -> None:
    """Swagger UI's Authorize dialog, as a user fills it: the popup to the sign-in page, Adele,
    consent, and back (the popup closes itself)."""
    page.click(".auth-wrapper button.authorize")
    dialog = page.locator(".dialog-ux")
    expect(dialog).to_contain_text("Authorization URL")  # from the discovery document
    if client_id is not None:  # the field initOAuth filled: typed over, as a user would
        page.fill("#client_id_authorizationCode", client_id)
    scope = dialog.locator(f"input[data-value='{API_URI}/access_as_user']")
    expect(scope).to_be_checked()  # initOAuth's scopes, pre-selected
    with page.expect_popup() as opened:
        dialog.locator("button.authorize").click()
    popup = opened.value
    popup.click(f"button[data-upn='{ADELE}']")
    expect(popup.locator("h1")).to_have_text("Permissions requested")
    try:
        with popup.expect_event("close"):  # oauth2-redirect hands the code back, and closes
            popup.click("#accept")
    except BaseException:
        if not popup.is_closed():
            shot(popup, "fastapi-popup-not-closed")
        raise


def test_authorize_in_swagger_ui_then_try_it_out(demo: FastApiDemo, docs: Page) -> None:
    seen = hosts_seen(docs)
    docs.goto(f"{demo.url}/docs")
    expect(docs.locator(".information-container .title")).to_contain_text("entra-auth demo API")
    shot(docs, "fastapi-1-swagger-ui")

    authorize(docs)
    dialog = docs.locator(".dialog-ux")
    expect(dialog.get_by_role("button", name="Remove authorization")).to_be_visible()
    expect(dialog).to_contain_text("Authorized")
    shot(docs, "fastapi-2-authorized")
    docs.click(".auth-btn-wrapper button.btn-done")

    operation = docs.locator("#operations-default-secure_data_secure_data_get")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    answer = operation.locator(".live-responses-table .response")
    expect(answer.locator(".response-col_status")).to_have_text("200")
    expect(answer.locator(".highlight-code")).to_contain_text("Hello Adele Vance")
    expect(answer.locator(".highlight-code")).to_contain_text("access_as_user")
    expect(operation.locator(".request-url")).to_contain_text(f"{demo.url}/secure-data")
    shot(docs, "fastapi-3-try-it-out")

    local = {"localhost", "127.0.0.1"}
    assert set(seen) <= local, f"the page asked other hosts than the local ones: {set(seen)}"


def test_a_web_redirect_uri_shows_aadsts9002326(demo: FastApiDemo, docs: Page) -> None:
    # The mistake: Swagger UI signing in as a Web app (the Flask demo's), its redirect URI
    # registered on the Web platform. Entra lets it sign in, then refuses the browser's code
    # redemption; Swagger UI shows why.
    demo.emulator.add_redirect_uri(WEB_APP, f"{demo.url}/docs/oauth2-redirect")
    docs.goto(f"{demo.url}/docs")
    authorize(docs, client_id=WEB_APP)
    errors = docs.locator(".dialog-ux .errors")
    expect(errors).to_contain_text("AADSTS9002326")
    expect(errors).to_contain_text("Cross-origin token redemption is permitted only for the")
    expect(errors).to_contain_text(f"Request origin: '{demo.url}'")
    logout = docs.locator(".dialog-ux").get_by_role("button", name="Remove authorization")
    expect(logout).to_have_count(0)  # not authorized
    shot(docs, "fastapi-4-web-redirect-uri-9002326")


# -- the API under uvicorn, without a browser -----------------------------------------------------
def daemon_token(emulator: EntraEmulator) -> str:
    return emulator.issue_token(client_id=DAEMON, resource=API_URI, roles=["Data.Read.All"])


def adele_token(emulator: EntraEmulator, scopes: list[str]) -> str:
    return emulator.issue_token(client_id=WEB_APP, resource=API_URI, user=ADELE, scopes=scopes)


def test_the_daemons_endpoint_wants_the_app_role(demo: FastApiDemo) -> None:
    http = requests.Session()
    http.trust_env = False
    token = daemon_token(demo.emulator)
    answer = http.get(
        f"{demo.url}/all-data", headers={"Authorization": f"Bearer {token}"}, timeout=HANG_GUARD
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["app_only"] is True
    assert answer.json()["roles"] == ["Data.Read.All"]
    # A daemon's token is no user's: /secure-data wants the scope.
    refused = http.get(
        f"{demo.url}/secure-data", headers={"Authorization": f"Bearer {token}"}, timeout=HANG_GUARD
    )
    assert refused.status_code == 403, refused.text
    assert http.get(f"{demo.url}/all-data", timeout=HANG_GUARD).status_code == 401


def test_the_websocket_echoes_for_a_valid_token_only(demo: FastApiDemo) -> None:
    url = demo.url.replace("http://", "ws://") + "/ws/echo"
    token = adele_token(demo.emulator, ["access_as_user"])
    with connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=HANG_GUARD,
        close_timeout=5,
    ) as websocket:
        websocket.send("hello")
        assert json.loads(websocket.recv(timeout=HANG_GUARD)) == {
            "from": "Adele Vance",
            "echo": "hello",
        }
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        with (
            pytest.raises(InvalidStatus) as refused,
            connect(url, additional_headers=headers, open_timeout=HANG_GUARD),
        ):
            pass
        assert refused.value.response.status_code == 401  # RFC 6750, as for a request


def test_the_server_stops_in_bounded_time_with_a_websocket_open(demo: FastApiDemo) -> None:
    """``serving`` (what ``make demo-fastapi`` stops on Ctrl-C) returns within its bound while
    a client keeps a WebSocket open, and nothing listens on the port after."""
    app = create_app(run.settings(demo.emulator, int(demo.url.rsplit(":", 1)[1])))
    listening = take_port(APP_PORT, {APP_PORT: 0})
    port = listening.getsockname()[1]
    token = adele_token(demo.emulator, ["access_as_user"])
    with contextlib.ExitStack() as client_side:  # the client closes last, after the server
        with listening, run.serving(app, listening):
            client = client_side.enter_context(
                connect(
                    f"ws://localhost:{port}/ws/echo",
                    additional_headers={"Authorization": f"Bearer {token}"},
                    open_timeout=HANG_GUARD,
                    close_timeout=5,
                )
            )
            client.send("still here")
            assert json.loads(client.recv(timeout=HANG_GUARD))["echo"] == "still here"
            stopping = time.monotonic()
        took = time.monotonic() - stopping
    assert took < 2 * run.STOP_SECONDS, f"the server took {took:.1f} s to stop"
    with pytest.raises(ConnectionRefusedError):  # the listening socket is closed
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
