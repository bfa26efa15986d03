"""When Entra ID is down, slow, unreachable or answers nonsense (issue 14).

The fault matrix runs every user-facing step of the demo app (sign-in start, callback/code
redemption, silent refresh, incremental consent, Graph, sign-out) against every fault of the
identity provider, and asserts for each cell: the status (503 with ``Retry-After``, or 502), a
bounded wait (a hang guard, not a speed bound), the words on the page, the session intact, and
recovery once the fault clears, without restarting the app.

Faults at the endpoints are the local Entra ID's own (``inject_fault``). Faults of the host
(a name that does not resolve, a port nothing listens on, a certificate nobody trusts) are real
network failures: the app's provider sessions are re-pointed at ``entra-auth-test.invalid``, at
a port held bound but not listening, or told to trust another CA, and pointed back to recover.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import certifi
import pytest
import requests
from flask import Flask
from requests.adapters import HTTPAdapter
from werkzeug.test import TestResponse

from entra_auth.emulator import EntraEmulator
from entra_auth.emulator.faults import Fault
from entra_auth.integrations.flask import EntraAuth

from .helpers import ADELE, API_SCOPE, WEB, demo_config, within
from .security.web import Web, query_of

TIMEOUT = 1.0  # ENTRA_HTTP_TIMEOUT in these tests: every provider wait is bounded by it
GUARD = 30.0  # a hang guard: far above TIMEOUT, far below the 60 s a hang fault holds


# -- the faults ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Kind:
    name: str
    fault: Fault | None = None  # injected at the step's endpoint
    host: str | None = None  # "dns", "closed", "tls": the host itself fails
    status: int = 503
    retry_after: str = "5"
    words: str = "not available right now"


KINDS = [
    Kind("503-retry-after", Fault("status", 503, retry_after=7), retry_after="7",
         words="Try again in 7 seconds"),
    Kind("503", Fault("status", 503)),
    Kind("429", Fault("status", 429, retry_after=2), retry_after="2",
         words="Try again in 2 seconds"),
    Kind("hang", Fault("hang", delay=20)),
    Kind("slow", Fault("slow", delay=3)),
    Kind("garbage", Fault("garbage"), status=502, words="cannot read"),
    Kind("reset", Fault("reset")),
    Kind("closed-port", host="closed"),
    Kind("unresolvable", host="dns"),
    Kind("untrusted-tls", host="tls"),
]  # fmt: skip


class _Repointed(HTTPAdapter):
    """Sends every request for ``origin`` to ``target`` instead (a real network failure)."""

    def __init__(self, origin: str, target: str):
        super().__init__()
        self.origin, self.target = origin, target

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if request.url and request.url.startswith(self.origin):
            request.url = self.target + request.url[len(self.origin) :]
        return super().send(request, **kwargs)


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """A port bound for the module's duration but never listening: connections are refused,
    and nobody else can take it meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


class Site:
    """The demo app (provider timeouts of ``TIMEOUT``) with one extra page that needs a token
    for the demo API, in Flask's test client, the IdP's pages walked over HTTP."""

    def __init__(self, emulator: EntraEmulator, sessions: Path, closed_port: int):
        self.emulator, self.sessions, self.closed_port = emulator, sessions, closed_port
        self.app = self.build()
        self.web = Web(emulator, self.app)

    def build(self) -> Flask:
        from examples.demo.app import create_app

        app = create_app(
            demo_config(
                self.emulator,
                ENTRA_SESSION_DIR=str(self.sessions),
                ENTRA_HTTP_TIMEOUT=str(TIMEOUT),
            )
        )
        auth: EntraAuth = app.extensions["entra_auth"]

        @app.get("/api-data")
        @auth.login_required
        def api_data() -> str:
            auth.get_token([API_SCOPE])
            return "<p id='got'>got a token for the API</p>"  # never the token itself

        @app.get("/maybe-token")
        def maybe_token() -> str:  # not login_required: get_token itself sends to sign-in
            auth.get_token([API_SCOPE])
            return "<p>got a token</p>"

        return app

    def auth(self, app: Flask | None = None) -> EntraAuth:
        return (app or self.app).extensions["entra_auth"]  # type: ignore[no-any-return]

    def sessions_of(self, app: Flask) -> list[requests.Session]:
        auth = self.auth(app)
        return [auth.sign_in._http, auth._graph_http, auth.sign_in.jwks._session]

    def break_host(self, how: str, app: Flask | None = None) -> None:
        origin = urlsplit(self.emulator.authority)
        base = f"https://{origin.netloc}"
        for http in self.sessions_of(app or self.app):
            if how == "tls":
                http.verify = certifi.where()  # public CAs only: the local CA is not among them
            else:
                target = (
                    f"https://entra-auth-test.invalid:{origin.port}"
                    if how == "dns"
                    else f"https://localhost:{self.closed_port}"
                )
                http.mount(base, _Repointed(base, target))

    def mend_host(self, app: Flask | None = None) -> None:
        for http in self.sessions_of(app or self.app):
            http.verify = str(self.emulator.ca_path)
            http.mount(f"https://{urlsplit(self.emulator.authority).netloc}", HTTPAdapter())

    def fault(self, kind: Kind, endpoint: str, app: Flask | None = None) -> None:
        if kind.fault is not None:
            self.emulator.inject_fault(endpoint, kind.fault)
        else:
            assert kind.host is not None
            self.break_host(kind.host, app)

    def recover(self, app: Flask | None = None) -> None:
        self.emulator.clear_faults()
        self.mend_host(app)


@pytest.fixture
def site(entra_emulator: EntraEmulator, tmp_path: Path, closed_port: int) -> Site:
    return Site(entra_emulator, tmp_path / "sessions", closed_port)


def answered(kind: Kind, call: Callable[[], TestResponse]) -> TestResponse:
    """The response to a request during the fault: in bounded time, the kind's status, the
    words on the page, ``Retry-After`` on a 503, never a traceback or a redirect."""
    started = time.monotonic()
    response = within(GUARD, call)
    page = response.get_data(as_text=True)
    assert response.status_code == kind.status, (kind.name, response.status_code, page[:600])
    assert time.monotonic() - started < GUARD
    assert "Traceback" not in page
    assert "Location" not in response.headers
    if kind.status == 503:
        assert response.headers["Retry-After"] == kind.retry_after
    assert kind.words in page, page
    return response


def signed_in(site: Site) -> None:
    assert site.web.sign_in().status_code == 302
    assert site.web.who() is not None


# -- the matrix ---------------------------------------------------------------------------------
def step_sign_in_start(site: Site, kind: Kind) -> None:
    """/login on an app that has not read the discovery document yet."""
    site.fault(kind, "discovery")
    response = answered(kind, lambda: site.web.client.get("/login?next=/claims"))
    assert 'href="/login?next=/claims"' in response.get_data(as_text=True)  # kept for later
    site.recover()
    auth_uri = site.web.begin("/login?next=/claims")
    assert list(site.web.pending().flows.values())[-1].return_to == "/claims"
    assert site.web.callback(site.web.authorize(auth_uri)).headers["Location"] == "/claims"


def step_code_redemption(site: Site, kind: Kind) -> None:
    params = site.web.authorize(site.web.begin("/login?next=/claims"))
    site.fault(kind, "token")
    response = answered(kind, lambda: site.web.callback(params))
    page = response.get_data(as_text=True)
    assert 'href="/login?next=/claims"' in page  # the page the user was going to, kept
    assert site.web.who() is None  # nobody half signed in
    site.recover()
    again = site.web.client.get("/login?next=/claims")
    assert again.status_code == 302
    done = site.web.callback(site.web.authorize(again.headers["Location"]))
    assert done.headers["Location"] == "/claims"
    assert site.web.who() is not None


def step_silent_refresh(site: Site, kind: Kind) -> None:
    site.emulator.grant_consent(ADELE, WEB, API_SCOPE)
    signed_in(site)
    before = site.web.session()
    site.fault(kind, "token")
    response = answered(kind, lambda: site.web.client.get("/api-data"))
    assert 'href="/api-data"' in response.get_data(as_text=True)
    assert site.web.session() == before  # signed in, token cache untouched
    site.recover()
    assert "got a token" in site.web.client.get("/api-data").get_data(as_text=True)


def step_consent(site: Site, kind: Kind) -> None:
    signed_in(site)  # no consent to the API yet: MSAL tries the refresh token first
    before = site.web.session()
    site.fault(kind, "token")
    answered(kind, lambda: site.web.client.get("/api-data"))
    assert site.web.session() == before
    site.recover()
    to_consent = site.web.client.get("/api-data")
    assert to_consent.status_code == 302
    assert "access_as_user" in query_of(to_consent.headers["Location"])["scope"]
    assert list(site.web.pending().flows.values())[-1].return_to == "/api-data"


def step_graph(site: Site, kind: Kind) -> None:
    signed_in(site)
    before = site.web.session()
    site.fault(kind, "graph")
    graph_kind = kind
    if kind.status == 502:  # the demo's own page for a Graph answer it cannot read
        graph_kind = Kind(kind.name, status=502, words="not JSON")
    answered(graph_kind, lambda: site.web.client.get("/profile"))
    assert site.web.session() == before
    site.recover()
    assert site.web.client.get("/profile").status_code == 200


def step_sign_out(site: Site, kind: Kind) -> None:
    """Sign-out on an instance started while the provider is down (it must boot, and sign
    out without reading the discovery document)."""
    signed_in(site)
    if kind.fault is not None:
        for endpoint in ("discovery", "jwks", "logout"):
            site.emulator.inject_fault(endpoint, kind.fault)
    restarted = within(GUARD, site.build)
    if kind.host is not None:
        site.break_host(kind.host, restarted)
    client = restarted.test_client()
    cookie = site.web.cookie()
    assert cookie is not None
    client.set_cookie("entra_session", cookie)
    assert "Adele" in client.get("/claims").get_data(as_text=True)  # still signed in
    response = within(GUARD, lambda: client.post("/logout"))
    assert response.status_code == 302, response.get_data(as_text=True)[:600]
    assert urlsplit(response.headers["Location"]).path.endswith("/oauth2/v2.0/logout")
    assert client.get("/claims").status_code == 302  # signed out here, as asked
    site.recover(restarted)
    assert client.get("/login").status_code == 302


STEPS = {
    "sign-in-start": step_sign_in_start,
    "code-redemption": step_code_redemption,
    "silent-refresh": step_silent_refresh,
    "consent": step_consent,
    "graph": step_graph,
    "sign-out": step_sign_out,
}


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
@pytest.mark.parametrize("step", list(STEPS))
def test_fault_matrix(site: Site, step: str, kind: Kind) -> None:
    STEPS[step](site, kind)


# -- beyond the matrix --------------------------------------------------------------------------
def test_concurrent_requests_while_the_token_endpoint_hangs_each_get_a_bounded_503(
    site: Site,
) -> None:
    site.emulator.grant_consent(ADELE, WEB, API_SCOPE)
    signed_in(site)
    cookie = site.web.cookie()
    assert cookie is not None
    site.emulator.inject_fault("token", Fault("hang", delay=25))
    clients = [site.app.test_client() for _ in range(6)]
    for client in clients:
        client.set_cookie("entra_session", cookie)
    started = time.monotonic()
    with ThreadPoolExecutor(len(clients)) as pool:
        answers = within(GUARD, lambda: list(pool.map(lambda c: c.get("/api-data"), clients)))
    assert time.monotonic() - started < GUARD
    for response in answers:
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert "not available right now" in response.get_data(as_text=True)
    site.recover()
    assert site.web.client.get("/api-data").status_code == 200


def test_api_style_requests_get_json(site: Site) -> None:
    site.emulator.grant_consent(ADELE, WEB, API_SCOPE)
    signed_in(site)
    site.emulator.inject_fault("token", Fault("status", 503, retry_after=9))
    response = site.web.client.get("/api-data", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "9"
    body = response.get_json()
    assert body["error"] == "temporarily_unavailable"
    assert body["retry_after"] == 9
    assert "Try again in 9 seconds" in body["error_description"]


def test_the_log_names_host_step_and_cause_never_the_code(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    params = site.web.authorize(site.web.begin())
    site.emulator.inject_fault("token", Fault("status", 503, retry_after=4))
    with caplog.at_level(logging.WARNING, logger="entra_auth.flask"):
        assert site.web.callback(params).status_code == 503
    record = next(r for r in caplog.records if "Identity provider" in r.getMessage())
    text = record.getMessage()
    host = urlsplit(site.emulator.authority).netloc
    assert f"host={host}" in text
    assert "step=code redemption" in text
    assert "cause=HTTP 503, Retry-After 4 s" in text
    assert params["code"] not in caplog.text
    assert params["state"] not in caplog.text


def test_an_authority_that_does_not_resolve_or_listen_answers_503_at_once(
    entra_emulator: EntraEmulator, tmp_path: Path, closed_port: int
) -> None:
    """The demo pointed at a tenant it cannot reach (no network): the app boots, /login says so."""
    from examples.demo.app import create_app

    tenant = urlsplit(entra_emulator.authority).path
    for authority, cause in (
        (f"https://entra-auth-test.invalid{tenant}", "DNS name does not resolve"),
        (f"https://localhost:{closed_port}{tenant}", "connection refused"),
    ):
        app = create_app(
            demo_config(
                entra_emulator,
                ENTRA_AUTHORITY=authority,
                ENTRA_SESSION_DIR=str(tmp_path),
                ENTRA_HTTP_TIMEOUT=str(TIMEOUT),
            )
        )
        errors: list[Any] = []
        from entra_auth.errors import ProviderUnavailableError

        auth: EntraAuth = app.extensions["entra_auth"]
        try:
            auth.sign_in.begin(redirect_uri=auth.config.callback_url)
        except ProviderUnavailableError as exc:
            errors.append(exc)
        assert errors
        assert cause in errors[0].cause
        assert errors[0].step == "sign-in start"
        response = within(GUARD, lambda: app.test_client().get("/login"))  # noqa: B023
        assert response.status_code == 503
        assert "not available right now" in response.get_data(as_text=True)


# -- doctor -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("case", "said", "fix"),
    [
        ("unresolvable", "DNS name does not resolve", "does not resolve"),
        ("closed localhost port", "connection refused", "entra-auth emulator"),
        ("503 with Retry-After", "HTTP 503 (Retry-After 7 s)", "run `entra-auth doctor` again"),
        ("slow", "slowly", "ENTRA_HTTP_TIMEOUT"),
    ],
)
def test_doctor_names_the_cause_and_its_fix(
    entra_emulator: EntraEmulator, closed_port: int, case: str, said: str, fix: str
) -> None:
    from .test_diagnostics import env, lines, run

    tenant = urlsplit(entra_emulator.authority).path
    changes: dict[str, str | None] = {}
    if case == "unresolvable":
        changes["ENTRA_AUTHORITY"] = f"https://entra-auth-test.invalid{tenant}"
    elif case == "closed localhost port":
        changes["ENTRA_AUTHORITY"] = f"https://localhost:{closed_port}{tenant}"
    elif case == "503 with Retry-After":
        entra_emulator.inject_fault("discovery", Fault("status", 503, retry_after=7))
    else:
        entra_emulator.inject_fault("discovery", Fault("slow", delay=1.5, times=1))
        changes["ENTRA_HTTP_TIMEOUT"] = "0.5"
    result = within(GUARD, lambda: run("doctor", env=env(entra_emulator, **changes)))
    assert result.exit_code == 1, result.output
    check = lines(result)["authority"]
    assert check.startswith("❌"), check
    assert said in check
    assert fix in check


# -- the parts ----------------------------------------------------------------------------------
def test_the_timeout_is_a_setting() -> None:
    from entra_auth.config import EntraConfig
    from entra_auth.errors import ConfigurationError

    base = {"ENTRA_AUTHORITY": "https://login.microsoftonline.com/" + "0" * 8 + "-0000-0000-0000-"
            + "0" * 12}  # fmt: skip
    assert EntraConfig.from_mapping(base).http_timeout == 5.0
    assert EntraConfig.from_mapping({**base, "ENTRA_HTTP_TIMEOUT": "2.5"}).http_timeout == 2.5
    for bad in ("0", "soon", "121"):
        with pytest.raises(ConfigurationError, match="ENTRA_HTTP_TIMEOUT"):
            EntraConfig.from_mapping({**base, "ENTRA_HTTP_TIMEOUT": bad})


def test_msal_requests_carry_the_timeout_and_a_reset_is_named(
    entra_emulator: EntraEmulator,
) -> None:
    """Straight on the session MSAL is given: a reset mid-answer and a hang, typed and timed."""
    from entra_auth.client.http import ProviderSession, provider_step
    from entra_auth.errors import ProviderUnavailableError

    session = ProviderSession(timeout=0.5, ca_bundle=str(entra_emulator.ca_path))
    url = entra_emulator.authority + "/v2.0/.well-known/openid-configuration"
    for fault, cause in (
        (Fault("reset"), "connection"),
        (Fault("hang", delay=20), "no answer within 0.5 s"),
    ):
        entra_emulator.inject_fault("discovery", fault)

        def fetch() -> None:
            with provider_step("discovery"):
                session.get(url)

        with pytest.raises(ProviderUnavailableError) as caught:
            within(GUARD, fetch)
        assert cause in caught.value.cause
        assert caught.value.step == "discovery"
        assert "reading the sign-in service's settings" in caught.value.message
    entra_emulator.clear_faults()
    assert session.get(url).json()["issuer"]


def test_graph_answering_html_is_a_graph_error_not_a_crash(entra_emulator: EntraEmulator) -> None:
    from entra_auth.client.graph import GraphClient
    from entra_auth.errors import GraphError, GraphUnavailableError

    session = requests.Session()
    session.verify, session.trust_env = str(entra_emulator.ca_path), False
    graph = GraphClient("t", base_url=entra_emulator.urls.graph_base, session=session, max_wait=0)
    entra_emulator.inject_fault("graph", Fault("garbage"))
    with pytest.raises(GraphError, match="not JSON") as caught:
        graph.me()
    assert not isinstance(caught.value, GraphUnavailableError)
    assert caught.value.status == 502
    entra_emulator.inject_fault("graph", Fault("status", 503, retry_after=3))
    with pytest.raises(GraphUnavailableError, match="Try again in 3 seconds") as down:
        graph.me()
    assert down.value.retry_after == 3
    assert down.value.http_status == 503


def test_a_sign_in_started_from_an_error_handler_answers_503_too(site: Site) -> None:
    """get_token with nobody signed in sends to sign-in from Flask's error handler: with the
    discovery document unavailable, that handler answers the 503 itself (no 500)."""
    site.emulator.inject_fault("discovery", Fault("status", 503, retry_after=6))
    response = within(GUARD, lambda: site.web.client.get("/maybe-token"))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "6"
    assert 'href="/maybe-token"' in response.get_data(as_text=True)
    site.recover()
    assert site.web.client.get("/maybe-token").status_code == 302


def test_a_token_due_for_refresh_but_valid_is_still_used_while_the_provider_is_down(
    site: Site,
) -> None:
    """MSAL's own fallback survives: a refresh that fails on the network returns the cached
    access token when it is past ``refresh_on`` but not expired (Entra sends ``refresh_in``)."""
    import json

    site.emulator.grant_consent(ADELE, WEB, API_SCOPE)
    signed_in(site)
    assert site.web.client.get("/api-data").status_code == 200  # the API's token, cached
    with site.web.client.session_transaction() as session:
        cache = json.loads(session["entra_token_cache"])
        for entry in cache["AccessToken"].values():
            entry["refresh_on"] = "1"  # due for refresh since 1970
        session["entra_token_cache"] = json.dumps(cache)
    site.emulator.inject_fault("token", Fault("status", 503))
    site.emulator.reset_counts()
    assert site.web.client.get("/api-data").status_code == 200
    assert site.emulator.request_counts()["token"] == 1  # it did try to refresh


def test_the_control_api_injects_a_reset(entra_emulator: EntraEmulator) -> None:
    """``reset`` over HTTP too: the client sees the answer cut off, then the endpoint is back."""
    from entra_auth.emulator.admin import ADMIN_HEADER

    http = entra_emulator.http_session()
    key = {ADMIN_HEADER: entra_emulator.admin_key}
    base = f"{entra_emulator.urls.https_base}/_emulator"
    keys = f"{entra_emulator.authority}/discovery/v2.0/keys"
    assert http.post(f"{base}/faults/jwks", json={"kind": "reset", "times": 1}, headers=key).ok
    with pytest.raises(requests.RequestException):
        within(GUARD, lambda: http.get(keys, timeout=5))
    assert http.get(keys, timeout=5).json()["keys"]


# -- the API side: the same family, answered as RFC 6750 says -------------------------------------
@pytest.mark.parametrize(
    ("fault", "status", "retry_after"),
    [
        (Fault("status", 503, retry_after=7), 503, "7"),  # the provider's own Retry-After
        (Fault("status", 503), 503, "1"),  # until the next fetch may start (backoff)
        (Fault("garbage"), 502, "1"),  # an answer that is not JSON: nonsense, not absence
    ],
    ids=["503-retry-after", "503", "garbage"],
)
def test_an_api_answers_the_provider_down_with_its_status_and_retry_after(
    entra_emulator: EntraEmulator, fault: Fault, status: int, retry_after: str
) -> None:
    from entra_auth.integrations.flask import ApiProtector

    from .helpers import API, emulator_config

    token = entra_emulator.issue_token(
        client_id=WEB, resource=API, user=ADELE, scopes=["access_as_user"]
    )
    entra_emulator.inject_fault("jwks", fault)
    app = Flask(__name__)
    api = ApiProtector(app, config=emulator_config(entra_emulator))
    app.add_url_rule("/data", "data", api.require_token()(lambda: "data"))
    client = app.test_client()
    answer = client.get("/data", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == status
    assert answer.headers["Retry-After"] == retry_after
    assert answer.json["error"] == "temporarily_unavailable"
    entra_emulator.clear_faults()
    api.validator_for(app).jwks.policy.last_attempt = None  # the backoff, not the test, waits
    assert client.get("/data", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_a_redirecting_token_endpoint_gets_no_secret_and_no_code() -> None:
    """requests re-sends a POST body on 307/308: the secret, the code and the PKCE verifier would
    follow the Location to any host, http included. The provider session never follows."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from entra_auth.client.http import ProviderSession
    from entra_auth.errors import ProviderResponseError

    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            if self.path == "/token":  # the "token endpoint" sends the request elsewhere
                self.send_response(307)
                self.send_header("Location", "/steal")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            received.append(body)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        session = ProviderSession(timeout=5.0)
        with pytest.raises(ProviderResponseError) as refused:
            session.post(
                f"http://127.0.0.1:{server.server_address[1]}/token",
                data={"client_secret": "S3CRET", "code": "C"},
            )
        assert "a redirect, not followed" in refused.value.cause
        assert received == []  # nothing reached the Location
    finally:
        server.shutdown()
        server.server_close()
