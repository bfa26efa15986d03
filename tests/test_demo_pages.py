"""The demo's own pages: dates for NumericDate claims, the 404 page, the icon; and the demo
pointed at an API on the portal's default (v1 access tokens), end to end."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from examples.demo.app import ago, claim_rows, create_app, numeric_date
from werkzeug.serving import make_server

from entra_auth.diagnostics import decode_unverified
from entra_auth.emulator import EntraEmulator
from entra_auth.testing.driver import BrowserlessUser

from .helpers import ADELE, HANG_GUARD, LEGACY, LEGACY_URI, WEB, demo_config
from .security.web import WEB_ADAPTERS, Web

# 2026-11-25 14:03:20 UTC
MOMENT = 1795615400


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "just now"),
        (-4.9, "just now"),
        (5, "in 5 s"),
        (45, "in 45 s"),
        (-45, "45 s ago"),
        (52 * 60 + 59, "in 52 min"),
        (-3 * 60, "3 min ago"),
        (3600, "in 1 h"),
        (3600 + 5 * 60, "in 1 h 5 min"),
        (-(47 * 3600 + 59 * 60), "47 h 59 min ago"),
        (-2 * 86400, "2 days ago"),
        (400 * 86400, "in 400 days"),
    ],
)
def test_ago_in_words(seconds: int, words: str) -> None:
    assert ago(seconds) == words


def test_a_numeric_date_as_a_date_and_how_far_away() -> None:
    when = numeric_date(MOMENT, now=MOMENT - 52 * 60 - 10)
    assert when is not None
    assert when.text == "2026-11-25 14:03 UTC (in 52 min)"
    assert when.iso == "2026-11-25T14:03:20Z"
    past = numeric_date(MOMENT, now=MOMENT + 120)
    assert past is not None
    assert past.text == "2026-11-25 14:03 UTC (2 min ago)"


@pytest.mark.parametrize("value", [True, "1795615400", None, 10**30, [MOMENT]])
def test_what_is_not_a_numeric_date_is_shown_as_it_is(value: object) -> None:
    assert numeric_date(value, now=MOMENT) is None


def test_claim_rows() -> None:
    rows = {
        row.name: row
        for row in claim_rows(
            {"exp": MOMENT, "roles": ["Admin", "Reader"], "nbf": "soon", "ver": "2.0", "x": {}},
            now=MOMENT - 60,
        )
    }
    assert rows["exp"].when is not None
    assert rows["exp"].when.text == "2026-11-25 14:03 UTC (in 1 min)"
    assert rows["exp"].what == "Expires"
    assert rows["roles"].text == "Admin, Reader"
    assert rows["roles"].when is None
    assert rows["nbf"].when is None  # not a number: shown as given
    assert rows["nbf"].text == "soon"
    assert rows["x"].text == "{}"
    assert rows["x"].what is None


@pytest.mark.parametrize("web", WEB_ADAPTERS, indirect=True)
def test_the_claims_page_shows_dates_and_keeps_the_raw_value(web: Web) -> None:
    web.sign_in()
    page = web.client.get("/claims").get_data(as_text=True)
    for claim in ("iat", "exp"):
        found = re.search(
            rf'<tr id="claim-{claim}">.*?<time datetime="([^"]+)" title="{claim} = (\d+)">'
            r"([^<]+)</time><small class=\"raw\">(\d+)</small>",
            page,
            re.S,
        )
        assert found is not None, claim
        iso, title_raw, shown, raw = found.groups()
        assert title_raw == raw
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", iso)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC \((in .+|.+ ago|just now)\)", shown)


@pytest.mark.parametrize("web", WEB_ADAPTERS, indirect=True)
def test_the_404_page_is_the_demo_s_own(web: Web) -> None:
    response = web.client.get("/no-such-page", headers={"Accept": "text/html"})  # a browser's
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "<h1>Page not found</h1>" in page
    assert "/static/demo.css" in page  # the demo's layout
    assert "Not signed in" in page  # the same header as every page


@pytest.mark.parametrize("web", WEB_ADAPTERS, indirect=True)
def test_the_icon_is_served_and_linked(web: Web) -> None:
    home = web.client.get("/").get_data(as_text=True)
    assert '<link rel="icon" type="image/svg+xml" href="/static/favicon.svg">' in home
    for path in ("/static/favicon.svg", "/favicon.ico"):
        response = web.client.get(path, follow_redirects=True)  # as a browser
        assert response.status_code == 200, path
        assert response.mimetype == "image/svg+xml", path
        assert response.get_data().startswith(b"<svg ")


# -- the demo on a v1 API ------------------------------------------------------------------------
Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@contextmanager
def demo_served(
    emulator: EntraEmulator, session_dir: Path, **settings: str
) -> Iterator[tuple[str, list[str]]]:
    """The demo served on a port the system picks, with ``settings`` over its usual ones; also
    the bearer tokens its /secure-data received, as the demo's own /call-api sent them."""
    received: list[str] = []

    def not_yet(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        raise RuntimeError("never served: the app is set before serve_forever starts")

    server = make_server("127.0.0.1", 0, not_yet, threaded=True)
    thread: threading.Thread | None = None
    try:
        base = f"http://localhost:{server.port}"
        emulator.add_redirect_uri(WEB, f"{base}/get_token")
        app = create_app(
            demo_config(
                emulator,
                ENTRA_REDIRECT_URI=f"{base}/get_token",
                ENTRA_SESSION_DIR=str(session_dir),
                **settings,
            )
        )
        wsgi: Wsgi = app.wsgi_app

        def recording(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            if environ.get("PATH_INFO") == "/secure-data":
                received.append(environ.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer "))
            return wsgi(environ, start_response)

        server.app = recording  # type: ignore[assignment]
        thread = threading.Thread(target=server.serve_forever, daemon=True, name="demo-v1")
        thread.start()
        yield base, received
    finally:
        if thread is not None:
            server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=HANG_GUARD)


def call_api_signed_in(base: str) -> requests.Response:
    """Sign Adele in, then open /call-api: consent to the API's scope at the identity provider,
    back to /call-api, which calls the API with the token."""
    browser, idp = requests.Session(), BrowserlessUser()
    browser.trust_env = False

    def through_idp(start: requests.Response) -> requests.Response:
        assert start.status_code == 302, start.text[:300]
        answer = idp.authorize(start.headers["Location"], user=ADELE)
        return browser.get(f"{base}/get_token", params=answer, timeout=HANG_GUARD)

    through_idp(browser.get(f"{base}/login", allow_redirects=False, timeout=HANG_GUARD))
    return through_idp(browser.get(f"{base}/call-api", allow_redirects=False, timeout=HANG_GUARD))


# The seed's legacy API is registered as the portal leaves an API: no accessTokenAcceptedVersion,
# so Entra (and the local Entra ID) give it v1 tokens.
LEGACY_SETTINGS = {
    "ENTRA_API_AUDIENCE": f"{LEGACY},{LEGACY_URI}",
    "DEMO_API_SCOPE": f"{LEGACY_URI}/Legacy.Read",
}


def test_fid06_the_demo_calls_a_v1_api_end_to_end(
    entra_emulator: EntraEmulator, tmp_path: Path
) -> None:
    with demo_served(
        entra_emulator, tmp_path, ENTRA_ACCEPTED_TOKEN_VERSIONS="1", **LEGACY_SETTINGS
    ) as (base, received):
        page = call_api_signed_in(base)
    assert page.status_code == 200
    text = page.text
    assert '<span id="api-status" class="status">200</span>' in text, text[:2000]
    assert "Hello Adele Vance, this data is protected." in text
    assert "Legacy.Read" in text
    assert len(received) == 1
    claims = decode_unverified(received[0]).claims
    assert claims["ver"] == "1.0"
    assert claims["iss"] == f"https://sts.windows.net/{entra_emulator.tenant_id}/"
    assert claims["aud"] == LEGACY_URI
    assert claims["scp"] == "Legacy.Read"
    assert claims["appid"] == WEB


def test_fid06_the_demo_on_a_v1_api_with_the_v2_default_says_why(
    entra_emulator: EntraEmulator, tmp_path: Path
) -> None:
    """The mismatch `entra-auth doctor` reports: the API refuses the v1 token, and says why."""
    with demo_served(entra_emulator, tmp_path, **LEGACY_SETTINGS) as (base, received):
        page = call_api_signed_in(base)
    assert '<span id="api-status" class="status">401</span>' in page.text
    assert "The token is a v1 access token, and this API accepts v2 only." in page.text
    assert "ENTRA_ACCEPTED_TOKEN_VERSIONS" in page.text
    assert decode_unverified(received[0]).claims["ver"] == "1.0"
