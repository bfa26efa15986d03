"""Fixtures of the Django integration's tests: the settings pointed at the emulator (as a
project's settings.py would, through pytest-django's ``settings``), and a browser: Django's
test client for the app, ``BrowserlessUser`` for the IdP's pages (its own cookies: SSO)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.core.cache import caches
from django.test import Client

from entra_auth.emulator import EntraEmulator
from entra_auth.testing.driver import BrowserlessUser

from ..helpers import ADELE, demo_config


def entra_settings(emulator: EntraEmulator, **extra: Any) -> dict[str, Any]:
    """The web app's ENTRA_* settings against the emulator (the demo's, as run.py makes them)."""
    values = {k: v for k, v in demo_config(emulator).items() if k.startswith("ENTRA_")}
    values.update(extra)
    return values


@pytest.fixture
def entra(settings: Any, entra_emulator: EntraEmulator) -> EntraEmulator:
    """The project's settings pointed at this test's emulator; caches emptied."""
    for name, value in entra_settings(entra_emulator).items():
        setattr(settings, name, value)
    settings.ENTRA_ROLE_GROUPS = {"Admin": "Demo admins"}
    settings.ENTRA_STAFF_ROLES = ["Admin"]
    for cache in caches.all():
        cache.clear()
    return entra_emulator


class Browser:
    """One browser: Django's test client for the app, BrowserlessUser for the IdP."""

    def __init__(self, emulator: EntraEmulator, idp: BrowserlessUser | None = None):
        self.emulator = emulator
        self.client = Client()
        self.idp = idp or BrowserlessUser()

    def begin(self, path: str = "/login") -> str:
        response = self.client.get(path)
        assert response.status_code == 302, response.content[:500]
        location = response.headers["Location"]
        if location.startswith("/login"):  # a page's redirect to sign in: follow it
            return self.begin(location)
        return location

    def authorize(self, auth_uri: str, user: str = ADELE, consent: bool = True) -> dict[str, str]:
        return self.idp.authorize(auth_uri, user=user, consent=consent)

    def callback(self, params: dict[str, str] | str) -> Any:
        query = params if isinstance(params, str) else urlencode(params)
        return self.client.get(f"/get_token?{query}")

    def sign_in(self, user: str = ADELE, path: str = "/login") -> Any:
        done = self.callback(self.authorize(self.begin(path), user=user))
        return done

    def who(self) -> dict[str, Any]:
        return self.client.get("/").json()

    def session(self) -> Any:
        return self.client.session


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def browser(entra: EntraEmulator) -> Browser:
    return Browser(entra)
