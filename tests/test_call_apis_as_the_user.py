"""The chain: a browser → the web app → API A (the demo's /secure-data) → on behalf of the user,
Microsoft Graph and API B (the FastAPI demo API as the seed's legacy API, under uvicorn).

Each demo (Flask under werkzeug, FastAPI under uvicorn) is served on a port the system picks;
the identity provider's pages are walked by ``BrowserlessUser``. The local Entra ID's counters
say how many token requests each step cost."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from entra_auth.emulator import EntraEmulator
from entra_auth.testing.driver import BrowserlessUser

from .helpers import (
    ADELE,
    API,
    HANG_GUARD,
    LEGACY,
    LEGACY_URI,
    MEGAN,
    secret_of,
    serve_demo,
    serve_fastapi_api,
    serve_fastapi_demo,
)

LEGACY_READ = f"{LEGACY_URI}/Legacy.Read"


@contextlib.contextmanager
def chain(emulator: EntraEmulator, tmp_path: Path, adapter: str) -> Iterator[str]:
    """API B, then the demo (web app and API A) calling Graph and API B on the user's behalf."""
    api_b = {
        "ENTRA_AUTHORITY": emulator.authority,
        "ENTRA_CLIENT_ID": LEGACY,
        "ENTRA_API_AUDIENCE": f"{LEGACY},{LEGACY_URI}",
        "ENTRA_ACCEPTED_TOKEN_VERSIONS": "1",  # the legacy API gets v1 tokens
        "ENTRA_CA_BUNDLE": str(emulator.ca_path),
        "DEMO_API_SCOPE": LEGACY_READ,
    }
    with serve_fastapi_api(api_b) as api_b_url:
        settings = {
            "DEMO_API_CLIENT_ID": API,
            "DEMO_API_CLIENT_SECRET": secret_of(emulator, API),
            "DEMO_DOWNSTREAM_URL": api_b_url,
            "DEMO_DOWNSTREAM_SCOPE": LEGACY_READ,
            "ENTRA_CLIENT_CAPABILITIES": "CP1",
        }
        serve = serve_demo if adapter == "flask" else serve_fastapi_demo
        with serve(emulator, tmp_path / "sessions", **settings) as (base, _app):
            yield base


class Browser:
    """One user's browser on the web app, through the identity provider when sent there."""

    def __init__(self, base: str, user: str):
        self.base, self.user = base, user
        self.http, self.idp = requests.Session(), BrowserlessUser()
        self.http.trust_env = False
        self.trips = 0  # how many times the web app sent this browser to the IdP

    def open(self, path: str) -> requests.Response:
        response = self.http.get(f"{self.base}{path}", allow_redirects=False, timeout=HANG_GUARD)
        for _ in range(4):
            location = response.headers.get("Location", "")
            if response.status_code != 302:
                return response
            if location.startswith(self.base) or location.startswith("/"):
                target = location if location.startswith("http") else f"{self.base}{location}"
                response = self.http.get(target, allow_redirects=False, timeout=HANG_GUARD)
                continue
            self.trips += 1
            self.last_authorize = location
            answer = self.idp.authorize(location, user=self.user)
            response = self.http.get(
                f"{self.base}/get_token", params=answer, allow_redirects=False, timeout=HANG_GUARD
            )
        raise AssertionError(f"too many redirects, at {response.headers.get('Location')}")

    def api_answer(self) -> dict[str, Any]:
        page = self.open("/call-api")
        assert page.status_code == 200, page.text[:500]
        assert '<span id="api-status" class="status">200</span>' in page.text, page.text[:3000]
        return _shown_json(page.text)


def _shown_json(html: str) -> dict[str, Any]:
    import html as html_module
    import json

    start = html.index("<pre>") + len("<pre>")
    return dict(json.loads(html_module.unescape(html[start : html.index("</pre>", start)])))


@pytest.mark.parametrize("adapter", ["flask", "fastapi"])
def test_the_chain_costs_one_exchange_per_user_and_downstream_api(
    entra_emulator: EntraEmulator, tmp_path: Path, adapter: str
) -> None:
    entra_emulator.grant_consent(ADELE, API, LEGACY_READ)  # API A may call API B for Adele
    with chain(entra_emulator, tmp_path, adapter) as base:
        adele = Browser(base, ADELE)
        adele.open("/login")
        answer = adele.api_answer()  # consent to the demo API's scope: one trip
        assert answer["graph"]["displayName"] == "Adele Vance"
        assert answer["api_b"]["message"] == "Hello Adele Vance, this data is protected."
        assert answer["api_b"]["scopes"] == ["Legacy.Read"]
        counts = entra_emulator.request_counts()
        assert counts["token:on_behalf_of"] == 2  # Graph, API B
        for _ in range(3):  # tokens fresh: no token request at all
            assert adele.api_answer()["graph"]["displayName"] == "Adele Vance"
        again = entra_emulator.request_counts()
        assert again["token"] == counts["token"]
        assert again["graph"] == counts["graph"] + 3


@pytest.mark.parametrize("adapter", ["flask", "fastapi"])
def test_a_revoked_session_takes_the_user_through_the_idp_once(
    entra_emulator: EntraEmulator, tmp_path: Path, adapter: str
) -> None:
    """CAE: the admin revokes Adele's sessions. Graph challenges API A's token; API A cannot
    meet it silently and passes the claims up; the web app cannot either (its refresh token
    is revoked) and sends Adele through the sign-in page once, with the claims; back on the
    page, a fresh token makes the whole chain work again."""
    entra_emulator.grant_consent(ADELE, API, LEGACY_READ)
    with chain(entra_emulator, tmp_path, adapter) as base:
        adele = Browser(base, ADELE)
        adele.open("/login")
        adele.api_answer()
        trips = adele.trips
        entra_emulator.revoke_sessions(ADELE)
        answer = adele.api_answer()
        assert adele.trips == trips + 1  # one trip to the identity provider
        claims = parse_qs(urlsplit(adele.last_authorize).query).get("claims", [""])[0]
        assert '"nbf"' in claims  # Graph's CAE claims went with the sign-in
        assert answer["graph"]["displayName"] == "Adele Vance"
        assert answer["api_b"]["message"].startswith("Hello Adele Vance")


@pytest.mark.parametrize("adapter", ["flask", "fastapi"])
def test_consent_missing_downstream_is_a_challenge_the_caller_can_follow(
    entra_emulator: EntraEmulator, tmp_path: Path, adapter: str
) -> None:
    """Megan never consented to API A calling API B (AADSTS65001 for the exchange): API A
    answers 403 with the scopes and where to consent, never a 500; once she has consented
    the chain works."""
    with chain(entra_emulator, tmp_path, adapter) as base:
        megan = Browser(base, MEGAN)
        megan.open("/login")
        page = megan.open("/call-api")
        assert '<span id="api-status" class="status">403</span>' in page.text, page.text[:2000]
        shown = _shown_json(page.text)
        assert shown["error"] == "consent_required"
        assert "Legacy.Read" in shown["error_description"]
        consent_uri = shown["consent_uri"]
        assert f"client_id={API}" in consent_uri
        assert "prompt=consent" in consent_uri
        entra_emulator.grant_consent(MEGAN, API, LEGACY_READ)  # what the consent page records
        assert megan.api_answer()["api_b"]["message"].startswith("Hello Megan Bowen")


@pytest.mark.parametrize("adapter", ["flask", "fastapi"])
def test_a_downstream_api_unavailable_is_a_503_with_retry_after_not_a_500(
    entra_emulator: EntraEmulator, tmp_path: Path, adapter: str
) -> None:
    from entra_auth.emulator import Fault

    from .helpers import API_URI, WEB

    with chain(entra_emulator, tmp_path, adapter) as base:
        token = entra_emulator.issue_token(
            client_id=WEB, resource=API_URI, user=ADELE, scopes=["access_as_user"]
        )
        entra_emulator.inject_fault("graph", Fault("status", status=503, retry_after=40))
        answer = requests.get(
            f"{base}/secure-data", headers={"Authorization": f"Bearer {token}"}, timeout=HANG_GUARD
        )
    assert answer.status_code == 503, answer.text[:500]
    assert answer.headers["Retry-After"] == "40"
    assert answer.json()["error"] == "temporarily_unavailable"
    assert "depends on" in answer.json()["error_description"]
