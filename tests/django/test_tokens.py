"""The user's tokens on Django: incremental consent, the MSAL cache in Django's cache framework
(encrypted, nothing in the clear, a key required when the cache is shared), silent refresh, the
provider down (503 + Retry-After), and the settings refused at start with what to set."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet
from django.core.cache import caches
from django.test import override_settings

from entra_auth.emulator import EntraEmulator, Fault
from entra_auth.errors import ConfigurationError, MissingSettingError
from entra_auth.integrations.django.checks import check_settings
from entra_auth.integrations.django.conf import get_auth

from ..helpers import ADELE
from .conftest import Browser, query_of, text

pytestmark = pytest.mark.django_db


def cache_values() -> list[bytes]:
    """Every value the default LocMemCache holds, as stored (pickled)."""
    return list(caches["default"]._cache.values())


def test_incremental_consent_round_trip(browser: Browser) -> None:
    browser.sign_in()
    ask = browser.client.get("/needs-scope")  # no token for the API yet: consent first
    assert ask.status_code == 302
    location = ask.headers["Location"]
    assert "/oauth2/v2.0/authorize?" in location
    assert "access_as_user" in query_of(location)["scope"]
    back = browser.callback(browser.authorize(location))
    assert back.status_code == 302
    assert back.headers["Location"] == "/needs-scope"
    page = browser.client.get("/needs-scope")
    assert page.status_code == 200
    assert page.json()["length"] > 100
    assert browser.client.get("/needs-scope").status_code == 200  # silent from now on


def test_consent_declined_is_the_librarys_page(browser: Browser) -> None:
    browser.sign_in()
    location = browser.client.get("/needs-scope").headers["Location"]
    answer = browser.callback(browser.authorize(location, consent=False))
    assert answer.status_code == 400
    assert "cancelled" in text(answer)


def test_the_token_cache_is_encrypted_in_the_cache_backend(browser: Browser) -> None:
    browser.sign_in()
    token = browser.client.get("/token").json()["token"]
    stored = b"".join(cache_values())
    assert token.encode() not in stored
    for clear in (b"refresh_token", b"RefreshToken", b"secret", b"AccessToken", ADELE.encode()):
        assert clear not in stored
    # What is there is the envelope, readable with the key only.
    entry = next(v for k, v in caches["default"]._cache.items() if "entra:tokens:" in k)
    plaintext = get_auth().cipher.decrypt(pickle.loads(entry))  # noqa: S301 - our own test cache
    assert plaintext is not None
    assert token in plaintext


def test_a_due_token_is_refreshed_silently(browser: Browser, entra: EntraEmulator) -> None:
    entra.settings.access_token_lifetime = (90, 90)  # under MSAL's 5-minute window: always due
    browser.sign_in()
    entra.reset_counts()
    first = browser.client.get("/token").json()["token"]
    second = browser.client.get("/token").json()["token"]
    assert first != second
    assert entra.request_counts()["token"] == 2
    assert browser.client.get("/graph-me").json()["displayName"] == "Adele Vance"


def test_a_revoked_grant_sends_the_user_to_sign_in_and_back(
    browser: Browser, entra: EntraEmulator
) -> None:
    entra.settings.access_token_lifetime = (90, 90)
    browser.sign_in()
    entra.revoke_refresh_tokens(ADELE)
    again = browser.client.get("/token")
    assert again.status_code == 302
    assert "/oauth2/v2.0/authorize?" in again.headers["Location"]
    back = browser.callback(browser.authorize(again.headers["Location"]))
    assert back.headers["Location"] == "/token"
    assert browser.client.get("/token").status_code == 200


def test_the_provider_down_is_a_503_page_and_nothing_is_lost(
    browser: Browser, entra: EntraEmulator
) -> None:
    entra.settings.access_token_lifetime = (90, 90)
    browser.sign_in()
    entra.inject_fault("token", Fault("status", status=503))
    down = browser.client.get("/token")
    assert down.status_code == 503
    assert down.headers["Retry-After"].isdigit()
    assert "unavailable" in text(down)
    assert 'href="/token"' in text(down)  # try again: the same page
    as_api = browser.client.get("/token", headers={"Accept": "application/json"})
    assert as_api.status_code == 503
    assert as_api.json()["error"] == "temporarily_unavailable"
    entra.clear_faults()
    assert browser.client.get("/token").status_code == 200  # still signed in, no restart


def test_the_provider_down_at_sign_in_start(browser: Browser, entra: EntraEmulator) -> None:
    entra.inject_fault("discovery", Fault("status", status=503))
    down = browser.client.get("/login?next=/page")
    assert down.status_code == 503
    assert "Retry-After" in down.headers
    entra.clear_faults()
    assert browser.client.get("/login?next=/page").status_code == 302


def test_the_provider_down_at_the_callback(browser: Browser, entra: EntraEmulator) -> None:
    params = browser.authorize(browser.begin("/page"))
    entra.inject_fault("token", Fault("status", status=503))
    down = browser.callback(params)
    assert down.status_code == 503
    assert 'href="/login?next=/page"' in text(down)
    assert browser.who()["authenticated"] is False


# -- shared caches: a key, or no start ------------------------------------------------------------
def test_a_shared_cache_without_a_key_is_refused_at_start(
    entra: EntraEmulator, settings: Any, tmp_path: Path
) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }
    with pytest.raises(ConfigurationError) as refused:
        get_auth()
    assert "ENTRA_TOKEN_CACHE_KEY is not set" in refused.value.message
    assert "FileBasedCache" in refused.value.message
    assert "Fernet.generate_key()" in (refused.value.remedy or "")
    [error] = check_settings()
    assert error.id == "entra_auth.E001"


def test_a_file_cache_with_a_key_holds_nothing_in_the_clear(
    entra: EntraEmulator, settings: Any, tmp_path: Path
) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }
    settings.ENTRA_TOKEN_CACHE_KEY = Fernet.generate_key().decode()
    browser = Browser(entra)
    browser.sign_in()
    token = browser.client.get("/token").json()["token"]
    files = b"".join(p.read_bytes() for p in (tmp_path / "cache").iterdir())
    assert files
    assert token.encode() not in files
    assert b"refresh_token" not in files
    assert check_settings() == []  # no warning: several processes can share it


def test_redis_via_djangos_own_backend(entra: EntraEmulator, settings: Any, redis_url: str) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
        }
    }
    settings.ENTRA_TOKEN_CACHE_KEY = (
        f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    )
    browser = Browser(entra)
    browser.sign_in()
    token = browser.client.get("/token").json()["token"]
    store = redis.Redis.from_url(redis_url)
    keys = [k for k in store.keys("*") if b"entra:tokens:" in k]
    assert len(keys) == 1
    assert not any(token.encode() in (store.get(k) or b"") for k in store.keys("*"))
    # Another instance (its own runtime, the same settings) reads the same user's tokens.
    from entra_auth.integrations.django import conf

    conf.reset()
    assert browser.client.get("/token").status_code == 200
    browser.client.post("/logout")
    assert [k for k in store.keys("*") if b"entra:tokens:" in k] == []


def test_a_key_written_for_another_session_is_not_used(
    browser: Browser, entra: EntraEmulator
) -> None:
    """The envelope names its entry's key: a cache copied under another session's key (a
    store writer) is discarded there, and that user signs in again."""
    browser.sign_in()
    other = Browser(entra)
    other.sign_in()
    cache = caches["default"]
    mine = f"entra:tokens:{browser.session()['entra_cache_id']}"
    theirs = f"entra:tokens:{other.session()['entra_cache_id']}"
    cache.set(theirs, cache.get(mine))
    answer = other.client.get("/token")
    assert answer.status_code == 302  # no tokens: through the sign-in page again
    assert cache.get(theirs) is None


# -- settings refused with what to set ------------------------------------------------------------
def test_missing_settings_are_named_with_where_they_were_looked_for(settings: Any) -> None:
    for name in [n for n in dir(settings) if n.startswith("ENTRA_")]:
        delattr(settings, name)
    with pytest.raises(MissingSettingError) as missing:
        get_auth()
    assert "ENTRA_CLIENT_ID" in missing.value.message
    assert "settings.py and the environment" in missing.value.message


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            {"CACHES": {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}},
            "DummyCache",
        ),
        ({"SESSION_ENGINE": "django.contrib.sessions.backends.signed_cookies"}, "server-side"),
        ({"ENTRA_ROLE_GROUPS": ["Admin"]}, "ENTRA_ROLE_GROUPS"),
        ({"ENTRA_STAFF_ROLES": 3}, "ENTRA_STAFF_ROLES"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
    ],
)
def test_unusable_settings_stop_the_start(
    entra: EntraEmulator, change: dict[str, Any], words: str
) -> None:
    with override_settings(**change):
        with pytest.raises(ConfigurationError) as refused:
            get_auth()
        assert words in f"{refused.value.message} {refused.value.remedy}"


def test_the_checks_name_what_is_missing_from_the_project(
    entra: EntraEmulator, settings: Any
) -> None:
    assert [p.id for p in check_settings()] == ["entra_auth.W001"]  # LocMemCache: one process
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "entra_auth" not in m]
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    assert [p.id for p in check_settings()] == [
        "entra_auth.E002",
        "entra_auth.E004",
        "entra_auth.W001",
    ]
    settings.ENTRA_REDIRECT_URI = "http://localhost:5000/auth/callback"
    assert "entra_auth.E006" in [p.id for p in check_settings()]


def test_the_checks_warn_of_middleware_between_authentication_and_ours(
    entra: EntraEmulator, settings: Any
) -> None:
    """A middleware between AuthenticationMiddleware and EntraAuthMiddleware sees request.user
    before the sign-in is checked against the session's seal: said at start."""
    ours = next(m for m in settings.MIDDLEWARE if m.endswith("EntraAuthMiddleware"))
    settings.MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",  # sees request.user unchecked
        ours,
    ]
    found = {p.id: p for p in check_settings()}
    assert "entra_auth.W002" in found
    assert "MessageMiddleware" in found["entra_auth.W002"].msg
    settings.MIDDLEWARE = [*settings.MIDDLEWARE[:2], ours, settings.MIDDLEWARE[2]]
    assert "entra_auth.W002" not in {p.id for p in check_settings()}
