"""Several instances behave as one with Redis: shared sessions and token caches, Redis faults,
on both web adapters (``web_adapter``).

The demo runs as two separate processes on two ports sharing one real Redis, driven over real
HTTP (the Flask demo as ``make demo`` runs it; the FastAPI demo under real uvicorn); the IdP is
the test's local Entra ID, its pages walked by BrowserlessUser.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import redis
import requests
from cryptography.fernet import Fernet
from werkzeug.test import TestResponse

from entra_auth.emulator import EntraEmulator
from entra_auth.testing.driver import BrowserlessUser

from .helpers import (
    HANG_GUARD,
    MEGAN,
    WEB,
    DemoProcess,
    UvicornProcess,
    demo_config,
    redis_demo_settings,
    secret_of,
    within,
)
from .redis_support import RedisServer
from .security.web import Web, demo_app

ROOT = Path(__file__).resolve().parents[1]
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.")


@dataclass
class Instance:
    url: str
    process: DemoProcess | UvicornProcess


# The load balancer's address: the one redirect URI registered for every instance. The test
# plays the load balancer (it sends each request to A or B itself), so nothing listens there:
# the browserless user hands the authorization response back to whichever instance the test
# picks, and never fetches the redirect URI.
PUBLIC = "http://localhost"
FASTAPI_DEMO = "examples.fastapi_demo.app:app"

# Not Django: its sessions and token caches scale out through its own SESSION_ENGINE and CACHES,
# not the Redis stores these tests stop and freeze.
pytestmark = pytest.mark.parametrize("web_adapter", ["flask", "fastapi"])


@pytest.fixture
def two_instances(
    entra_emulator: EntraEmulator, redis_url: str, tmp_path: Path, web_adapter: str
) -> Iterator[tuple[Instance, Instance]]:
    entra_emulator.add_redirect_uri(WEB, f"{PUBLIC}/get_token")
    entra_emulator.add_redirect_uri(WEB, f"{PUBLIC}/")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_", "REDIS_"))}
    env.update(
        {
            "DEMO_PORT": "0",  # each instance listens where the system says, and prints it
            "ENTRA_AUTHORITY": entra_emulator.authority,
            "ENTRA_CLIENT_ID": WEB,
            "ENTRA_CLIENT_SECRET": secret_of(entra_emulator, WEB),
            "ENTRA_CA_BUNDLE": str(entra_emulator.ca_path),
            "ENTRA_REDIRECT_URI": f"{PUBLIC}/get_token",
            "ENTRA_API_AUDIENCE": "a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c",
            "REDIS_URL": redis_url,
            "ENTRA_TOKEN_CACHE_KEY": Fernet.generate_key().decode(),
            "FLASK_SECRET_KEY": "shared-by-every-instance-" + "k" * 32,
            "SECRET_KEY": "shared-by-every-instance-" + "k" * 32,
            "ENTRA_SESSION_DIR": str(tmp_path / "unused"),  # Redis holds every session
        }
    )
    started: list[DemoProcess | UvicornProcess] = []
    try:
        for _ in range(2):
            if web_adapter == "fastapi":
                started.append(UvicornProcess(FASTAPI_DEMO, env))
            else:
                started.append(DemoProcess(env, cwd=ROOT))
        a, b = (Instance(process.wait_ready(), process) for process in started)
        assert a.url != b.url
        yield a, b
    finally:
        codes = [process.stop() for process in started]  # every one stopped, even on failure
    # Stopped by SIGTERM within the bound, not killed: the Flask demo exits 0, uvicorn
    # re-raises the signal after its shutdown.
    expected = -signal.SIGTERM if web_adapter == "fastapi" else 0
    for process, code in zip(started, codes, strict=True):
        assert code == expected, process.output
        assert "Traceback" not in process.output, process.output
    unused = tmp_path / "unused"  # no session was kept in files (by either store's naming)
    assert not unused.exists() or not [p for p in unused.rglob("*") if p.is_file()]


def browser() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def signed_in_name(response: requests.Response) -> str | None:
    found = re.search(r'id="display-name">([^<]+)<', response.text)
    return found.group(1) if found else None


def test_two_instances_behave_as_one(
    two_instances: tuple[Instance, Instance], entra_emulator: EntraEmulator, redis_url: str
) -> None:
    a, b = two_instances
    entra_emulator.settings.access_token_lifetime = (90, 90)  # every use refreshes
    entra_emulator.settings.refresh_token_rotation = "strict"  # a lost newer RT would show
    user = browser()

    # Sign-in starts on A, the callback lands on B.
    login = user.get(f"{a.url}/login", allow_redirects=False)
    answer = BrowserlessUser().authorize(login.headers["Location"], user=MEGAN)
    callback = user.get(f"{b.url}/get_token", params=answer, allow_redirects=False)
    assert callback.status_code == 302, callback.text

    # A refreshes the token; B uses what A stored (strict rotation: B's would be refused).
    before = entra_emulator.request_counts()["token"]
    assert signed_in_name(user.get(f"{a.url}/profile")) == "Megan Bowen"
    assert signed_in_name(user.get(f"{b.url}/profile")) == "Megan Bowen"
    assert entra_emulator.request_counts()["token"] == before + 2  # one refresh each

    # Concurrent refreshes on both instances lose no refresh token.
    with ThreadPoolExecutor(max_workers=8) as pool:
        urls = [f"{(a, b)[i % 2].url}/profile" for i in range(12)]
        names = list(pool.map(lambda url: signed_in_name(user.get(url)), urls))
    assert names == ["Megan Bowen"] * 12
    assert signed_in_name(user.get(f"{a.url}/profile")) == "Megan Bowen"

    # What Redis holds: no plaintext token, no refresh token handle.
    client = redis.Redis.from_url(redis_url)
    handles = list(entra_emulator.state.refresh_grants)
    values = [client.get(k) or b"" for k in client.keys("*") if client.type(k) == b"string"]
    assert values
    for value in values:
        # No JWT (access or ID token): header.payload. in base64url. Not a bare b"eyJ", which
        # Fernet's random base64url output holds by chance, now and then.
        assert JWT.search(value) is None, value
        assert not any(h.encode() in value for h in handles)

    # Sign-out on B ends the session on A.
    assert user.post(f"{b.url}/logout", allow_redirects=False).status_code == 302
    gone = user.get(f"{a.url}/profile", allow_redirects=False)
    assert gone.status_code == 302
    assert gone.headers["Location"] == "/login?next=/profile"
    assert client.keys("entra:tokens:*") == []


def test_a_tampered_token_cache_is_refused(
    two_instances: tuple[Instance, Instance], redis_url: str
) -> None:
    a, _ = two_instances
    user = browser()
    login = user.get(f"{a.url}/login", allow_redirects=False)
    answer = BrowserlessUser().authorize(login.headers["Location"], user=MEGAN)
    assert user.get(f"{a.url}/get_token", params=answer, allow_redirects=False).status_code == 302
    client = redis.Redis.from_url(redis_url)
    (key,) = client.keys("entra:tokens:*")
    blob = bytearray(client.get(key) or b"")
    blob[50] ^= 0x01
    client.set(key, bytes(blob))
    response = user.get(f"{a.url}/profile", allow_redirects=False)
    assert response.status_code == 302  # refused: signed in again, never used, never a 500
    assert "/oauth2/v2.0/authorize?" in response.headers["Location"]


# Where each adapter's Redis store keeps session records (Flask-Session's prefix, ours).
SESSION_RECORDS = {"flask": "session:*", "fastapi": "entra:session:*"}


def signed_in_web(web_adapter: str, emulator: EntraEmulator, redis_url: str) -> Web:
    """The demo (sessions and token caches in Redis) in a test client, Megan signed in."""
    web = Web(emulator, demo_app(web_adapter, redis_demo_settings(emulator, redis_url)))
    assert web.sign_in(user=MEGAN).status_code == 302
    assert web.client.get("/profile").status_code == 200
    return web


def assert_store_unavailable_page(down: TestResponse, path: str) -> None:
    assert down.status_code == 503, (path, down.status_code)
    text = down.get_data(as_text=True)
    assert "session store is unavailable" in text
    assert "Traceback" not in text
    assert "Redis" not in text
    assert down.headers["Retry-After"]


def test_redis_killed_mid_session_then_back(
    entra_emulator: EntraEmulator, tmp_path: Path, web_adapter: str
) -> None:
    """The session store stops: every page (signed in or not, the sign-in too) answers 503
    with Retry-After and the store-down page, never a 500 or a traceback; once it is back
    pages answer and sign-in works, without a restart."""
    server = RedisServer(tmp_path).start()
    try:
        web = signed_in_web(web_adapter, entra_emulator, server.url)
        server.stop()
        for path in ("/profile", "/", "/login"):
            # Refused connections fail at once; the frozen-Redis test below is where the
            # client's timeouts are what bound the wait.
            down = within(HANG_GUARD, partial(web.client.get, path))
            assert_store_unavailable_page(down, path)
        server.start()
        assert web.client.get("/").status_code == 200  # recovered without a restart
        assert web.sign_in().status_code == 302  # signing in works again
        assert web.who() == "Megan Bowen"  # (still signed in at the IdP: single sign-on)
    finally:
        server.stop()


def test_a_frozen_redis_costs_a_request_a_bounded_wait(
    entra_emulator: EntraEmulator, tmp_path: Path, web_adapter: str
) -> None:
    """A Redis that accepts connections and never answers (SIGSTOP): without the client's
    socket timeouts every request would hang; with them it gets the 503 page."""
    server = RedisServer(tmp_path).start()
    try:
        web = signed_in_web(web_adapter, entra_emulator, server.url)
        server.freeze()
        try:
            down = within(HANG_GUARD, partial(web.client.get, "/profile"))
        finally:
            server.thaw()
        assert_store_unavailable_page(down, "/profile")
        assert web.client.get("/profile").status_code == 200  # the same session, once it answers
    finally:
        server.stop()


def test_redis_without_an_encryption_key_fails_at_start(
    entra_emulator: EntraEmulator, redis_url: str, web_adapter: str
) -> None:
    from entra_auth.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="ENTRA_TOKEN_CACHE_KEY"):
        demo_app(web_adapter, demo_config(entra_emulator, REDIS_URL=redis_url))


def test_entries_slide_and_go_with_the_session(
    entra_emulator: EntraEmulator, redis_url: str, web_adapter: str
) -> None:
    web = signed_in_web(web_adapter, entra_emulator, redis_url)
    if web_adapter == "flask":
        lifetime = int(web.app.permanent_session_lifetime.total_seconds())
    else:
        lifetime = web.app.auth.session_lifetime
    store = redis.Redis.from_url(redis_url)
    (session_key,) = store.keys(SESSION_RECORDS[web_adapter])
    (cache_key,) = store.keys("entra:tokens:*")
    assert 0 < store.ttl(cache_key) <= lifetime
    store.expire(session_key, 10)
    store.expire(cache_key, 10)
    assert web.client.get("/profile").status_code == 200
    assert store.ttl(session_key) > lifetime - 60  # slid back on use
    assert store.ttl(cache_key) > lifetime - 60
    web.client.post("/logout")
    assert store.keys("entra:tokens:*") == []
    assert store.keys(SESSION_RECORDS[web_adapter]) == []
