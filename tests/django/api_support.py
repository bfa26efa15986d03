"""The Django API of ``api_urls`` behind a client whose answers read as Flask's test client's
(``.json`` a property, ``get_data(as_text=True)``), so that the security catalogue and the
other adapters' comparisons run against Django unchanged.

Three adapters: ``django`` (sync views, Django's test ``Client``), ``django-async`` (async
views, ``AsyncClient`` through Django's ASGI handler) and ``drf`` (Django REST framework views,
DRF's ``APIClient``). Settings are ``ENTRA_*`` Django settings, as a project writes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client, override_settings
from rest_framework.test import APIClient

from entra_auth.emulator import EntraEmulator
from entra_auth.integrations.django import api as django_api
from entra_auth.tokens import AccessTokenValidator

from ..helpers import API, API_URI, CONTOSO
from .api_urls import REST_FRAMEWORK

URLCONF = "tests.django.api_urls"
ADAPTERS = ("django", "django-async", "drf")
PREFIX = {"django": "", "django-async": "/async", "drf": "/drf"}
# EntraConfig fields the catalogue configures, by their setting's name where it is not
# ENTRA_<FIELD> (tests/security/conftest.py ``api_factory(**config)``).
_SETTING_NAMES = {"api_audiences": "ENTRA_API_AUDIENCE"}
# An API project's usual middleware (CSRF included: a bearer-token view is exempt from it), and
# none of the sign-in app's: the API's answers are the decorator's and DRF's alone.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
Activate = Callable[[dict[str, Any]], AbstractContextManager[None]]


def entra_settings(emulator: EntraEmulator, **config: Any) -> dict[str, Any]:
    """The demo API's Django settings on the emulator (``helpers.emulator_config`` as
    ``ENTRA_*``); ``config`` names ``EntraConfig`` fields, as the catalogue's factory does."""
    values: dict[str, Any] = {
        "ENTRA_AUTHORITY": emulator.authority_for(CONTOSO),
        "ENTRA_CLIENT_ID": API,
        "ENTRA_CA_BUNDLE": str(emulator.ca_path),
    }
    for field, value in config.items():
        name = _SETTING_NAMES.get(field, f"ENTRA_{field.upper()}")
        values[name] = list(value) if isinstance(value, tuple) else value
    return {
        **values,
        "ROOT_URLCONF": URLCONF,
        "REST_FRAMEWORK": REST_FRAMEWORK,
        "MIDDLEWARE": MIDDLEWARE,
    }


@contextmanager
def overridden(values: dict[str, Any]) -> Iterator[None]:
    with override_settings(**values):
        yield


def switching(settings: Any) -> Activate:
    """Settings put in place through pytest-django's ``settings`` fixture (undone after the
    test), only when they change: a new validator, its keys fetched anew, only then, so that
    a test counting key-set fetches between two requests of one API sees none from here."""
    active: dict[str, Any] = {}

    @contextmanager
    def activate(values: dict[str, Any]) -> Iterator[None]:
        if values != active:
            for name in set(active) - set(values):
                delattr(settings, name)
            for name, value in values.items():
                setattr(settings, name, value)
            active.clear()
            active.update(values)
        yield

    return activate


class Answer:
    """A Django test response read as Flask's test response is."""

    def __init__(self, response: Any):
        self.response = response
        self.status_code: int = response.status_code
        self.headers = response.headers

    @property
    def json(self) -> Any:
        return json.loads(self.response.content) if self.response.content else None

    def get_json(self) -> Any:
        return self.json

    @property
    def data(self) -> bytes:
        return bytes(self.response.content)

    def get_data(self, as_text: bool = False) -> bytes | str:
        return self.response.content.decode() if as_text else bytes(self.response.content)


class DjangoApi:
    """The catalogue's API on one Django adapter, with the Flask client's ``get``/``post``.

    ``activate(settings)`` puts this API's settings in place around each request (the
    catalogue's factory makes several APIs in one test, each with its own settings)."""

    def __init__(self, adapter: str, settings: dict[str, Any], activate: Activate = overridden):
        self.adapter, self.settings, self.activate = adapter, settings, activate
        self.prefix = PREFIX[adapter]

    @property
    def validator(self) -> AccessTokenValidator:
        """The validator this adapter's views use (``security/conftest.py`` ``core_validator``)."""
        with self.activate(self.settings):
            protector = django_api._DEFAULT
            return (
                protector.async_validator if self.adapter == "django-async" else protector.validator
            )

    def get(self, path: str, headers: Any = None, **kwargs: Any) -> Answer:
        return self.request("get", path, headers, **kwargs)

    def post(self, path: str, headers: Any = None, **kwargs: Any) -> Answer:
        return self.request("post", path, headers, **kwargs)

    def request(self, method: str, path: str, headers: Any = None, **kwargs: Any) -> Answer:
        with self.activate(self.settings):
            folded = _folded(headers)
            url = self.prefix + path
            if self.adapter == "django-async":

                async def send() -> Any:
                    return await getattr(AsyncClient(), method)(url, headers=folded, **kwargs)

                return Answer(async_to_sync(send)())
            client = APIClient() if self.adapter == "drf" else Client()
            return Answer(getattr(client, method)(url, headers=folded, **kwargs))


def _folded(headers: Any) -> dict[str, str]:
    """Headers as a Django test client takes them. A name given twice is folded into one,
    comma-joined, as a WSGI server and Django's ASGI handler fold it (RFC 9110 §5.3)."""
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, dict) else headers
    folded: dict[str, str] = {}
    for name, value in items:
        folded[name] = f"{folded[name]}, {value}" if name in folded else value
    return folded


Call = Callable[[str | None], tuple[int, dict[str, str], dict[str, Any]]]


def auth_context_api(adapter: str) -> Callable[[EntraEmulator], Call]:
    """``tests/test_auth_context.py``'s adapter: the ``sensitive`` view (access_as_user, and the
    authentication context c1) of ``adapter``."""

    def build(emulator: EntraEmulator) -> Call:
        settings = entra_settings(emulator, api_audiences=(API, API_URI))
        api = DjangoApi(adapter, settings)

        def call(token: str | None) -> tuple[int, dict[str, str], dict[str, Any]]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            answer = api.get("/sensitive", headers=headers)
            return (
                answer.status_code,
                {k.lower(): v for k, v in answer.headers.items()},
                answer.json,
            )

        return call

    return build
