"""Issue 16, the protocol as Entra speaks it (items 10-12), each case named ``test_fidNN_``.

10. PKCE as Entra applies it: required for single-page-app redirect URIs (whose codes are
    redeemed from the browser, cross-origin, without a secret), optional for Web ones; ``S256``
    and ``plain``; a verifier without a challenge, or a challenge without a verifier, refused.
11. Error bodies and headers as Entra writes them, still read by the library.
12. Sign-out: ``logout_hint`` signs out that account without a question; a browser with
    several accounts gets Entra's account picker, which ``BrowserlessUser`` answers.

The default directory (the ``entra_emulator`` fixture) serves the Web cases; a directory of
this module adds a single-page app, a multi-tenant web app that asks for the ``login_hint``
optional claim, and a relying party (on a port the system picks) that serves the SPA's page and
records the front-channel calls.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import markupsafe
import msal
import pytest
import requests
from playwright.sync_api import Page
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from entra_auth import aadsts
from entra_auth.client.signin import _error_from
from entra_auth.emulator import EntraEmulator
from entra_auth.emulator.minting import hash_verifier
from entra_auth.emulator.seed import seed_from_dict
from entra_auth.testing.driver import BrowserlessUser, SignInRefused

from ..helpers import (
    ADELE,
    API_URI,
    CONTOSO,
    DAEMON,
    FABRIKAM,
    HANG_GUARD,
    MEGAN,
    REDIRECT,
    WEB,
    confidential_client,
    secret_of,
)
from ..helpers import in_chromium as in_chromium_with

BOB = "bob@fabrikam.example"
SPA_APP = "5fa0c0de-1111-4111-8111-0000000000a1"  # SPA platform only: no secret
WEB_APP = "5fa0c0de-2222-4222-8222-0000000000b2"  # Web platform, multi-tenant, login_hint claim
SECRET = "fidelity-protocol-test-secret"  # a local test value
EVIL_NAME = '<img src=x onerror="alert(1)"> & Co'
GUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
ENTRA_DESCRIPTION = re.compile(
    r"\AAADSTS(\d+): [^\r\n]+\r\nTrace ID: ([0-9a-f-]{36})\r\nCorrelation ID: ([0-9a-f-]{36})"
    r"\r\nTimestamp: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ)\Z"
)


# -- a relying party: the SPA's page, a Web callback, a front-channel route ------------------------
@dataclass
class Party:
    """Serves ``/spa/`` (the single-page app, whose redirect URI it is) and ``/fc`` (the web
    app's front-channel logout URL, which records the ``sid`` it gets)."""

    base: str = ""
    page: str = ""  # the SPA's HTML, set once the emulator's URLs are known
    front_channel: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path == "/spa/":
            response = Response(self.page, mimetype="text/html")
        elif request.path == "/fc":
            with self.lock:
                self.front_channel.append(request.args.get("sid", ""))
            response = Response("")
        else:
            response = Response("not found", 404)
        return response(environ, start_response)


@pytest.fixture(scope="module")
def party() -> Iterator[Party]:
    served = Party()
    server: BaseWSGIServer = make_server("127.0.0.1", 0, served, threaded=True)
    served.base = f"http://localhost:{server.port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="fid-party")
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()  # returns once serve_forever has (it polls every 0.5 s)
        server.server_close()
        thread.join(timeout=HANG_GUARD)


@pytest.fixture(scope="module")
def emulator(party: Party, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EntraEmulator]:
    user = {"password": "demo"}
    raw = {
        "tenants": [
            {"id": CONTOSO, "domain": "contoso.example", "display_name": "Contoso"},
            {"id": FABRIKAM, "domain": "fabrikam.example", "display_name": "Fabrikam"},
        ],
        "apps": [
            {
                "client_id": SPA_APP,
                "tenant": "contoso.example",
                "display_name": "Fidelity SPA",
                "multi_tenant": True,
                "spa_redirect_uris": [f"{party.base}/spa/"],
            },
            {
                "client_id": WEB_APP,
                "tenant": "contoso.example",
                "display_name": "Fidelity web app",
                "multi_tenant": True,
                "redirect_uris": ["https://web.example/cb"],
                "post_logout_redirect_uris": ["https://web.example/"],
                "front_channel_logout_url": f"{party.base}/fc",
                "secrets": [{"value": SECRET, "expires": "2099-01-01T00:00:00Z"}],
                "optional_claims": {"id_token": [{"name": "login_hint"}]},
            },
        ],
        "users": [
            {"oid": "0a9c7b3e-4d2f-4e8a-b1c6-5f3d2e1a0b9c", "tenant": CONTOSO, "upn": ADELE,
             "name": "Adele Vance", **user},
            {"oid": "1b8d6c4f-5e3a-4f9b-a2d7-6e4c3f2b1a0d", "tenant": CONTOSO, "upn": MEGAN,
             "name": EVIL_NAME, **user},
            {"oid": "2c7e5d3a-6f4b-4a0c-b3e8-7f5d4a3c2b1e", "tenant": FABRIKAM, "upn": BOB,
             "name": "Bob Kelly", **user},
        ],
    }  # fmt: skip
    state: Path = tmp_path_factory.mktemp("fidelity-protocol")
    with EntraEmulator(seed_from_dict(raw), state_dir=state, port=0, browser_port=0) as running:
        party.page = spa_page(running, party)
        yield running


@pytest.fixture(autouse=True)
def fresh(request: pytest.FixtureRequest) -> None:
    if "emulator" in request.fixturenames:
        request.getfixturevalue("emulator").reset()
        party: Party = request.getfixturevalue("party")
        with party.lock:
            party.front_channel.clear()


# -- helpers ---------------------------------------------------------------------------------------
def pkce() -> tuple[str, str]:
    """A verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    return verifier, hash_verifier(verifier)


def authorize_url(emulator: EntraEmulator, tenant: str = CONTOSO, **params: str) -> str:
    query = {"response_type": "code", "scope": "openid profile offline_access", "state": "st"}
    query.update(params)
    return f"{emulator.urls.browser_base}/{tenant}/oauth2/v2.0/authorize?{urlencode(query)}"


def logout_url(emulator: EntraEmulator, tenant: str = CONTOSO, **params: str) -> str:
    query = f"?{urlencode(params)}" if params else ""
    return f"{emulator.urls.browser_base}/{tenant}/oauth2/v2.0/logout{query}"


def token_post(
    emulator: EntraEmulator,
    data: dict[str, str],
    tenant: str = CONTOSO,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    return emulator.http_session().post(
        f"{emulator.authority_for(tenant)}/oauth2/v2.0/token", data=data, headers=headers or {}
    )


def aadsts_of(response: requests.Response) -> int:
    body = response.json()
    assert response.headers["x-ms-request-id"] == body["trace_id"]
    return int(body["error_codes"][0])


def web_code(
    emulator: EntraEmulator, browser: BrowserlessUser | None = None, **params: str
) -> dict[str, str]:
    """A code of the default directory's web app for Adele, with ``params`` in the request."""
    query = {
        "client_id": WEB,
        "redirect_uri": REDIRECT,
        "scope": "openid profile offline_access User.Read",
        **params,
    }
    answer = (browser or BrowserlessUser()).authorize(authorize_url(emulator, **query), user=ADELE)
    assert "code" in answer, answer
    return answer


def redeem_web(
    emulator: EntraEmulator, code: str, headers: dict[str, str] | None = None, **extra: str
) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": WEB,
        "client_secret": secret_of(emulator, WEB),
        "code": code,
        "redirect_uri": REDIRECT,
        **extra,
    }
    return token_post(emulator, form, headers=headers)


SPA_ORIGIN = {"Origin": "http://localhost:3000"}


def spa_code(
    emulator: EntraEmulator,
    party: Party,
    challenge: str,
    method: str | None = "S256",
    browser: BrowserlessUser | None = None,
) -> str:
    params = {
        "client_id": SPA_APP,
        "redirect_uri": f"{party.base}/spa/",
        "code_challenge": challenge,
    }
    if method is not None:
        params["code_challenge_method"] = method
    answer = (browser or BrowserlessUser()).authorize(authorize_url(emulator, **params), user=ADELE)
    assert "code" in answer, answer
    return answer["code"]


def redeem_spa(
    emulator: EntraEmulator,
    party: Party,
    code: str,
    verifier: str,
    headers: dict[str, str] | None = None,
    **extra: str,
) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": SPA_APP,
        "code": code,
        "redirect_uri": f"{party.base}/spa/",
        "code_verifier": verifier,
        **extra,
    }
    return token_post(emulator, form, headers=SPA_ORIGIN if headers is None else headers)


# -- 10. PKCE as Entra applies it ------------------------------------------------------------------
def test_fid10_a_web_redirect_uri_needs_no_pkce(entra_emulator: EntraEmulator) -> None:
    answer = web_code(entra_emulator)  # no code_challenge: recommended, not required, for Web
    response = redeem_web(entra_emulator, answer["code"])  # and so no code_verifier
    assert response.status_code == 200, response.text
    assert response.json()["id_token"]


def test_fid10_plain_and_a_missing_method_mean_plain(entra_emulator: EntraEmulator) -> None:
    verifier = secrets.token_urlsafe(48)
    for method in ("plain", None):
        params = {"code_challenge": verifier}
        if method:
            params["code_challenge_method"] = method
        # The challenge is the verifier itself; its S256 form is not the verifier.
        code = web_code(entra_emulator, **params)["code"]
        response = redeem_web(entra_emulator, code, code_verifier=verifier)
        assert response.status_code == 200, (method, response.text)
        wrong = web_code(entra_emulator, **params)["code"]
        refused = redeem_web(entra_emulator, wrong, code_verifier=hash_verifier(verifier))
        assert (refused.status_code, aadsts_of(refused)) == (400, 501481)
        assert refused.json()["error"] == "invalid_grant"


def test_fid10_s256_with_unpatched_msal_still_completes(entra_emulator: EntraEmulator) -> None:
    web_app = confidential_client(entra_emulator, WEB)
    flow = web_app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT)
    assert parse_qs(urlsplit(flow["auth_uri"]).query)["code_challenge_method"] == ["S256"]
    answer = BrowserlessUser().authorize(flow["auth_uri"], user=ADELE)
    result = web_app.acquire_token_by_auth_code_flow(flow, answer)
    assert "access_token" in result, result.get("error_description")


def test_fid10_pkce_on_one_leg_only_is_refused_50148(entra_emulator: EntraEmulator) -> None:
    # A challenge without its verifier (a code stolen from MSAL's flow, redeemed by someone
    # who lacks the verifier), and a verifier for a code requested without a challenge (a
    # downgrade: RFC 9700 §2.1.1 has the server refuse it). Entra: AADSTS50148 for both.
    verifier, challenge = pkce()
    code = web_code(entra_emulator, code_challenge=challenge, code_challenge_method="S256")
    without = redeem_web(entra_emulator, code["code"])
    assert (without.status_code, aadsts_of(without)) == (400, 50148)
    assert without.json()["error"] == "invalid_grant"

    plain_code = web_code(entra_emulator)["code"]
    downgraded = redeem_web(entra_emulator, plain_code, code_verifier=verifier)
    assert (downgraded.status_code, aadsts_of(downgraded)) == (400, 50148)
    # Each code was spent by its refused attempt: one use only, whatever happened.
    again = redeem_web(entra_emulator, plain_code)
    assert aadsts_of(again) == 54005


def test_fid10_a_spa_redirect_uri_requires_pkce_9002325(
    emulator: EntraEmulator, party: Party
) -> None:
    response = requests.get(
        authorize_url(emulator, client_id=SPA_APP, redirect_uri=f"{party.base}/spa/"),
        allow_redirects=False,
        timeout=HANG_GUARD,
    )
    assert response.status_code == 302  # the redirect URI is registered: back to the app
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{party.base}/spa/"
    answer = parse_qs(location.query)
    assert answer["error"] == ["invalid_request"]
    assert answer["error_description"][0].startswith(
        "AADSTS9002325: Proof Key for Code Exchange is required for cross-origin authorization "
        "code redemption.\r\nTrace ID: "
    )
    assert answer["state"] == ["st"]


def test_fid10_a_spa_redeems_from_the_browser_without_a_secret(
    emulator: EntraEmulator, party: Party
) -> None:
    for method in ("S256", "plain"):
        verifier, challenge = pkce()
        code = spa_code(emulator, party, challenge if method == "S256" else verifier, method)
        response = redeem_spa(emulator, party, code, verifier)
        assert response.status_code == 200, response.text
        assert response.headers["Access-Control-Allow-Origin"] == "*"  # readable cross-origin
        tokens = response.json()
        claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
        assert claims["aud"] == SPA_APP
        # Its refresh token is a SPA's too: from the browser it works, from a server not.
        refresh = {
            "grant_type": "refresh_token",
            "client_id": SPA_APP,
            "refresh_token": tokens["refresh_token"],
            "scope": "openid profile offline_access",
        }
        served = token_post(emulator, refresh)
        assert (served.status_code, aadsts_of(served)) == (400, 9002327)
        refreshed = token_post(emulator, refresh, headers=SPA_ORIGIN)
        assert refreshed.status_code == 200, refreshed.text
        again = {**refresh, "refresh_token": refreshed.json()["refresh_token"]}
        assert token_post(emulator, again, headers=SPA_ORIGIN).status_code == 200


def test_fid10_a_spa_code_from_a_server_or_with_a_secret_is_refused(
    emulator: EntraEmulator, party: Party
) -> None:
    verifier, challenge = pkce()
    # No Origin (a server), or `Origin: null` (what a sandboxed page or a file sends): 9002327.
    for headers in ({}, {"Origin": "null"}):
        code = spa_code(emulator, party, challenge)
        response = redeem_spa(emulator, party, code, verifier, headers=headers)
        assert (response.status_code, aadsts_of(response)) == (400, 9002327)
        assert response.json()["error"] == "invalid_request"
        assert response.json()["error_description"].startswith(
            "AADSTS9002327: Tokens issued for the 'Single-Page Application' client-type may "
            "only be redeemed via cross-origin requests.\r\n"
        )
    # A secret with a SPA's code: the SPA is a public client (Entra: AADSTS700025, 401).
    code = spa_code(emulator, party, challenge)
    response = redeem_spa(emulator, party, code, verifier, client_secret=SECRET)
    assert (response.status_code, aadsts_of(response)) == (401, 700025)
    assert response.json()["error"] == "invalid_client"
    # PKCE is checked for a SPA's code as for any: a wrong verifier is 501481.
    code = spa_code(emulator, party, challenge)
    response = redeem_spa(emulator, party, code, "w" * 43)
    assert aadsts_of(response) == 501481


def test_fid10_a_browser_redeeming_a_web_grant_gets_9002326(entra_emulator: EntraEmulator) -> None:
    code = web_code(entra_emulator)["code"]
    origin = {"Origin": "https://app.example"}
    response = redeem_web(entra_emulator, code, headers=origin)
    assert (response.status_code, aadsts_of(response)) == (400, 9002326)
    assert response.json()["error_description"].startswith(
        "AADSTS9002326: Cross-origin token redemption is permitted only for the 'Single-Page "
        "Application' client-type. Request origin: 'https://app.example'.\r\nTrace ID: "
    )
    assert response.headers["Access-Control-Allow-Origin"] == "*"  # the page can read why
    # A secret from a browser, in any flow: client credentials too.
    daemon = {
        "grant_type": "client_credentials",
        "client_id": DAEMON,
        "client_secret": secret_of(entra_emulator, DAEMON),
        "scope": f"{API_URI}/.default",
    }
    assert aadsts_of(token_post(entra_emulator, daemon, headers=origin)) == 9002326
    # `Origin: null` is no origin: a server-side redemption goes through.
    fresh_code = web_code(entra_emulator)["code"]
    assert redeem_web(entra_emulator, fresh_code, headers={"Origin": "null"}).status_code == 200


def test_fid10_seed_refuses_a_uri_on_both_platforms() -> None:
    from entra_auth.errors import EmulatorError

    raw = {
        "tenants": [{"id": CONTOSO, "domain": "contoso.example"}],
        "apps": [
            {
                "client_id": SPA_APP,
                "tenant": "contoso.example",
                "display_name": "Both",
                "redirect_uris": ["http://localhost:3000/"],
                "spa_redirect_uris": ["http://localhost:3000/"],
            }
        ],
    }
    with pytest.raises(EmulatorError, match=r"apps\[0\]\.spa_redirect_uris: .*one platform"):
        seed_from_dict(raw)


# -- 10 in a real browser: the SPA redeems its code with fetch(), cross-origin ---------------------
SPA_PAGE = """<!doctype html><meta charset="utf-8"><title>SPA</title>
<pre id="result">working</pre><pre id="web-result">working</pre>
<script>
const CONFIG = __CONFIG__;
function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
}
async function show(id, response) {
  document.getElementById(id).textContent = JSON.stringify(
    {status: response.status, body: await response.json()});
}
(async () => {
  const query = new URLSearchParams(location.search);
  if (!query.get("code")) {
    const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
    sessionStorage.setItem("verifier", verifier);
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    const params = new URLSearchParams({client_id: CONFIG.client_id, response_type: "code",
      redirect_uri: CONFIG.redirect_uri, scope: "openid profile offline_access",
      code_challenge: b64url(digest), code_challenge_method: "S256", state: "spa"});
    location.assign(CONFIG.authorize + "?" + params);
    return;
  }
  await show("result", await fetch(CONFIG.token, {method: "POST", body: new URLSearchParams({
    grant_type: "authorization_code", client_id: CONFIG.client_id, code: query.get("code"),
    redirect_uri: CONFIG.redirect_uri, code_verifier: sessionStorage.getItem("verifier")})}));
  // A Web app's secret used from the browser: Entra refuses it, and the page can read why.
  await show("web-result", await fetch(CONFIG.token, {method: "POST", body: new URLSearchParams({
    grant_type: "client_credentials", client_id: CONFIG.web_client_id,
    client_secret: CONFIG.web_secret, scope: "https://graph.microsoft.com/.default"})}));
})();
</script>
"""


def spa_page(emulator: EntraEmulator, party: Party) -> str:
    config = {
        "client_id": SPA_APP,
        "redirect_uri": f"{party.base}/spa/",
        "authorize": f"{emulator.urls.browser_base}/{CONTOSO}/oauth2/v2.0/authorize",
        "token": f"{emulator.authority_for(CONTOSO)}/oauth2/v2.0/token",
        "web_client_id": WEB_APP,
        "web_secret": SECRET,
    }
    return SPA_PAGE.replace("__CONFIG__", json.dumps(config).replace("</", "<\\/"))


def in_chromium(scenario: Any) -> None:
    """Run ``scenario(page)`` in Debian's Chromium, trusting the emulator's local HTTPS (as a
    developer's browser does once it trusts ``ca.pem``)."""
    in_chromium_with(scenario, ignore_https_errors=True)


@pytest.mark.e2e
def test_fid10_in_a_real_browser_a_spa_redeems_its_code_cross_origin(
    emulator: EntraEmulator, party: Party
) -> None:
    results: dict[str, Any] = {}

    def scenario(page: Page) -> None:
        page.goto(f"{party.base}/spa/")  # the page sends the browser to sign in, with PKCE
        page.click(f"button[data-upn='{ADELE}']")
        page.click("#accept")
        page.wait_for_url(f"{party.base}/spa/?**")
        for name in ("result", "web-result"):
            page.wait_for_function(f"document.getElementById('{name}').textContent !== 'working'")
            results[name] = json.loads(page.text_content(f"#{name}") or "{}")

    in_chromium(scenario)
    assert results["result"]["status"] == 200, results
    assert results["result"]["body"]["token_type"] == "Bearer"
    assert results["result"]["body"]["refresh_token"]
    assert results["web-result"]["status"] == 400
    assert results["web-result"]["body"]["error_codes"] == [9002326]
    assert f"Request origin: '{party.base}'" in results["web-result"]["body"]["error_description"]


# -- 11. Error bodies and headers as Entra writes them ---------------------------------------------
def test_fid11_an_error_body_is_entras_and_its_ids_are_the_headers(
    entra_emulator: EntraEmulator,
) -> None:
    correlation = str(uuid.uuid4())
    response = token_post(
        entra_emulator,
        {
            "grant_type": "client_credentials",
            "client_id": DAEMON,
            "client_secret": "wrong",
            "scope": f"{API_URI}/.default",
        },
        headers={"client-request-id": correlation},
    )
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    }
    match = ENTRA_DESCRIPTION.match(body["error_description"])
    assert match, body["error_description"]
    assert match.group(1, 2, 3, 4) == (
        "7000215",
        body["trace_id"],
        body["correlation_id"],
        body["timestamp"],
    )
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_uri"] == "https://login.microsoftonline.com/error?code=7000215"
    # The request's ids: Entra's trace id is its x-ms-request-id; the correlation id is the
    # client's client-request-id, echoed.
    assert GUID.match(body["trace_id"])
    assert response.headers["x-ms-request-id"] == body["trace_id"]
    assert body["correlation_id"] == correlation
    assert response.headers["client-request-id"] == correlation
    assert response.headers["x-ms-ests-server"]
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store, no-cache"
    assert response.headers["Pragma"] == "no-cache"
    # Without a client-request-id (or with one that is not a GUID) Entra makes its own.
    other = token_post(
        entra_emulator,
        {"grant_type": "client_credentials", "client_id": DAEMON},
        headers={"client-request-id": "not-a-guid"},
    )
    assert GUID.match(other.json()["correlation_id"])
    assert "client-request-id" not in other.headers
    assert other.json()["trace_id"] != body["trace_id"]


def test_fid11_the_library_and_msal_read_the_answers(entra_emulator: EntraEmulator) -> None:
    got: list[requests.Response] = []

    def keep(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        got.append(response)

    http = entra_emulator.http_session()
    http.hooks["response"].append(keep)
    daemon = msal.ConfidentialClientApplication(
        DAEMON,
        client_credential="wrong",
        authority=entra_emulator.authority,
        instance_discovery=False,
        http_client=http,
    )
    result = daemon.acquire_token_for_client([f"{API_URI}/.default"])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    token_request = got[-1].request.headers
    # MSAL's own id comes back as the correlation id; its telemetry gets Entra's answer.
    assert result["correlation_id"] == token_request["client-request-id"]
    assert got[-1].headers["x-ms-clitelem"] == "1,7000215,0,,"
    # The library reads the code from error_codes, and from the text alone (CRLF lines).
    assert aadsts.first_code(result["error_codes"], result["error_description"]) == 7000215
    assert aadsts.first_code(None, result["error_description"]) == 7000215
    assert aadsts.codes_in(result["error_description"]) == [7000215]
    # The sign-in flow's reading of an error redirect: the code, never the raw text.
    answer = BrowserlessUser().authorize(
        authorize_url(entra_emulator, client_id=WEB, redirect_uri=REDIRECT, scope="api://nope/x"),
        user=ADELE,
    )
    error = _error_from(answer, "fallback")
    assert error.aadsts == 500011
    assert "\r" not in str(error)
    good = confidential_client(entra_emulator, DAEMON).acquire_token_for_client(
        [f"{API_URI}/.default"]
    )
    assert "access_token" in good


def test_fid11_successful_answers_carry_entras_headers(entra_emulator: EntraEmulator) -> None:
    http = entra_emulator.http_session()
    authority = entra_emulator.authority
    discovery = http.get(f"{authority}/v2.0/.well-known/openid-configuration")
    keys = http.get(f"{authority}/discovery/v2.0/keys")
    token = token_post(
        entra_emulator,
        {
            "grant_type": "client_credentials",
            "client_id": DAEMON,
            "client_secret": secret_of(entra_emulator, DAEMON),
            "scope": f"{API_URI}/.default",
        },
    )
    ids = set()
    for response in (discovery, keys, token):
        assert response.status_code == 200, response.text
        assert GUID.match(response.headers["x-ms-request-id"])
        ids.add(response.headers["x-ms-request-id"])
        assert response.headers["x-ms-ests-server"]
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        # A single-page app reads all three from the browser.
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert len(ids) == 3  # one per request
    assert "x-ms-clitelem" not in token.headers  # only for a client that sent telemetry


def test_fid11_errors_at_authorize_carry_the_ids_too(entra_emulator: EntraEmulator) -> None:
    # Back to the app: the description has Entra's lines, the redirect the same trace id.
    response = requests.get(
        authorize_url(entra_emulator, client_id=WEB, redirect_uri=REDIRECT, scope="api://nope/x"),
        allow_redirects=False,
        timeout=HANG_GUARD,
    )
    assert response.status_code == 302
    answer = parse_qs(urlsplit(response.headers["Location"]).query)
    match = ENTRA_DESCRIPTION.match(answer["error_description"][0])
    assert match, answer
    assert (match.group(1), match.group(2)) == ("500011", response.headers["x-ms-request-id"])
    # Entra's own page (an unregistered redirect URI): the same Request Id as the header.
    page = requests.get(
        authorize_url(entra_emulator, client_id=WEB, redirect_uri="https://evil.example/"),
        allow_redirects=False,
        timeout=HANG_GUARD,
    )
    assert page.status_code == 400
    assert f"Request Id: {page.headers['x-ms-request-id']}" in page.text
    assert page.headers["x-ms-ests-server"]


# -- 12. Sign-out: logout_hint, and the account picker ---------------------------------------------
@dataclass
class SignedIn:
    sid: str
    login_hint: str


def sign_in_web(
    emulator: EntraEmulator,
    browser: BrowserlessUser,
    user: str,
    tenant: str = CONTOSO,
    **extra: str,
) -> SignedIn:
    """The web app's sign-in for ``user`` in ``browser``; its ID token's sid and login_hint."""
    answer = browser.authorize(
        authorize_url(
            emulator, tenant, client_id=WEB_APP, redirect_uri="https://web.example/cb", **extra
        ),
        user=user,
    )
    response = token_post(
        emulator,
        {
            "grant_type": "authorization_code",
            "client_id": WEB_APP,
            "client_secret": SECRET,
            "code": answer["code"],
            "redirect_uri": "https://web.example/cb",
        },
        tenant=tenant,
    )
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["id_token"], options={"verify_signature": False})
    assert claims["sid"] == answer["session_state"]
    return SignedIn(claims["sid"], claims["login_hint"])


def still_signed_in(emulator: EntraEmulator, browser: BrowserlessUser, tenant: str) -> bool:
    url = authorize_url(
        emulator, tenant, client_id=WEB_APP, redirect_uri="https://web.example/cb", prompt="none"
    )
    return "code" in browser.authorize(url)


def test_fid12_logout_hint_signs_out_that_account_without_asking(
    emulator: EntraEmulator, party: Party
) -> None:
    browser = BrowserlessUser()
    adele = sign_in_web(emulator, browser, ADELE)
    bob = sign_in_web(emulator, browser, BOB, tenant=FABRIKAM)
    assert adele.login_hint != bob.login_hint

    out = browser.sign_out(
        logout_url(
            emulator,
            logout_hint=bob.login_hint,
            post_logout_redirect_uri="https://web.example/",
            client_id=WEB_APP,
            state="bye",
        ),
        load_frames=True,
    )

    assert out.accounts == ()  # no picker: the hint named the account
    assert out.front_channel_urls == (f"{party.base}/fc?sid={bob.sid}",)  # only Bob's app
    assert out.continue_to == "https://web.example/?state=bye"
    assert party.front_channel == [bob.sid]
    assert not still_signed_in(emulator, browser, FABRIKAM)
    assert still_signed_in(emulator, browser, CONTOSO)  # Adele stays signed in


def test_fid12_several_accounts_get_the_picker_and_the_choice_is_signed_out(
    emulator: EntraEmulator, party: Party
) -> None:
    browser = BrowserlessUser()
    adele = sign_in_web(emulator, browser, ADELE)
    bob = sign_in_web(emulator, browser, BOB, tenant=FABRIKAM)
    url = logout_url(
        emulator, post_logout_redirect_uri="https://web.example/", client_id=WEB_APP, state="s"
    )

    page = browser.session.get(url, allow_redirects=False, timeout=HANG_GUARD)
    assert page.status_code == 200
    assert "Pick an account" in page.text
    assert "Which account do you want to sign out of?" in page.text
    assert "<iframe" not in page.text  # nothing ended yet
    assert still_signed_in(emulator, browser, CONTOSO)
    assert still_signed_in(emulator, browser, FABRIKAM)

    asked = browser.sign_out(url)
    assert sorted(asked.accounts) == sorted([ADELE, BOB])
    assert asked.front_channel_urls == ()
    with pytest.raises(SignInRefused, match=r"No account 'megan@contoso\.example'"):
        browser.sign_out(url, account=MEGAN)

    out = browser.sign_out(url, account=ADELE)  # the picker's answer keeps the request's own
    assert out.front_channel_urls == (f"{party.base}/fc?sid={adele.sid}",)
    assert out.continue_to == "https://web.example/?state=s"
    assert not still_signed_in(emulator, browser, CONTOSO)
    assert still_signed_in(emulator, browser, FABRIKAM)

    # One account left: signed out at once, as before the picker existed.
    last = browser.sign_out(url)
    assert last.accounts == ()
    assert last.front_channel_urls == (f"{party.base}/fc?sid={bob.sid}",)
    assert not still_signed_in(emulator, browser, FABRIKAM)


def test_fid12_a_hint_for_no_account_of_this_browser_still_asks(
    emulator: EntraEmulator, party: Party
) -> None:
    browser = BrowserlessUser()
    sign_in_web(emulator, browser, ADELE)
    sign_in_web(emulator, browser, BOB, tenant=FABRIKAM)
    elsewhere = BrowserlessUser()
    megan = sign_in_web(emulator, elsewhere, MEGAN)  # signed in in another browser
    asked = browser.sign_out(logout_url(emulator, logout_hint=megan.login_hint))
    assert sorted(asked.accounts) == sorted([ADELE, BOB])
    garbage = browser.sign_out(logout_url(emulator, logout_hint="<script>x</script>"))
    assert sorted(garbage.accounts) == sorted([ADELE, BOB])
    assert still_signed_in(emulator, elsewhere, CONTOSO)


def test_fid12_one_account_is_signed_out_at_once(emulator: EntraEmulator, party: Party) -> None:
    browser = BrowserlessUser()
    adele = sign_in_web(emulator, browser, ADELE)
    out = browser.sign_out(logout_url(emulator))
    assert out.accounts == ()
    assert out.front_channel_urls == (f"{party.base}/fc?sid={adele.sid}",)


def test_fid12_the_picker_lists_replaced_sessions_and_escapes_names(
    emulator: EntraEmulator, party: Party
) -> None:
    browser = BrowserlessUser()
    adele = sign_in_web(emulator, browser, ADELE)
    megan = sign_in_web(emulator, browser, MEGAN, prompt="login")  # replaces Adele's session
    page = browser.session.get(
        logout_url(emulator, post_logout_redirect_uri='https://web.example/"><script>x</script>'),
        allow_redirects=False,
        timeout=HANG_GUARD,
    )
    assert EVIL_NAME not in page.text
    assert str(markupsafe.escape(EVIL_NAME)) in page.text
    assert "<script>x" not in page.text
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    out = browser.sign_out(logout_url(emulator), account=MEGAN)
    assert out.front_channel_urls == (f"{party.base}/fc?sid={megan.sid}",)
    # Adele's replaced session was never ended: now the only account, signed out at once.
    last = browser.sign_out(logout_url(emulator))
    assert last.front_channel_urls == (f"{party.base}/fc?sid={adele.sid}",)


@pytest.mark.e2e
def test_fid12_in_a_real_browser_the_picker_signs_out_the_account_picked(
    emulator: EntraEmulator, party: Party
) -> None:
    def scenario(page: Page) -> None:
        # The web app itself is not served: the browser is told its pages answer "app".
        page.route("https://web.example/**", lambda route: route.fulfill(body="app"))
        for user, tenant in ((ADELE, CONTOSO), (BOB, FABRIKAM)):
            page.goto(
                authorize_url(
                    emulator,
                    tenant,
                    client_id=WEB_APP,
                    redirect_uri="https://web.example/cb",
                    prompt="login",
                )
            )
            page.click(f"button[data-upn='{user}']")
            page.click("#accept")
            page.wait_for_url("https://web.example/cb?**")
        page.goto(
            logout_url(emulator, post_logout_redirect_uri="https://web.example/", client_id=WEB_APP)
        )
        assert page.text_content("h1") == "Pick an account"
        page.click(f"button[data-upn='{BOB}']")
        page.wait_for_url("https://web.example/")  # after the front-channel frame loaded

    in_chromium(scenario)
    assert len(party.front_channel) == 1  # Bob's session's app, not Adele's
    assert party.front_channel[0]
