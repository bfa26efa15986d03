"""The demo app in Flask's test client, the IdP's pages walked by BrowserlessUser."""

from __future__ import annotations

import re
import struct
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from entra_auth.emulator import EntraEmulator
from entra_auth.pending import PendingSignInCookie, PendingSignIns
from entra_auth.testing.driver import BrowserlessUser

from ..helpers import ADELE

# For @pytest.mark.parametrize("web", ..., indirect=True); the Django demo keeps its users and
# sessions in the database.
DJANGO = pytest.param("django", marks=pytest.mark.django_db)
WEB_ADAPTERS = ["flask", "fastapi", DJANGO]
# The session cookie's name over https (``__Host-``: no sibling domain or http page can set it).
SECURE_SESSION_COOKIE = {
    "flask": "__Host-session",
    "fastapi": "__Host-entra_session",
    "django": "__Host-entra_session",
}


def demo_app(adapter: str, settings: dict[str, Any]) -> Any:
    """The demo web app of ``adapter`` ("flask", "fastapi" or "django") with ``settings``, as
    ``Web`` drives it."""
    if adapter == "django":
        from .django_web import DjangoWebApp

        return DjangoWebApp(settings)
    if adapter == "fastapi":
        from examples.fastapi_demo.app import create_app as create_fastapi_app

        from .fastapi_web import FastApiWebApp

        return FastApiWebApp(create_fastapi_app(settings), settings)
    from examples.demo.app import create_app

    return create_app(settings)


def session_files(web: Web) -> list[Path]:
    """The files the adapter's file store keeps sessions in (what a store writer can edit)."""
    assert web.adapter != "django", "Django's sessions are its session engine's (the database)"
    if web.adapter == "fastapi":
        return sorted(web.app.auth.store.inner.directory.glob("*.json"))
    store = web.app.config["SESSION_CACHELIB"]
    return sorted(Path(path) for path in store._list_dir())  # not its count file or index


def age_session_files(web: Web, expires_in: int) -> None:
    """Every session the file store holds now expires in ``expires_in`` seconds (both stores
    keep a session's expiry in whole seconds at the start of its file)."""
    expires = int(time.time()) + expires_in
    for path in session_files(web):
        raw = path.read_bytes()
        if web.adapter == "fastapi":
            path.write_bytes(f"{expires}\n".encode() + raw.partition(b"\n")[2])
        else:  # cachelib: a native unsigned int, then the entry
            path.write_bytes(struct.pack("I", expires) + raw[4:])


class Web:
    def __init__(self, emulator: EntraEmulator, app: Flask | Any):
        self.emulator, self.app = emulator, app
        self.adapter = "flask" if isinstance(app, Flask) else type(app).ADAPTER
        self.client = app.test_client()
        self.idp = BrowserlessUser()

    def begin(self, path: str = "/login") -> str:
        response = self.client.get(path)
        assert response.status_code == 302, response.get_data(as_text=True)
        return response.headers["Location"]

    def authorize(self, auth_uri: str, user: str = ADELE, consent: bool = True) -> dict[str, str]:
        return self.idp.authorize(auth_uri, user=user, consent=consent)

    def callback(self, params: dict[str, str] | str, **kwargs: Any) -> TestResponse:
        query = params if isinstance(params, str) else urlencode(params)
        return self.client.get(f"/get_token?{query}", **kwargs)

    def sign_in(self, user: str = ADELE) -> TestResponse:
        return self.callback(self.authorize(self.begin(), user=user))

    def who(self) -> str | None:
        found = re.search(r'id="who">([^<]+)<', self.client.get("/").get_data(as_text=True))
        return found.group(1) if found else None

    def session(self) -> dict[str, Any]:
        with self.client.session_transaction() as session:
            return dict(session)

    def cookie(self) -> str | None:
        cookie = self.client.get_cookie("entra_session")
        return cookie.value if cookie is not None else None

    def pending(self) -> PendingSignIns:
        """The sign-ins under way, from this browser's pending-sign-in cookie."""
        cookie = self.client.get_cookie("entra_signin")
        return self._sealer().open(cookie.value if cookie is not None else None)

    def write_pending(self, pending: PendingSignIns) -> None:
        """Reseal the cookie as the app would (tests that alter what the app keeps)."""
        self.client.set_cookie("entra_signin", self._sealer().seal(pending))

    def _sealer(self) -> PendingSignInCookie:
        return PendingSignInCookie(str(self.app.secret_key))


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
