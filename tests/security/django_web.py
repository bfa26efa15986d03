"""The Django demo behind the interface ``Web`` drives (Flask's test client's), so that one
catalogue test body runs against the Django adapter too: ``DjangoWebApp`` is the ``web.app``
the tests use (``test_client()``, ``secret_key``, ``config``), ``DjangoTestClient`` its client
(``get``/``post`` with Flask's keywords, answers with ``get_data``/``json``/``location``,
cookies, and ``session_transaction`` over the Django session).

Django's settings are the process's: an app's (the demo's ``settings.py`` with the test's
ENTRA_* and ``SECRET_KEY``) are put in place, ``override_settings``, by the first request of
its client, in place of those of another app of the same test; the test's end takes them away
(``deactivate``, from the suite's ``conftest.py``). The tests need the database
(``WEB_ADAPTERS`` marks the Django case ``django_db``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings as django_settings
from django.contrib.staticfiles.views import serve as serve_static
from django.core.cache import caches
from django.http import HttpResponseBase
from django.test import Client, RequestFactory, override_settings
from examples.django_demo import settings as demo
from werkzeug.datastructures import Headers

from entra_auth.client import session as websession

HOST = "localhost:5000"  # the demo web app's registered redirect URI is on it
TOKEN_CACHE = "entra_token_cache"  # the other adapters' session key of the MSAL cache

_active: list[DjangoWebApp] = []  # the one app whose settings are in place, if any


def demo_settings(config: dict[str, Any], urlconf: str = demo.ROOT_URLCONF) -> dict[str, Any]:
    """The demo's ``settings.py`` that a request reads, with the test's configuration (and
    another app's URLconf: ``django_pages``)."""
    https = urlsplit(str(config.get("ENTRA_REDIRECT_URI", ""))).scheme == "https"
    values: dict[str, Any] = {
        "SECRET_KEY": config["SECRET_KEY"],
        "ROOT_URLCONF": urlconf,
        "TEMPLATES": demo.TEMPLATES,
        "AUTHENTICATION_BACKENDS": demo.AUTHENTICATION_BACKENDS,
        "STATICFILES_DIRS": demo.STATICFILES_DIRS,
        "SESSION_COOKIE_HTTPONLY": demo.SESSION_COOKIE_HTTPONLY,
        "SESSION_COOKIE_SAMESITE": demo.SESSION_COOKIE_SAMESITE,
        "ENTRA_ROLE_GROUPS": demo.ENTRA_ROLE_GROUPS,
        "ENTRA_STAFF_ROLES": demo.ENTRA_STAFF_ROLES,
        # Every Host reaches the app (as through a proxy that passes them on): the catalogue
        # checks the integration's own defence (FL07), not Django's ALLOWED_HOSTS.
        "ALLOWED_HOSTS": ["*"],
        # The catalogue's cookie name; over https a project sets Django's session cookie as
        # the other adapters make theirs (Django's session cookie is the project's settings).
        "SESSION_COOKIE_NAME": "__Host-entra_session" if https else "entra_session",
        "SESSION_COOKIE_SECURE": https,
    }
    values.update({k: v for k, v in config.items() if k.startswith("ENTRA_")})
    return values


class DjangoAnswer:
    """A Django response read as Flask's test response is: ``json`` and ``data`` properties,
    ``get_data``, ``location``, ``headers.getlist`` (each Set-Cookie line kept apart)."""

    def __init__(self, response: HttpResponseBase):
        self.response = response
        self.status_code = response.status_code
        lines = list(response.items())
        lines += [("Set-Cookie", m.OutputString()) for m in response.cookies.values()]
        self.headers = Headers(lines)
        self.location = self.headers.get("Location")
        if getattr(response, "streaming", False):
            self._body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
        else:
            self._body = response.content  # type: ignore[attr-defined]

    @property
    def data(self) -> bytes:
        return self._body

    @property
    def mimetype(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    @property
    def json(self) -> Any:
        return json.loads(self._body) if self._body else None

    def get_json(self) -> Any:
        return self.json

    def get_data(self, as_text: bool = False) -> bytes | str:
        return self._body.decode() if as_text else self._body


class DjangoTestClient:
    """One browser: Django's test client (its own cookies) for the app's requests."""

    def __init__(self, web_app: DjangoWebApp):
        self.web_app = web_app
        self.client = Client(HTTP_HOST=HOST)

    def _send(
        self,
        method: str,
        path: str,
        *,
        query_string: Any = None,
        headers: Any = None,
        base_url: str | None = None,
        follow_redirects: bool = False,
        **kwargs: Any,
    ) -> DjangoAnswer:
        answer = self._once(method, path, query_string, headers, base_url, **kwargs)
        while follow_redirects and answer.location and 300 <= answer.status_code < 400:
            answer = self._once("get", answer.location, None, headers, base_url)
        return answer

    def _once(
        self,
        method: str,
        path: str,
        query_string: Any,
        headers: Any,
        base_url: str | None,
        **kwargs: Any,
    ) -> DjangoAnswer:
        self.web_app.activate()
        if query_string:
            query = query_string if isinstance(query_string, str) else urlencode(query_string)
            path = f"{path}{'&' if '?' in path else '?'}{query}"
        extra: dict[str, Any] = {}
        if base_url:
            base = urlsplit(base_url)
            extra = {"secure": base.scheme == "https", "HTTP_HOST": base.netloc}
        if path.startswith(django_settings.STATIC_URL):  # as run.py's StaticFilesHandler
            request = RequestFactory(HTTP_HOST=HOST).get(path, headers=headers)
            found = serve_static(request, path[len(django_settings.STATIC_URL) :], insecure=True)
            return DjangoAnswer(found)
        send = getattr(self.client, method)
        if method == "post" and "json" in kwargs:
            kwargs = {**kwargs, "data": kwargs.pop("json"), "content_type": "application/json"}
        response = send(path, headers=dict(headers or {}), **extra, **kwargs)
        for name in [n for n, m in self.client.cookies.items() if m["max-age"] == 0]:
            del self.client.cookies[name]  # deleted by the app: a browser drops it
        return DjangoAnswer(response)

    def get(self, path: str, **kwargs: Any) -> DjangoAnswer:
        return self._send("get", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> DjangoAnswer:
        return self._send("post", path, **kwargs)

    def get_cookie(self, name: str) -> Any:
        morsel = self.client.cookies.get(name)
        return SimpleNamespace(value=morsel.value) if morsel is not None else None

    def set_cookie(self, name: str, value: str, **_: Any) -> None:
        self.client.cookies[name] = value

    def delete_cookie(self, name: str, **_: Any) -> None:
        if name in self.client.cookies:
            del self.client.cookies[name]

    @contextmanager
    def session_transaction(self) -> Iterator[dict[str, Any]]:
        """The browser's Django session as a dict, with its MSAL cache (kept in the Django
        cache, by the id the session holds) under the other adapters' key; what the block
        changes is stored."""
        self.web_app.activate()
        from entra_auth.integrations.django.conf import get_auth
        from entra_auth.integrations.django.sessions import token_store

        cookie = self.client.cookies.get(django_settings.SESSION_COOKIE_NAME)
        store = import_module(django_settings.SESSION_ENGINE).SessionStore(
            cookie.value if cookie is not None else None
        )
        data: dict[str, Any] = dict(store.items())
        cache_id = data.get(websession.CACHE_ID)
        tokens = token_store(get_auth(), cache_id) if isinstance(cache_id, str) else None
        before = tokens.load() if tokens is not None else None
        if before is not None:
            data[TOKEN_CACHE] = before
        yield data
        after = data.pop(TOKEN_CACHE, None)
        if store.session_key is None:
            return  # no session: nothing to store
        if tokens is not None and after is not None and after != before:
            tokens.save(after)
        store.clear()
        store.update(data)
        store.save()


class DjangoWebApp:
    """The Django demo as ``Web`` expects an app: ``test_client()``, ``secret_key``,
    ``config``; ``close()`` takes its settings away."""

    ADAPTER = "django"

    def __init__(self, config: dict[str, Any], urlconf: str = demo.ROOT_URLCONF):
        self.config = config
        self.secret_key = config["SECRET_KEY"]
        self.overrides = override_settings(**demo_settings(config, urlconf))

    def activate(self) -> None:
        """This app's settings in place of another's (one app's at a time)."""
        if _active and _active[0] is self:
            return
        deactivate(clear=False)
        self.overrides.enable()
        _active.append(self)

    def test_client(self) -> DjangoTestClient:
        return DjangoTestClient(self)

    def close(self) -> None:
        if _active and _active[0] is self:
            deactivate()


def deactivate(clear: bool = True) -> None:
    """The test's settings back (the end of a test); the caches emptied with them."""
    while _active:
        _active.pop().overrides.disable()
        if clear:
            for cache in caches.all():
                cache.clear()
