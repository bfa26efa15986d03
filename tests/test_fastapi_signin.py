"""FastAPI/Starlette web sign-in (``entra_auth.integrations.fastapi.EntraAuth``) against the
local Entra ID with the real MSAL: sign-in, the session cookie, current_user, login_required
with roles, get_token and Graph, sign-out, and the session rules (a signed id in the cookie,
nothing stored for anonymous visitors, a new id at sign-in, a record moved in the store
speaks for nobody).

No ``from __future__ import annotations``: FastAPI reads the endpoints' ``Annotated``
dependencies, which name the local ``auth``.
"""

import asyncio
import json
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

import anyio.to_thread
import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from entra_auth.config import EntraConfig
from entra_auth.emulator import EntraEmulator, Fault
from entra_auth.integrations.fastapi import AnonymousUser, EntraAuth, SignedInUser
from entra_auth.integrations.fastapi.sessions import FileStore
from entra_auth.testing.driver import BrowserlessUser

from .helpers import ADELE, MEGAN, demo_config
from .redis_support import RedisServer

BASE = "http://localhost:5000"  # the demo web app's registered redirect URI is on it


def make_app(
    emulator: EntraEmulator,
    tmp_path: Path,
    *,
    redis_url: str | None = None,
    settings: dict[str, Any] | None = None,
    **options: Any,
) -> tuple[FastAPI, EntraAuth]:
    settings = settings or demo_config(emulator)
    auth = EntraAuth(
        EntraConfig.from_mapping(settings),
        secret_key=settings["SECRET_KEY"],
        redis_url=redis_url,
        session_dir=tmp_path / "sessions",
        **options,
    )
    app = FastAPI()
    auth.init_app(app)

    @app.get("/", response_class=HTMLResponse)
    async def home(user: Annotated[SignedInUser | AnonymousUser, Depends(auth.current_user)]):
        who = f'<span id="who">{user.name}</span>' if user.is_authenticated else ""
        return f"{who}anonymous={user.is_anonymous}"

    @app.get("/profile")
    async def profile(
        user: Annotated[SignedInUser, Depends(auth.login_required())], request: Request
    ):
        return {"key": list(user.key), "me": await auth.graph_get(request, "/v1.0/me")}

    @app.get("/admin")
    async def admin(user: Annotated[SignedInUser, Depends(auth.login_required(roles=["Admin"]))]):
        return {"admin": user.name}

    @app.get("/token")
    async def token(
        user: Annotated[SignedInUser, Depends(auth.login_required())], request: Request
    ):
        return {"length": len(await auth.get_token(request, ["User.Read"]))}

    return app, auth


class Browser:
    """One browser: the app in Starlette's TestClient, the IdP's pages walked by
    BrowserlessUser (its own cookies: single sign-on across sign-ins)."""

    def __init__(self, app: FastAPI, idp: BrowserlessUser | None = None):
        self.client = TestClient(app, base_url=BASE, follow_redirects=False)
        self.idp = idp or BrowserlessUser()

    def sign_in(self, user: str = ADELE, path: str = "/login") -> Any:
        start = self.client.get(path)
        assert start.status_code == 302, start.text
        params = self.idp.authorize(start.headers["location"], user=user)
        return self.client.get(f"/get_token?{urlencode(params)}")

    def who(self) -> str | None:
        found = re.search(r'id="who">([^<]+)<', self.client.get("/").text)
        return found.group(1) if found else None


@pytest.fixture
def browser(entra_emulator: EntraEmulator, tmp_path: Path) -> Browser:
    app, _ = make_app(entra_emulator, tmp_path)
    return Browser(app)


def test_sign_in_gives_a_session_with_the_user_and_back_to_the_page(browser: Browser) -> None:
    assert browser.who() is None
    page = browser.client.get("/profile")
    assert page.status_code == 302
    assert page.headers["location"] == "/login?next=%2Fprofile"
    done = browser.sign_in(path=page.headers["location"])
    assert done.status_code == 302
    assert done.headers["location"] == "/profile"
    assert browser.who() == "Adele Vance"
    profile = browser.client.get("/profile")
    assert profile.status_code == 200
    assert profile.json()["me"]["displayName"] == "Adele Vance"
    assert browser.client.get("/token").json()["length"] > 100


def test_the_cookie_holds_a_signed_id_only_and_anonymous_visitors_store_nothing(
    entra_emulator: EntraEmulator, tmp_path: Path
) -> None:
    app, auth = make_app(entra_emulator, tmp_path)
    browser = Browser(app)
    browser.client.get("/")
    browser.client.get("/login")
    assert "entra_session" not in browser.client.cookies  # HX04: nothing for anonymous visitors
    assert list((tmp_path / "sessions").glob("*.json")) == []
    browser.sign_in()
    cookie = browser.client.cookies["entra_session"]
    bare = cookie.partition(".")[0]
    assert re.fullmatch(r"[0-9a-f]{32}", bare)
    assert auth.store.unsigned(cookie) == bare
    assert "Adele" not in cookie
    stored = (tmp_path / "sessions" / f"{bare}.json").read_text()
    assert "Adele Vance" in stored
    assert "RefreshToken" in stored  # the token cache lives in the session (files)
    # A forged signature is no session: the same id with another MAC signs nobody in.
    browser.client.cookies.clear()
    browser.client.cookies.set("entra_session", f"{bare}.{'0' * 32}")
    assert browser.who() is None


def test_a_new_session_id_at_sign_in_no_fixation(
    entra_emulator: EntraEmulator, tmp_path: Path
) -> None:
    app, _auth = make_app(entra_emulator, tmp_path)
    victim = Browser(app)
    victim.sign_in()
    first = victim.client.cookies["entra_session"]
    victim.sign_in(user=MEGAN, path="/login?prompt=login")
    second = victim.client.cookies["entra_session"]
    assert first != second
    assert victim.who() == "Megan Bowen"
    attacker = Browser(app)  # holding the first id signs in nobody
    attacker.client.cookies.set("entra_session", first)
    assert attacker.who() is None


def test_a_session_record_moved_to_another_id_speaks_for_nobody(
    entra_emulator: EntraEmulator, tmp_path: Path
) -> None:
    """HX11 on FastAPI: a store writer copies Adele's record under another session's id."""
    app, _ = make_app(entra_emulator, tmp_path)
    adele, megan = Browser(app), Browser(app)
    adele.sign_in()
    megan.sign_in(user=MEGAN)
    directory = tmp_path / "sessions"
    adele_id = adele.client.cookies["entra_session"].partition(".")[0]
    megan_id = megan.client.cookies["entra_session"].partition(".")[0]
    (directory / f"{megan_id}.json").write_bytes((directory / f"{adele_id}.json").read_bytes())
    assert megan.who() is None
    assert adele.who() == "Adele Vance"


def test_roles_on_pages(entra_emulator: EntraEmulator, tmp_path: Path) -> None:
    app, _ = make_app(entra_emulator, tmp_path)
    adele, megan = Browser(app), Browser(app)
    adele.sign_in()
    assert adele.client.get("/admin").json() == {"admin": "Adele Vance"}
    megan.sign_in(user=MEGAN)
    refused = megan.client.get("/admin")
    assert refused.status_code == 403
    assert "You don&#39;t have access to this page" in refused.text
    assert "prompt=select_account" in refused.text
    as_json = megan.client.get("/admin", headers={"Accept": "application/json"})
    assert as_json.json() == {
        "error": "forbidden",
        "error_description": "Missing app role(s).",
        "roles": ["Admin"],
    }


def test_sign_out_ends_the_session_and_goes_to_the_idp(browser: Browser) -> None:
    browser.sign_in()
    asked = browser.client.get("/logout")  # a GET only asks
    assert asked.status_code == 200
    assert browser.who() == "Adele Vance"
    out = browser.client.post("/logout")
    assert out.status_code == 302
    assert urlsplit(out.headers["location"]).path.endswith("/oauth2/v2.0/logout")
    assert browser.who() is None
    assert browser.client.get("/logout").headers["location"] == "/"


def test_a_callback_for_a_sign_in_this_browser_did_not_start_is_refused(
    entra_emulator: EntraEmulator, tmp_path: Path
) -> None:
    app, _ = make_app(entra_emulator, tmp_path)
    victim, attacker = Browser(app), Browser(app)
    victim.client.get("/login")  # the victim has a sign-in under way
    start = attacker.client.get("/login")
    params = attacker.idp.authorize(start.headers["location"], user=MEGAN)
    answer = victim.client.get(f"/get_token?{urlencode(params)}")
    assert answer.status_code == 400
    assert "This sign-in was started somewhere else" in answer.text
    assert victim.who() is None


def test_the_user_loader_refuses_a_user_without_a_record(
    entra_emulator: EntraEmulator, tmp_path: Path
) -> None:
    app, auth = make_app(entra_emulator, tmp_path)
    auth.user_loader(lambda user: {"id": 1} if user.name == "Adele Vance" else None)
    megan = Browser(app)
    refused = megan.sign_in(user=MEGAN)
    assert refused.status_code == 403
    assert "this app has no account for you" in refused.text
    assert megan.who() is None
    adele = Browser(app)
    assert adele.sign_in().status_code == 302
    assert adele.who() == "Adele Vance"


def test_msal_runs_off_the_event_loop_while_the_token_endpoint_is_slow(tmp_path: Path) -> None:
    """The code redemption (MSAL, synchronous) waits on a slowed token endpoint in a worker
    thread: an unrelated request is answered meanwhile, and the callback finishes once the
    endpoint answers. Ordered by events: the held request is seen at the emulator's counter,
    the unrelated answer comes while the callback is still pending, then the hold is released
    (this test's own emulator: a release lasts)."""
    with EntraEmulator(state_dir=tmp_path / "idp", port=0, browser_port=0) as emulator:
        settings = demo_config(emulator, ENTRA_HTTP_TIMEOUT="120")
        auth = EntraAuth(
            EntraConfig.from_mapping(settings),
            secret_key=settings["SECRET_KEY"],
            session_dir=tmp_path / "sessions",
        )
        app = FastAPI()
        auth.init_app(app)

        @app.get("/ping")
        async def ping() -> dict[str, bool]:
            return {"pong": True}

        idp = BrowserlessUser()

        async def scenario() -> None:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                start = await client.get("/login")
                params = await anyio.to_thread.run_sync(
                    lambda: idp.authorize(start.headers["location"], user=ADELE)
                )
                emulator.reset_counts()
                emulator.inject_fault("token", Fault("slow", delay=110))
                callback = asyncio.create_task(client.get(f"/get_token?{urlencode(params)}"))
                for _ in range(2000):  # bounded: until the token request is held
                    if emulator.request_counts().get("token", 0) >= 1:
                        break
                    await asyncio.sleep(0.01)
                else:
                    pytest.fail("The callback never reached the token endpoint.")
                answer = await client.get("/ping")
                assert answer.json() == {"pong": True}
                assert not callback.done()  # still waiting on the identity provider
                emulator.state.faults.release_held()
                done = await callback
                assert done.status_code == 302, done.text
                assert done.headers["location"] == "/"

        asyncio.run(scenario())


def test_two_instances_share_sessions_and_token_caches_through_redis(
    entra_emulator: EntraEmulator, tmp_path: Path, redis_url: str
) -> None:
    """Sign-in starts on one instance and its callback lands on the other; either serves the
    signed-in user and gets tokens; Redis holds the session and the token cache, the latter
    encrypted (no refresh token in the clear)."""
    import redis as redis_py

    settings = demo_config(entra_emulator, ENTRA_TOKEN_CACHE_KEY=Fernet.generate_key().decode())
    app_one, _ = make_app(entra_emulator, tmp_path / "one", redis_url=redis_url, settings=settings)
    app_two, _ = make_app(entra_emulator, tmp_path / "two", redis_url=redis_url, settings=settings)
    one, two = Browser(app_one), Browser(app_two)
    start = one.client.get("/login")
    params = one.idp.authorize(start.headers["location"], user=ADELE)
    two.client.cookies = one.client.cookies  # the same browser, behind a load balancer
    assert two.client.get(f"/get_token?{urlencode(params)}").status_code == 302
    one.client.cookies = two.client.cookies
    assert one.who() == "Adele Vance"
    assert two.who() == "Adele Vance"
    assert one.client.get("/token").json()["length"] > 100
    assert two.client.get("/profile").json()["me"]["displayName"] == "Adele Vance"
    store = redis_py.Redis.from_url(redis_url)
    sessions = store.keys("entra:session:*")
    caches = [k for k in store.keys("entra:tokens:*") if not k.endswith(b":lock")]
    assert len(sessions) == 1
    assert len(caches) == 1
    assert b"Adele Vance" in store.get(sessions[0])
    assert b"RefreshToken" not in store.get(caches[0])
    assert list((tmp_path / "one" / "sessions").glob("*.json")) == []
    two.client.post("/logout")
    one.client.cookies = two.client.cookies
    assert one.who() is None
    assert store.keys("entra:tokens:*") == []


def test_redis_down_mid_session_is_a_503_page_then_back(
    entra_emulator: EntraEmulator, tmp_path: Path
) -> None:
    """The session store stops: every page (signed in or not, the sign-in too) answers 503
    with Retry-After and the store-down page, never a 500 or a traceback; once it is back (an
    empty Redis: this one keeps nothing on disk) pages answer and sign-in works, without a
    restart."""
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis").start()
    try:
        settings = demo_config(entra_emulator, ENTRA_TOKEN_CACHE_KEY=Fernet.generate_key().decode())
        app, _ = make_app(entra_emulator, tmp_path, redis_url=server.url, settings=settings)
        browser = Browser(app)
        browser.sign_in()
        assert browser.client.get("/token").status_code == 200
        server.stop()
        for path in ("/token", "/", "/login"):
            down = browser.client.get(path)
            assert down.status_code == 503, (path, down.text[:300])
            assert down.headers["retry-after"] == "5"
            assert "The session store is unavailable" in down.text
            assert "Traceback" not in down.text
        server.start()
        assert browser.client.get("/").status_code == 200
        browser.sign_in()
        assert browser.who() == "Adele Vance"
        assert browser.client.get("/token").status_code == 200
    finally:
        server.stop()


def signed_in_sid(auth: EntraAuth, browser: Browser) -> str:
    """The ID token's sid the browser's session was signed in with."""
    bare = auth.store.unsigned(browser.client.cookies["entra_session"])
    assert bare is not None
    if isinstance(auth.store.inner, FileStore):
        stored = auth.store.inner._read(bare)
    else:
        import redis as redis_py

        stored = redis_py.Redis.from_url(auth.store.inner.url).get(f"entra:session:{bare}") or b""
    return str(json.loads(stored)["entra_user"]["sid"])


@pytest.mark.parametrize("store", ["files", "redis"])
def test_front_channel_sign_out_ends_the_sign_in_on_every_instance(
    entra_emulator: EntraEmulator, tmp_path: Path, request: pytest.FixtureRequest, store: str
) -> None:
    """The IdP's hidden frame (no cookie of ours) names the sign-in by its sid: every session
    of it ends (with Redis, on another instance too), a frame naming another issuer ends
    nothing, and the route may be framed by the IdP only."""
    redis_url = request.getfixturevalue("redis_url") if store == "redis" else None
    settings = demo_config(entra_emulator, ENTRA_TOKEN_CACHE_KEY=Fernet.generate_key().decode())
    app_one, auth = make_app(entra_emulator, tmp_path, redis_url=redis_url, settings=settings)
    app_two = app_one
    if redis_url:
        app_two, _ = make_app(
            entra_emulator, tmp_path / "two", redis_url=redis_url, settings=settings
        )
    adele = Browser(app_one)
    adele.sign_in()
    sid = signed_in_sid(auth, adele)
    frame = TestClient(app_two, base_url=BASE, follow_redirects=False)  # the IdP's frame
    foreign = frame.get(f"/logout/front-channel?sid={sid}&iss=https://elsewhere.example/v2.0")
    assert foreign.status_code == 200
    assert adele.who() == "Adele Vance"  # another issuer's sid: nothing ended
    answer = frame.get(f"/logout/front-channel?sid={sid}")
    assert answer.status_code == 200
    policy = answer.headers["content-security-policy"]
    assert policy.startswith("frame-ancestors ")
    assert "'none'" not in policy
    assert urlsplit(entra_emulator.authority).netloc in policy
    assert "x-frame-options" not in answer.headers
    assert adele.who() is None
    assert adele.client.get("/token").status_code == 302  # off to sign in again
    assert frame.get("/logout/front-channel").status_code == 400  # no sid


def test_a_signed_in_users_pages_are_private_the_apps_own_too(browser: Browser) -> None:
    """No shared or back-button caching of a signed-in user's pages (the app's endpoints, not
    only the library's): ``no-store`` and ``Vary: Cookie`` while signed in, not before."""
    anonymous = browser.client.get("/")
    assert "no-store" not in anonymous.headers.get("cache-control", "")
    browser.sign_in()
    for path in ("/", "/token"):
        page = browser.client.get(path)
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store"
        assert "Cookie" in page.headers["vary"]
