"""FastAPI/Starlette web sign-in (``entra_auth.integrations.fastapi.EntraAuth``) against the
local Entra ID with the real MSAL, where it differs from Flask: an app built as the README's
(``Depends(auth.login_required())``, ``await auth.get_token``/``graph_get``), and MSAL off the
event loop. What both web adapters do alike is tested once, over both: the catalogue
(``tests/security/test_sign_in.py``, ``test_hx_web.py``, HX11 in ``test_hx_storage.py``), the
pages (``tests/test_signin_pages.py``) and several instances (``tests/test_scale_out.py``).

No ``from __future__ import annotations``: FastAPI reads the endpoints' ``Annotated``
dependencies, which name the local ``auth``.
"""

import asyncio
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import anyio.to_thread
import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from entra_auth.config import EntraConfig
from entra_auth.emulator import EntraEmulator, Fault
from entra_auth.integrations.fastapi import AnonymousUser, EntraAuth, SignedInUser
from entra_auth.testing.driver import BrowserlessUser

from .helpers import ADELE, demo_config

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
    assert page.headers["location"] == "/login?next=/profile"
    done = browser.sign_in(path=page.headers["location"])
    assert done.status_code == 302
    assert done.headers["location"] == "/profile"
    assert browser.who() == "Adele Vance"
    profile = browser.client.get("/profile")
    assert profile.status_code == 200
    assert profile.json()["me"]["displayName"] == "Adele Vance"
    assert browser.client.get("/token").json()["length"] > 100


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
