"""The FastAPI demo behind the interface ``Web`` drives (Flask's test client's), so that one
catalogue test body runs against both web adapters: ``FastApiWebApp`` is the ``web.app`` the
tests use (``test_client()``, ``secret_key``, ``config``), ``FastApiTestClient`` its client
(``get``/``post`` with Flask's keywords, answers with ``get_data``/``json``/``location``,
cookies, and ``session_transaction`` over the server-side session file)."""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.cookiejar import CookieJar
from types import SimpleNamespace
from typing import Any, TypeVar

import httpx
import redis
from fastapi import FastAPI

from entra_auth.integrations.fastapi import EntraAuth
from entra_auth.integrations.fastapi.sessions import FileStore, RedisSessionStore

from ..fastapi_support import Answer

T = TypeVar("T")
BASE = "http://localhost:5000"  # the demo web app's registered redirect URI is on it
SESSION_COOKIE = "entra_session"


class FastApiTestClient:
    """One browser: its own cookie jar, its requests sent through the app's one httpx client
    over ASGI, in the app's one event loop in this thread (Starlette's ``TestClient`` crosses
    to a portal thread several times a request: the catalogue's 10,000 anonymous visitors
    would take a minute)."""

    def __init__(self, web_app: FastApiWebApp):
        self.web_app = web_app
        self.cookies = httpx.Cookies(CookieJar())

    def _send(self, method: str, url: str, **kwargs: Any) -> Answer:
        http = self.web_app.http
        http.cookies = self.cookies.jar  # httpx shares a CookieJar it is given: this browser's
        return Answer(self.web_app.run(http.request(method, url, **kwargs)))

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
        return self._send("GET", url, params=query_string, headers=headers, **kwargs)

    def post(self, path: str, *, headers: Any = None, **kwargs: Any) -> Answer:
        return self._send("POST", path, headers=headers, **kwargs)

    def get_cookie(self, name: str) -> Any:
        value = self.cookies.get(name)
        return SimpleNamespace(value=value) if value is not None else None

    def set_cookie(self, name: str, value: str, **_: Any) -> None:
        """As the browser keeps it: one cookie of that name, replacing the app's."""
        jar = self.cookies.jar
        domains = {c.domain for c in jar if c.name == name} or {""}
        self.delete_cookie(name)
        for domain in domains:
            self.cookies.set(name, value, domain=domain)

    def delete_cookie(self, name: str, **_: Any) -> None:
        jar = self.cookies.jar
        for cookie in [c for c in jar if c.name == name]:
            jar.clear(cookie.domain, cookie.path, cookie.name)

    @contextmanager
    def session_transaction(self) -> Iterator[dict[str, Any]]:
        """The browser's server-side session as a dict (from its file, or its Redis record);
        what the block changes is stored."""
        auth = self.web_app.auth
        store = auth.store.inner
        bare = auth.store.unsigned(self.cookies.get(SESSION_COOKIE))
        if isinstance(store, RedisSessionStore):
            client = redis.Redis.from_url(store.url)
            raw = (client.get(f"{store.prefix}{bare}") or b"") if bare else b""
        else:
            assert isinstance(store, FileStore)
            raw = store._read(bare) if bare else b""
        data: dict[str, Any] = json.loads(raw) if raw else {}
        metadata = data.pop("__metadata__", None)
        yield data
        if not bare:
            return
        record = json.dumps({**data, "__metadata__": metadata}).encode()
        if isinstance(store, RedisSessionStore):
            client.set(f"{store.prefix}{bare}", record, keepttl=True)
        else:
            store._write(bare, record, 3600)


class FastApiWebApp:
    """The FastAPI demo as ``Web`` expects an app: ``test_client()``, ``secret_key``, ``config``.
    ``close()`` closes its client and loop, as does garbage collection or the end of the test
    session for one a test made itself. (No lifespan runs: the protector loads its keys on
    the first request that needs them.)"""

    ADAPTER = "fastapi"

    def __init__(self, asgi: FastAPI, settings: dict[str, Any]):
        self.asgi = asgi
        self.config = settings
        self.secret_key = settings["SECRET_KEY"]
        auth = asgi.state.entra_auth
        assert isinstance(auth, EntraAuth)
        self.auth = auth
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=asgi)
        self.http = httpx.AsyncClient(transport=transport, base_url=BASE, follow_redirects=False)
        self._stop = weakref.finalize(self, _stop, self.loop, self.http)

    def run(self, request: Coroutine[Any, Any, httpx.Response]) -> httpx.Response:
        return _run_in(self.loop, request)

    def test_client(self) -> FastApiTestClient:
        return FastApiTestClient(self)

    def close(self) -> None:
        self._stop()


def _run_in(loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, T]) -> T:
    """``work`` run in the app's loop: in this thread, or in another when this one runs a loop
    already (Playwright's sync API does)."""
    if asyncio._get_running_loop() is None:
        return loop.run_until_complete(work)
    with ThreadPoolExecutor(max_workers=1) as other:
        return other.submit(loop.run_until_complete, work).result()


def _stop(loop: asyncio.AbstractEventLoop, http: httpx.AsyncClient) -> None:
    _run_in(loop, http.aclose())
    loop.close()
