"""The FastAPI demo behind the interface ``Web`` drives (Flask's test client's), so that one
catalogue test body runs against both web adapters: ``FastApiWebApp`` is the ``web.app`` the
tests use (``test_client()``, ``secret_key``, ``config``), ``FastApiTestClient`` its client
(``get``/``post`` with Flask's keywords, answers with ``get_data``/``json``/``location``,
cookies, and ``session_transaction`` over the server-side session file)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from entra_auth.integrations.fastapi import EntraAuth
from entra_auth.integrations.fastapi.sessions import FileStore

BASE = "http://localhost:5000"  # the demo web app's registered redirect URI is on it
SESSION_COOKIE = "entra_session"


class Headers(httpx.Headers):
    """httpx's headers with Werkzeug's ``getlist``."""

    def getlist(self, key: str) -> list[str]:
        return self.get_list(key)


class Answer:
    """An httpx response read as Flask's test response is."""

    def __init__(self, response: httpx.Response):
        self.response = response
        self.status_code = response.status_code
        self.headers = Headers(response.headers.multi_items())  # Set-Cookie lines kept apart
        self.location = response.headers.get("location")

    @property
    def data(self) -> bytes:
        return self.response.content

    @property
    def json(self) -> Any:
        return json.loads(self.response.content) if self.response.content else None

    def get_data(self, as_text: bool = False) -> bytes | str:
        return self.response.text if as_text else self.response.content


class FastApiTestClient:
    def __init__(self, web_app: FastApiWebApp):
        self.web_app = web_app
        self.http = TestClient(web_app.asgi, base_url=BASE, follow_redirects=False)

    def get(
        self,
        path: str,
        *,
        query_string: Any = None,
        headers: Any = None,
        base_url: str | None = None,
        **kwargs: Any,
    ) -> Answer:
        url = f"{base_url}{path}" if base_url else path
        return Answer(self.http.get(url, params=query_string, headers=headers, **kwargs))

    def post(self, path: str, *, headers: Any = None, **kwargs: Any) -> Answer:
        return Answer(self.http.post(path, headers=headers, **kwargs))

    def get_cookie(self, name: str) -> Any:
        value = self.http.cookies.get(name)
        return SimpleNamespace(value=value) if value is not None else None

    def set_cookie(self, name: str, value: str, **_: Any) -> None:
        """As the browser keeps it: one cookie of that name, replacing the app's."""
        jar = self.http.cookies.jar
        domains = {c.domain for c in jar if c.name == name} or {""}
        self.delete_cookie(name)
        for domain in domains:
            self.http.cookies.set(name, value, domain=domain)

    def delete_cookie(self, name: str, **_: Any) -> None:
        jar = self.http.cookies.jar
        for cookie in [c for c in jar if c.name == name]:
            jar.clear(cookie.domain, cookie.path, cookie.name)

    @contextmanager
    def session_transaction(self) -> Iterator[dict[str, Any]]:
        """The browser's server-side session as a dict; what the block changes is stored."""
        auth = self.web_app.auth
        store = auth.store.inner
        assert isinstance(store, FileStore)
        bare = auth.store.unsigned(self.http.cookies.get(SESSION_COOKIE))
        raw = store._read(bare) if bare else b""
        data: dict[str, Any] = json.loads(raw) if raw else {}
        metadata = data.pop("__metadata__", None)
        yield data
        if bare:
            store._write(bare, json.dumps({**data, "__metadata__": metadata}).encode(), 3600)


class FastApiWebApp:
    """The FastAPI demo as ``Web`` expects an app: ``test_client()``, ``secret_key``, ``config``."""

    def __init__(self, asgi: FastAPI, settings: dict[str, Any]):
        self.asgi = asgi
        self.config = settings
        self.secret_key = settings["SECRET_KEY"]
        auth = asgi.state.entra_auth
        assert isinstance(auth, EntraAuth)
        self.auth = auth

    def test_client(self) -> FastApiTestClient:
        return FastApiTestClient(self)
