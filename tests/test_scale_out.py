"""Several instances behave as one with Redis: shared sessions and token caches, Redis faults.

The demo runs as two separate processes on two ports sharing one real Redis, driven over real
HTTP; the IdP is the test's local Entra ID, its pages walked by BrowserlessUser.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import redis
import requests
from cryptography.fernet import Fernet
from examples.demo.app import create_app
from flask import Flask
from werkzeug.test import TestResponse

from entra_auth.emulator import EntraEmulator
from entra_auth.testing.driver import BrowserlessUser

from .helpers import (
    HANG_GUARD,
    MEGAN,
    WEB,
    DemoProcess,
    demo_config,
    redis_demo_app,
    secret_of,
    within,
)
from .redis_support import RedisServer

ROOT = Path(__file__).resolve().parents[1]
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.")


@dataclass
class Instance:
    url: str
    demo: DemoProcess


# The load balancer's address: the one redirect URI registered for every instance. The test
# plays the load balancer (it sends each request to A or B itself), so nothing listens there:
# the browserless user hands the authorization response back to whichever instance the test
# picks, and never fetches the redirect URI.
PUBLIC = "http://localhost"


@pytest.fixture
def two_instances(
    entra_emulator: EntraEmulator, redis_url: str, tmp_path: Path
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
        }
    )
    started: list[DemoProcess] = []
    try:
        for _ in range(2):
            started.append(DemoProcess(env, cwd=ROOT))
        a, b = (Instance(demo.wait_ready(), demo) for demo in started)
        assert a.url != b.url
        yield a, b
    finally:
        codes = [demo.stop() for demo in started]  # every one stopped, even when one fails
    for demo, code in zip(started, codes, strict=True):
        assert code == 0, demo.output  # stopped by SIGTERM within the bound, not killed
        assert "Traceback" not in demo.output, demo.output


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


def demo_app_on(server: RedisServer, emulator: EntraEmulator) -> Flask:
    return redis_demo_app(emulator, server.url)


def assert_store_unavailable_page(down: TestResponse, path: str) -> None:
    assert down.status_code == 503, (path, down.status_code)
    text = down.get_data(as_text=True)
    assert "session store is unavailable" in text
    assert "Traceback" not in text
    assert "Redis" not in text
    assert down.headers["Retry-After"]


def test_redis_killed_mid_session_then_back(entra_emulator: EntraEmulator, tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        client = demo_app_on(server, entra_emulator).test_client()
        auth_uri = client.get("/login").headers["Location"]
        answer = BrowserlessUser().authorize(auth_uri, user=MEGAN)
        assert client.get("/get_token", query_string=answer).status_code == 302
        assert client.get("/profile").status_code == 200
        server.stop()
        for path in ("/profile", "/", "/login"):
            # Refused connections fail at once; the frozen-Redis test below is where the
            # client's timeouts are what bound the wait.
            down = within(HANG_GUARD, partial(client.get, path))
            assert_store_unavailable_page(down, path)
        server.start()
        back = client.get("/")
        assert back.status_code == 200  # recovered without a restart
    finally:
        server.stop()


def test_a_frozen_redis_costs_a_request_a_bounded_wait(
    entra_emulator: EntraEmulator, tmp_path: Path
) -> None:
    """A Redis that accepts connections and never answers (SIGSTOP): without the client's
    socket timeouts every request would hang; with them it gets the 503 page."""
    server = RedisServer(tmp_path).start()
    try:
        client = demo_app_on(server, entra_emulator).test_client()
        answer = BrowserlessUser().authorize(client.get("/login").headers["Location"], user=MEGAN)
        assert client.get("/get_token", query_string=answer).status_code == 302
        assert client.get("/profile").status_code == 200
        server.freeze()
        try:
            down = within(HANG_GUARD, partial(client.get, "/profile"))
        finally:
            server.thaw()
        assert_store_unavailable_page(down, "/profile")
        assert client.get("/profile").status_code == 200  # the same session, once it answers
    finally:
        server.stop()


def test_redis_without_an_encryption_key_fails_at_start(
    entra_emulator: EntraEmulator, redis_url: str
) -> None:
    from entra_auth.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="ENTRA_TOKEN_CACHE_KEY"):
        create_app(demo_config(entra_emulator, REDIS_URL=redis_url))


def test_entries_slide_and_go_with_the_session(
    entra_emulator: EntraEmulator, redis_url: str
) -> None:
    app = redis_demo_app(entra_emulator, redis_url)
    lifetime = int(app.permanent_session_lifetime.total_seconds())
    client = app.test_client()
    answer = BrowserlessUser().authorize(client.get("/login").headers["Location"], user=MEGAN)
    client.get("/get_token", query_string=answer)
    store = redis.Redis.from_url(redis_url)
    (session_key,) = store.keys("session:*")
    (cache_key,) = store.keys("entra:tokens:*")
    assert 0 < store.ttl(cache_key) <= lifetime
    store.expire(session_key, 10)
    store.expire(cache_key, 10)
    assert client.get("/profile").status_code == 200
    assert store.ttl(session_key) > lifetime - 60  # slid back on use
    assert store.ttl(cache_key) > lifetime - 60
    client.post("/logout")
    assert store.keys("entra:tokens:*") == []
    assert store.keys("session:*") == []
