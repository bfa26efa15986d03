"""Single sign-out: a sign-out loads, in hidden iframes, the front-channel logout URL of every app
that signed in through the ended session, with ``?sid=`` (what Entra sends), then continues.

The directory here has apps with and without a front-channel logout URL, in two tenants, and
two small relying parties served on ports the system picks, whose front-channel route ends the
session that has the ``sid`` it is given: ``BrowserlessUser.sign_out`` loads the frames as a
browser would, so a test shows that signing out of app A ends the session in app B.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import pytest
from playwright.sync_api import Page
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from entra_auth.emulator import EntraEmulator
from entra_auth.emulator.endpoints import logout as logout_endpoint
from entra_auth.emulator.endpoints.logout import frame_source
from entra_auth.emulator.minting import hash_verifier
from entra_auth.emulator.seed import seed_from_dict
from entra_auth.testing.driver import BrowserlessUser, SignOut, csp_allows_frame

from ..helpers import BROWSER_WAIT_MS, CONTOSO, FABRIKAM, HANG_GUARD
from ..helpers import in_chromium as in_chromium_with

APP_A = "aaaaaaaa-1111-4111-8111-00000000000a"
APP_B = "bbbbbbbb-1111-4111-8111-00000000000b"
APP_C = "cccccccc-1111-4111-8111-00000000000c"  # registers no front-channel logout URL
APP_D = "dddddddd-1111-4111-8111-00000000000d"  # registers one; nobody signs in to it
APP_E = "eeeeeeee-1111-4111-8111-00000000000e"  # a name and a URL that need escaping
APP_F = "ffffffff-1111-4111-8111-00000000000f"  # in Fabrikam
ADELE, MEGAN, BOB = "adele@contoso.example", "megan@contoso.example", "bob@fabrikam.example"
SECRET = "front-channel-test-secret"  # a local test value
E_NAME = '<script>alert("x")</script> & Co'
E_LOGOUT = "https://e.example/fc;v=1?a=1&b=2"


# -- two relying parties ---------------------------------------------------------------------------
@dataclass
class RelyingParty:
    """A web app that signs users in and keeps their sessions by the IdP's ``sid``.

    ``/cb`` is its redirect URI: it starts a session (cookie ``rp_<name>``) bound to the
    ``session_state`` Entra sent with the code (the same value as the ID token's ``sid``).
    ``/front-channel`` ends every session with the ``sid`` it is given, and records the call.
    """

    name: str
    journal: list[str]  # "<name> <path>" of each request, in order (shared by the parties)
    base: str = ""
    sessions: dict[str, str] = field(default_factory=dict)  # cookie value -> sid
    calls: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # While set, the front-channel route answers only once `release` is set: an app that hangs.
    hold: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    answered: threading.Event = field(default_factory=threading.Event)  # a held one, at last

    @property
    def cookie(self) -> str:
        return f"rp_{self.name}"  # one cookie name per app: localhost cookies ignore the port

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            self.journal.append(f"{self.name} {request.path}")
        held = self.hold and request.path == "/front-channel"
        if held:
            self.release.wait(HANG_GUARD)  # bounded: the test sets it when done
        with self.lock:
            if request.path == "/cb":
                token = secrets.token_urlsafe(16)
                self.sessions[token] = request.args["session_state"]
                response = Response("signed in")
                response.set_cookie(self.cookie, token, samesite="Lax", httponly=True)
            elif request.path == "/front-channel":
                sid = request.args.get("sid")
                self.calls.append({"args": dict(request.args), "cookies": dict(request.cookies)})
                for token in [t for t, s in self.sessions.items() if s == sid]:
                    del self.sessions[token]
                response = Response("", headers={"Cache-Control": "no-cache, no-store"})
            elif request.path == "/":
                signed_in = request.cookies.get(self.cookie) in self.sessions
                response = Response("hello" if signed_in else "who?", 200 if signed_in else 401)
            else:
                response = Response("not found", 404)
        if held:
            self.answered.set()
        return response(environ, start_response)


@dataclass
class Served:
    party: RelyingParty
    server: BaseWSGIServer
    thread: threading.Thread


@pytest.fixture(scope="module")
def parties() -> Iterator[tuple[RelyingParty, RelyingParty]]:
    served: list[Served] = []
    journal: list[str] = []
    try:
        for name in ("a", "b"):
            party = RelyingParty(name, journal)
            server = make_server("127.0.0.1", 0, party, threaded=True)
            party.base = f"http://localhost:{server.port}"
            thread = threading.Thread(target=server.serve_forever, daemon=True, name=f"rp-{name}")
            thread.start()
            served.append(Served(party, server, thread))
        yield served[0].party, served[1].party
    finally:
        for item in served:
            item.server.shutdown()  # returns once serve_forever has (it polls every 0.5 s)
            item.server.server_close()
            item.thread.join(timeout=HANG_GUARD)


def _app(client_id: str, name: str, tenant: str, redirect: str, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "tenant": tenant,
        "display_name": name,
        "redirect_uris": [redirect],
        "secrets": [{"value": SECRET, "expires": "2099-01-01T00:00:00Z"}],
        **extra,
    }


@pytest.fixture(scope="module")
def emulator(
    parties: tuple[RelyingParty, RelyingParty], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EntraEmulator]:
    a, b = parties
    user = {"password": "demo"}
    raw = {
        "tenants": [
            {"id": CONTOSO, "domain": "contoso.example"},
            {"id": FABRIKAM, "domain": "fabrikam.example"},
        ],
        "apps": [
            _app(
                APP_A,
                "App A",
                "contoso.example",
                f"{a.base}/cb",
                post_logout_redirect_uris=[f"{a.base}/"],
                front_channel_logout_url=f"{a.base}/front-channel?app=a",  # a query to keep
            ),
            _app(
                APP_B,
                "App B",
                "contoso.example",
                f"{b.base}/cb",
                post_logout_redirect_uris=[f"{b.base}/"],
                front_channel_logout_url=f"{b.base}/front-channel",
            ),
            _app(APP_C, "App C", "contoso.example", "https://c.example/cb"),
            _app(
                APP_D,
                "App D",
                "contoso.example",
                "https://d.example/cb",
                front_channel_logout_url="https://d.example/front-channel",
            ),
            _app(
                APP_E,
                E_NAME,
                "contoso.example",
                "https://e.example/cb",
                front_channel_logout_url=E_LOGOUT,
            ),
            _app(
                APP_F,
                "App F",
                "fabrikam.example",
                "https://f.example/cb",
                front_channel_logout_url="https://f.example/front-channel",
            ),
        ],
        "users": [
            {"oid": "0a9c7b3e-4d2f-4e8a-b1c6-5f3d2e1a0b9c", "tenant": CONTOSO, "upn": ADELE,
             "name": "Adele", **user},
            {"oid": "1b8d6c4f-5e3a-4f9b-a2d7-6e4c3f2b1a0d", "tenant": CONTOSO, "upn": MEGAN,
             "name": "Megan", **user},
            {"oid": "2c7e5d3a-6f4b-4a0c-b3e8-7f5d4a3c2b1e", "tenant": FABRIKAM, "upn": BOB,
             "name": "Bob", **user},
        ],
    }  # fmt: skip
    state: Path = tmp_path_factory.mktemp("front-channel")
    with EntraEmulator(seed_from_dict(raw), state_dir=state, port=0, browser_port=0) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh(emulator: EntraEmulator, parties: tuple[RelyingParty, RelyingParty]) -> None:
    emulator.reset()
    for party in parties:
        with party.lock:
            party.sessions.clear()
            party.calls.clear()
            party.journal.clear()
            party.hold = False
            party.release.clear()
            party.answered.clear()


# -- helpers ---------------------------------------------------------------------------------------
@dataclass
class SignedIn:
    client_id: str
    sid: str  # session_state sent with the code
    code: str
    verifier: str
    redirect_uri: str
    tenant: str


def sign_in(
    emulator: EntraEmulator,
    browser: BrowserlessUser,
    client_id: str,
    *,
    user: str | None = ADELE,
    tenant: str = CONTOSO,
    **extra: str,
) -> SignedIn:
    """The authorization code flow's front half for ``client_id``, walked by ``browser``."""
    app = emulator.app(client_id)
    redirect_uri = app.redirect_uris[0]
    verifier = secrets.token_urlsafe(48)
    params = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": "openid profile",
        "state": "s",
        "code_challenge": hash_verifier(verifier),
        "code_challenge_method": "S256",
        **extra,
    }
    url = f"{emulator.urls.browser_base}/{tenant}/oauth2/v2.0/authorize?{urlencode(params)}"
    answer = browser.authorize(url, user=user)
    assert "code" in answer, answer
    return SignedIn(
        client_id, answer["session_state"], answer["code"], verifier, redirect_uri, tenant
    )


def id_token_claims(emulator: EntraEmulator, signed_in: SignedIn) -> dict[str, Any]:
    response = emulator.http_session().post(
        f"{emulator.authority_for(signed_in.tenant)}/oauth2/v2.0/token",
        data={
            "grant_type": "authorization_code",
            "client_id": signed_in.client_id,
            "client_secret": SECRET,
            "code": signed_in.code,
            "redirect_uri": signed_in.redirect_uri,
            "code_verifier": signed_in.verifier,
        },
    )
    assert response.status_code == 200, response.text
    claims: dict[str, Any] = jwt.decode(
        response.json()["id_token"], options={"verify_signature": False}
    )
    return claims


def logout_url(emulator: EntraEmulator, tenant: str = CONTOSO, **params: str) -> str:
    query = f"?{urlencode(params)}" if params else ""
    return f"{emulator.urls.browser_base}/{tenant}/oauth2/v2.0/logout{query}"


def registered(emulator: EntraEmulator, client_id: str) -> str:
    url = emulator.app(client_id).front_channel_logout_url
    assert url is not None
    return url


def with_sid(url: str, sid: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}sid={sid}"


def frame_src(policy: str) -> list[str]:
    (directive,) = [d.split() for d in policy.split(";") if d.split()[:1] == ["frame-src"]]
    return sorted(directive[1:])


# -- what the sign-out page frames -----------------------------------------------------------------
def test_sign_out_of_one_app_frames_every_app_of_the_session(
    emulator: EntraEmulator, parties: tuple[RelyingParty, RelyingParty]
) -> None:
    a, b = parties
    browser = BrowserlessUser()
    first = sign_in(emulator, browser, APP_A)
    second = sign_in(emulator, browser, APP_B)  # SSO: no sign-in page, the same session
    third = sign_in(emulator, browser, APP_C)
    assert first.sid == second.sid == third.sid
    sid = first.sid
    # The sid each app's ID token carries is the one its front-channel URL will be given.
    assert id_token_claims(emulator, first)["sid"] == sid
    assert id_token_claims(emulator, second)["sid"] == sid

    out = browser.sign_out(
        logout_url(emulator, post_logout_redirect_uri=f"{b.base}/", client_id=APP_B, state="x")
    )

    assert out.status == 200
    # Both apps (the one that asked to sign out too), in the order they signed in; the
    # registered query of A's URL is kept; C registered no URL, D and E never signed in.
    assert out.front_channel_urls == (
        f"{a.base}/front-channel?app=a&sid={sid}",
        f"{b.base}/front-channel?sid={sid}",
    )
    assert out.blocked_urls == ()
    assert out.continue_to == f"{b.base}/?state=x"  # then on to the post-logout redirect
    for url in out.front_channel_urls:  # sid alone, as Entra sends it: no iss
        assert [k for k, _ in parse_qsl(urlsplit(url).query)][-1:] == ["sid"]
        assert "iss" not in dict(parse_qsl(urlsplit(url).query))


def test_the_page_frames_hidden_iframes_allowed_by_exactly_its_csp(
    emulator: EntraEmulator, parties: tuple[RelyingParty, RelyingParty]
) -> None:
    a, b = parties
    browser = BrowserlessUser()
    sid = sign_in(emulator, browser, APP_A).sid
    sign_in(emulator, browser, APP_B)
    response = browser.session.get(
        logout_url(emulator, post_logout_redirect_uri=f"{a.base}/", client_id=APP_A),
        allow_redirects=False,
    )
    assert response.status_code == 200
    html, policy = response.text, response.headers["Content-Security-Policy"]
    frames = re.findall(r"<iframe [^>]*>", html)
    assert len(frames) == 2
    for frame in frames:
        assert " hidden" in frame
        assert "data-front-channel" in frame
    assert f'src="{a.base}/front-channel?app=a&amp;sid={sid}"' in html
    # Exactly these frames: scheme, host, port and path of each registered URL, nothing wider.
    assert frame_src(policy) == sorted([f"{a.base}/front-channel", f"{b.base}/front-channel"])
    assert "frame-ancestors 'none'" in policy
    assert not csp_allows_frame(policy, "https://d.example/front-channel?sid=x")
    assert not csp_allows_frame(policy, f"{a.base}/elsewhere")
    assert csp_allows_frame(policy, f"{b.base}/front-channel?sid=anything")
    # The page's only script runs by nonce; the way on is a plain link (no-JS), which the
    # script reads rather than having the address written into it.
    nonce = re.search(r"script-src 'nonce-([^']+)'", policy)
    assert nonce is not None
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert [attrs for attrs, _ in scripts] == [f' nonce="{nonce.group(1)}"']
    assert f"{a.base}" not in scripts[0][1]
    assert 'getElementById("continue")' in scripts[0][1]
    assert 'addEventListener("load"' in scripts[0][1]  # waits for the frames' load events
    assert re.search(r"setTimeout\(next, \d+\)", scripts[0][1])  # and no longer than this
    assert f'<a id="continue" href="{a.base}/">' in html
    assert html.index("<script") < html.index("<iframe")  # listening before the frames load
    assert not re.search(r"\son\w+=", "".join(frames))  # no inline event handler


def test_only_apps_of_the_ended_session_are_framed(emulator: EntraEmulator) -> None:
    mine, theirs = BrowserlessUser(), BrowserlessUser()
    sid = sign_in(emulator, mine, APP_A).sid
    other = sign_in(emulator, theirs, APP_B, user=MEGAN)  # another browser, another session
    sign_in(emulator, theirs, APP_D, user=None)  # SSO in that browser
    assert other.sid != sid

    out = mine.sign_out(logout_url(emulator))

    assert out.front_channel_urls == (with_sid(registered(emulator, APP_A), sid),)
    assert out.continue_to is None  # no post-logout redirect asked for: the page stays
    # The other browser is still signed in, and its sign-out tells its own apps.
    again = sign_in(emulator, theirs, APP_C, user=None, prompt="none")
    assert again.sid == other.sid
    theirs_out = theirs.sign_out(logout_url(emulator))
    assert theirs_out.front_channel_urls == (
        with_sid(registered(emulator, APP_B), other.sid),
        with_sid(registered(emulator, APP_D), other.sid),
    )


def test_a_second_sign_out_frames_nothing(
    emulator: EntraEmulator, parties: tuple[RelyingParty, RelyingParty]
) -> None:
    a, _ = parties
    browser = BrowserlessUser()
    sign_in(emulator, browser, APP_A)
    sign_in(emulator, browser, APP_B)
    url = logout_url(emulator, post_logout_redirect_uri=f"{a.base}/", client_id=APP_A)
    assert len(browser.sign_out(url).front_channel_urls) == 2
    second = browser.sign_out(url)
    assert second == SignOut(302, (), (), f"{a.base}/", "")  # straight back, as before
    page = browser.session.get(logout_url(emulator), allow_redirects=False)
    assert "<iframe" not in page.text
    assert frame_src(page.headers["Content-Security-Policy"]) == ["'none'"]


def test_a_copy_of_the_cookie_cannot_frame_an_ended_session_again(emulator: EntraEmulator) -> None:
    browser = BrowserlessUser()
    sign_in(emulator, browser, APP_A)
    copy = BrowserlessUser()
    copy.session.cookies.update(browser.session.cookies)
    assert len(browser.sign_out(logout_url(emulator)).front_channel_urls) == 1
    assert copy.sign_out(logout_url(emulator)).front_channel_urls == ()


def test_an_app_without_a_front_channel_url_gets_no_frame(emulator: EntraEmulator) -> None:
    browser = BrowserlessUser()
    sign_in(emulator, browser, APP_C)
    response = browser.session.get(
        logout_url(emulator, post_logout_redirect_uri="https://c.example/cb", client_id=APP_C),
        allow_redirects=False,
    )
    assert response.status_code == 302  # nothing to load: no page in between
    assert response.headers["Location"] == "https://c.example/cb"


def test_sessions_replaced_by_a_fresh_sign_in_and_other_tenants_end_too(
    emulator: EntraEmulator,
) -> None:
    browser = BrowserlessUser()
    adele = sign_in(emulator, browser, APP_A)
    megan = sign_in(emulator, browser, APP_B, user=MEGAN, prompt="login")  # a new session
    bob = sign_in(emulator, browser, APP_F, user=BOB, tenant=FABRIKAM)  # one per tenant
    assert len({adele.sid, megan.sid, bob.sid}) == 3

    # Three accounts in this browser (Adele's session replaced, not ended, by Megan's): Entra
    # asks which one to sign out, and nothing ends until the user picks.
    asked = browser.sign_out(logout_url(emulator))
    assert sorted(asked.accounts) == sorted([ADELE, MEGAN, BOB])
    assert asked.front_channel_urls == ()
    assert asked.continue_to is None

    # Each account signed out in turn: its app told with the sid of the session it signed in
    # through, no other; the last account left is signed out without a question.
    first = browser.sign_out(logout_url(emulator), account=ADELE)
    assert first.front_channel_urls == (with_sid(registered(emulator, APP_A), adele.sid),)
    second = browser.sign_out(logout_url(emulator), account=MEGAN)
    assert second.front_channel_urls == (with_sid(registered(emulator, APP_B), megan.sid),)
    last = browser.sign_out(logout_url(emulator))
    assert last.accounts == ()
    assert last.front_channel_urls == (with_sid(registered(emulator, APP_F), bob.sid),)
    for client_id, tenant in ((APP_A, CONTOSO), (APP_F, FABRIKAM)):
        app = emulator.app(client_id)
        params = {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": app.redirect_uris[0],
            "scope": "openid",
            "prompt": "none",
            "code_challenge": hash_verifier("v" * 43),
            "code_challenge_method": "S256",
        }
        url = f"{emulator.urls.browser_base}/{tenant}/oauth2/v2.0/authorize?{urlencode(params)}"
        assert browser.authorize(url)["error"] == "login_required"


def test_an_unregistered_post_logout_uri_still_frames_but_stays(emulator: EntraEmulator) -> None:
    browser = BrowserlessUser()
    sid = sign_in(emulator, browser, APP_A).sid
    out = browser.sign_out(
        logout_url(emulator, post_logout_redirect_uri="https://evil.example/", client_id=APP_A)
    )
    assert out.front_channel_urls == (with_sid(registered(emulator, APP_A), sid),)
    assert out.continue_to is None
    assert "not registered" in out.notice
    page = browser.session.get(logout_url(emulator), allow_redirects=False).text
    assert "evil.example" not in page


def test_names_and_urls_are_escaped_on_the_page_and_in_the_csp(emulator: EntraEmulator) -> None:
    browser = BrowserlessUser()
    sid = sign_in(emulator, browser, APP_E).sid
    response = browser.session.get(logout_url(emulator), allow_redirects=False)
    html, policy = response.text, response.headers["Content-Security-Policy"]
    assert "<script>alert" not in html
    assert 'title="Signing out of &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co"' in html
    assert f'src="https://e.example/fc;v=1?a=1&amp;b=2&amp;sid={sid}"' in html
    # A `;` would end the CSP directive: percent-encoded in the source, which CSP decodes.
    assert frame_src(policy) == ["https://e.example/fc%3Bv=1"]
    assert frame_source(E_LOGOUT) == "https://e.example/fc%3Bv=1"
    assert csp_allows_frame(policy, with_sid(E_LOGOUT, sid))


# -- the driver follows it: signing out of A ends the session in B ---------------------------------
def test_signing_out_of_app_a_ends_the_session_in_app_b(
    emulator: EntraEmulator, parties: tuple[RelyingParty, RelyingParty]
) -> None:
    a, b = parties
    browser = BrowserlessUser()
    sids = []
    for party, client_id in ((a, APP_A), (b, APP_B)):
        answer = sign_in(emulator, browser, client_id)
        sids.append(answer.sid)
        callback = (
            f"{party.base}/cb?{urlencode({'code': answer.code, 'session_state': answer.sid})}"
        )
        assert browser.session.get(callback, timeout=HANG_GUARD).status_code == 200
        assert browser.session.get(f"{party.base}/", timeout=HANG_GUARD).status_code == 200

    out = browser.sign_out(
        logout_url(emulator, post_logout_redirect_uri=f"{a.base}/", client_id=APP_A),
        load_frames=True,
    )

    assert [r.status_code for r in out.frames] == [200, 200]
    assert browser.session.get(f"{b.base}/", timeout=HANG_GUARD).status_code == 401
    assert browser.session.get(f"{a.base}/", timeout=HANG_GUARD).status_code == 401
    # As in production (the IdP and the app on different sites), the frames carry no cookie:
    # each app found its session by the sid alone.
    assert [call["cookies"] for call in a.calls + b.calls] == [{}, {}]
    assert [call["args"] for call in a.calls] == [{"app": "a", "sid": sids[0]}]
    assert [call["args"] for call in b.calls] == [{"sid": sids[1]}]


def test_the_driver_can_send_the_browsers_cookies_with_the_frames(
    emulator: EntraEmulator, parties: tuple[RelyingParty, RelyingParty]
) -> None:
    a, _ = parties
    browser = BrowserlessUser()
    answer = sign_in(emulator, browser, APP_A)
    browser.session.get(f"{a.base}/cb?{urlencode({'session_state': answer.sid})}")
    out = browser.sign_out(logout_url(emulator))
    assert a.calls == []  # not loaded unless asked
    (frame,) = browser.load_front_channel(out.front_channel_urls, send_cookies=True)
    assert frame.status_code == 200
    assert list(a.calls[0]["cookies"]) == [a.cookie]


def test_the_driver_reports_frames_the_csp_would_block() -> None:
    policy = "default-src 'none'; frame-src https://ok.example/fc http://localhost:5000/a/"
    assert csp_allows_frame(policy, "https://ok.example/fc?sid=1")
    assert csp_allows_frame(policy, "https://OK.example:443/fc")
    assert not csp_allows_frame(policy, "https://ok.example/fc/more")
    assert not csp_allows_frame(policy, "http://ok.example/fc")  # no downgrade
    assert not csp_allows_frame(policy, "https://ok.example:8443/fc")
    assert csp_allows_frame(policy, "http://localhost:5000/a/b")  # a path ending in / is a prefix
    assert not csp_allows_frame(policy, "http://localhost:5001/a/b")
    assert not csp_allows_frame("default-src 'none'", "https://ok.example/fc")
    assert not csp_allows_frame("frame-src 'none'; default-src *", "https://ok.example/fc")
    assert csp_allows_frame("script-src 'none'", "https://ok.example/fc")  # nothing restricts it
    assert csp_allows_frame("frame-src https://ok.example/fc; ;", "https://ok.example/fc")


def test_the_directory_page_lists_each_apps_front_channel_url(emulator: EntraEmulator) -> None:
    page = BrowserlessUser().session.get(f"{emulator.urls.browser_base}/", timeout=30).text
    assert "<td>https://d.example/front-channel</td>" in page
    assert "<td>https://e.example/fc;v=1?a=1&amp;b=2</td>" in page


def test_discovery_says_front_channel_logout_but_not_iss_with_sid(emulator: EntraEmulator) -> None:
    doc = emulator.http_session().get(
        f"{emulator.authority_for(CONTOSO)}/v2.0/.well-known/openid-configuration"
    )
    assert doc.json()["frontchannel_logout_supported"] is True
    # Entra sends sid without iss, and says so by not advertising the session variant.
    assert "frontchannel_logout_session_supported" not in doc.json()


# -- in a real browser: the frames load, then the page goes on -------------------------------------
def authorize_url(emulator: EntraEmulator, client_id: str) -> str:
    params = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": emulator.app(client_id).redirect_uris[0],
        "scope": "openid profile",
        "code_challenge": hash_verifier("v" * 43),
        "code_challenge_method": "S256",
    }
    return f"{emulator.urls.browser_base}/{CONTOSO}/oauth2/v2.0/authorize?{urlencode(params)}"


def _sign_in_to_both(page: Page, emulator: EntraEmulator, a: RelyingParty, b: RelyingParty) -> None:
    page.goto(authorize_url(emulator, APP_A))
    page.click(f"button[data-upn='{ADELE}']")
    page.click("#accept")
    page.wait_for_url(f"{a.base}/cb?**")
    page.goto(authorize_url(emulator, APP_B))  # SSO: straight to consent
    page.click("#accept")
    page.wait_for_url(f"{b.base}/cb?**")
    assert len(a.sessions) == len(b.sessions) == 1


def in_chromium(scenario: Callable[[Page, list[str]], None]) -> None:
    """Run ``scenario`` with a page of Debian's Chromium and the console messages it logs."""

    def with_console(page: Page) -> None:
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        scenario(page, console)

    in_chromium_with(with_console)


@pytest.mark.e2e
def test_in_a_real_browser_the_page_continues_once_every_frame_has_loaded(
    emulator: EntraEmulator,
    parties: tuple[RelyingParty, RelyingParty],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = parties
    # No fallback within the test's wait: the page can go on only by the frames' load events.
    monkeypatch.setattr(logout_endpoint, "FRAME_WAIT_MS", 10 * BROWSER_WAIT_MS)

    def scenario(page: Page, console: list[str]) -> None:
        _sign_in_to_both(page, emulator, a, b)
        page.goto(logout_url(emulator, post_logout_redirect_uri=f"{a.base}/", client_id=APP_A))
        page.wait_for_url(f"{a.base}/")
        assert "who?" in page.content()  # A's own session was ended by its frame
        assert not [m for m in console if "Content Security Policy" in m]  # nothing blocked

    in_chromium(scenario)
    assert a.sessions == {}
    assert b.sessions == {}  # and B's: signed out of A, signed out of B
    trail = [entry for entry in a.journal if not entry.endswith("/favicon.ico")]  # Chromium's
    assert sorted(trail[-3:-1]) == ["a /front-channel", "b /front-channel"]
    assert trail[-1] == "a /"  # the way on came after both frames


@pytest.mark.e2e
def test_in_a_real_browser_an_app_that_never_answers_does_not_hold_the_user(
    emulator: EntraEmulator,
    parties: tuple[RelyingParty, RelyingParty],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = parties
    monkeypatch.setattr(logout_endpoint, "FRAME_WAIT_MS", 200)

    def scenario(page: Page, console: list[str]) -> None:
        _sign_in_to_both(page, emulator, a, b)
        b.hold = True
        page.goto(logout_url(emulator, post_logout_redirect_uri=f"{a.base}/", client_id=APP_A))
        page.wait_for_url(f"{a.base}/")  # on after the bounded wait, B still silent

    try:
        in_chromium(scenario)
        assert b.calls == []
        assert a.sessions == {}
    finally:
        b.release.set()
        if "b /front-channel" in b.journal:  # the held request finishes now, not in another test
            assert b.answered.wait(HANG_GUARD)
