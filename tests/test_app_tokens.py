"""The app's own tokens (``AppTokenProvider``) against the local Entra ID with the real MSAL:
client credentials with a secret, one token request for many callers (threads and coroutines),
renewal, Retry-After, Entra's refusals in the library's words, and the httpx/requests auths.

The certificate, federated and managed-identity credentials have their own tests
(``tests/test_app_credentials.py``).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jwt
import pytest
import requests

from entra_auth.client.app_tokens import AppTokenProvider
from entra_auth.config import EntraConfig
from entra_auth.emulator import EntraEmulator, Fault
from entra_auth.errors import AppTokenError, ConfigurationError, ProviderUnavailableError

from .helpers import API, DAEMON, secret_of

API_DEFAULT = f"api://{API}/.default"
POLLS = 2000  # bounded waits for the held token request (each 10 ms at most)


def daemon_config(emulator: EntraEmulator, **settings: Any) -> EntraConfig:
    env = emulator.env_for(DAEMON)
    env.update(settings)
    return EntraConfig.from_mapping({k: v for k, v in env.items() if v is not None})


@pytest.fixture
def provider(entra_emulator: EntraEmulator) -> AppTokenProvider:
    return AppTokenProvider(daemon_config(entra_emulator))


def claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def test_a_daemon_gets_a_token_carrying_its_app_roles(
    entra_emulator: EntraEmulator, provider: AppTokenProvider
) -> None:
    entra_emulator.reset_counts()
    token = provider.get_token(API_DEFAULT)
    body = claims(token)
    assert body["roles"] == ["Data.Read.All"]
    assert body["azp" if body.get("ver") == "2.0" else "appid"] == DAEMON
    assert "scp" not in body
    assert provider.get_token([API_DEFAULT]) == token  # from memory
    assert entra_emulator.request_counts()["token"] == 1


def test_a_hundred_threads_make_one_token_request(
    entra_emulator: EntraEmulator, provider: AppTokenProvider
) -> None:
    """The first caller's request is held at the token endpoint until every thread has been
    started and has passed the barrier; released, one POST has served them all."""
    provider.get_token("https://graph.microsoft.com/.default")  # discovery done: one POST later
    entra_emulator.reset_counts()
    entra_emulator.inject_fault("token", Fault("slow", delay=110))
    start = threading.Barrier(101)

    def call(_: int) -> str:
        start.wait()
        return provider.get_token(API_DEFAULT)

    with ThreadPoolExecutor(max_workers=100) as pool:
        futures = [pool.submit(call, i) for i in range(100)]
        start.wait()
        wait_for_token_requests(entra_emulator, 1)
        entra_emulator.state.faults.release_held()
        tokens = {f.result(timeout=60) for f in futures}
    entra_emulator.clear_faults()
    assert len(tokens) == 1
    assert entra_emulator.request_counts()["token"] == 1


def test_a_hundred_coroutines_make_one_token_request(
    entra_emulator: EntraEmulator, provider: AppTokenProvider
) -> None:
    provider.get_token("https://graph.microsoft.com/.default")
    entra_emulator.reset_counts()
    entra_emulator.inject_fault("token", Fault("slow", delay=110))

    async def scenario() -> set[str]:
        calls = [asyncio.create_task(provider.get_token_async(API_DEFAULT)) for _ in range(100)]
        for _ in range(POLLS):  # bounded: until the one request is held
            if entra_emulator.request_counts().get("token", 0) >= 1:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)  # every task has run up to its wait
        assert not any(c.done() for c in calls)
        entra_emulator.state.faults.release_held()
        return set(await asyncio.gather(*calls))

    tokens = asyncio.run(scenario())
    entra_emulator.clear_faults()
    assert len(tokens) == 1
    assert entra_emulator.request_counts()["token"] == 1


def wait_for_token_requests(emulator: EntraEmulator, count: int) -> None:
    for _ in range(POLLS):
        if emulator.request_counts().get("token", 0) >= count:
            return
        threading.Event().wait(0.01)
    raise AssertionError("the token request never reached the local Entra ID")


def test_a_token_near_its_expiry_is_renewed(
    entra_emulator: EntraEmulator, provider: AppTokenProvider
) -> None:
    """Under five minutes left (here every token: 90 s), each use asks again, as MSAL does; a
    token with an hour left is served from memory."""
    entra_emulator.settings.access_token_lifetime = (90, 90)
    entra_emulator.reset_counts()
    first = provider.get_token(API_DEFAULT)
    second = provider.get_token(API_DEFAULT)
    assert first != second
    assert entra_emulator.request_counts()["token"] == 2


def test_retry_after_is_honoured(entra_emulator: EntraEmulator) -> None:
    """A 429 with Retry-After: no request before it has passed (the same error at once), then
    the token."""
    now = [1_000_000.0]
    provider = AppTokenProvider(daemon_config(entra_emulator), clock=lambda: now[0])
    provider.get_token("https://graph.microsoft.com/.default")  # discovery read
    entra_emulator.reset_counts()
    entra_emulator.inject_fault("token", Fault("status", status=429, retry_after=30))
    with pytest.raises(ProviderUnavailableError) as first:
        provider.get_token(API_DEFAULT)
    assert first.value.retry_after == 30
    assert first.value.step == "app token"
    now[0] += 29
    with pytest.raises(ProviderUnavailableError):
        provider.get_token(API_DEFAULT)
    assert entra_emulator.request_counts()["token"] == 1  # the second asked nobody
    entra_emulator.clear_faults()
    now[0] += 2
    assert claims(provider.get_token(API_DEFAULT))["roles"] == ["Data.Read.All"]
    assert entra_emulator.request_counts()["token"] == 2


def test_a_failed_renewal_serves_the_token_while_it_is_valid(
    entra_emulator: EntraEmulator, provider: AppTokenProvider
) -> None:
    """Tokens of 90 s: each use asks again; with the token endpoint down, the one held is
    served until it expires, and past its expiry the outage is the caller's to hear."""
    now = [1_000_000.0]
    provider = AppTokenProvider(daemon_config(entra_emulator), clock=lambda: now[0])
    entra_emulator.settings.access_token_lifetime = (90, 90)
    token = provider.get_token(API_DEFAULT)
    entra_emulator.inject_fault("token", Fault("status", status=503))
    assert provider.get_token(API_DEFAULT) == token
    now[0] += 91
    with pytest.raises(ProviderUnavailableError):
        provider.get_token(API_DEFAULT)
    entra_emulator.clear_faults()


@pytest.mark.parametrize(
    ("settings", "code"),
    [
        ({"ENTRA_CLIENT_SECRET": "Dmn8Q~not-the-secret"}, 7000215),
        ({"ENTRA_CLIENT_ID": "0b6e7a0e-1111-4f4f-9a9a-123456789abc"}, 700016),
    ],
    ids=["wrong-secret", "unknown-app"],
)
def test_entras_refusals_in_the_librarys_words(
    entra_emulator: EntraEmulator, settings: dict[str, str], code: int
) -> None:
    provider = AppTokenProvider(daemon_config(entra_emulator, **settings))
    with pytest.raises(AppTokenError) as refused:
        provider.get_token(API_DEFAULT)
    assert refused.value.aadsts == code
    assert refused.value.remedy  # the catalogue's fix
    assert settings.get("ENTRA_CLIENT_SECRET", "Dmn8Q~local-daemon") not in str(refused.value)


def test_an_expired_secret_is_named(entra_emulator: EntraEmulator) -> None:
    from .helpers import WEB

    env = entra_emulator.env_for(WEB)
    env["ENTRA_CLIENT_SECRET"] = secret_of(entra_emulator, WEB, index=1)  # the expired one
    provider = AppTokenProvider(EntraConfig.from_mapping(env))
    with pytest.raises(AppTokenError) as refused:
        provider.get_token("https://graph.microsoft.com/.default")
    assert refused.value.aadsts == 7000222


@pytest.mark.parametrize(
    "scopes", ["api://x/read", ["api://x/.default", "https://graph.microsoft.com/.default"], []]
)
def test_a_scope_an_app_token_cannot_have_is_said_before_any_request(
    entra_emulator: EntraEmulator, provider: AppTokenProvider, scopes: Any
) -> None:
    entra_emulator.reset_counts()
    with pytest.raises(ConfigurationError, match=r"/\.default"):
        provider.get_token(scopes)
    assert entra_emulator.request_counts().get("token", 0) == 0


def test_several_workers_share_one_encrypted_cache(
    entra_emulator: EntraEmulator, redis_url: str
) -> None:
    """Two providers (two workers) over one Redis entry: the second asks nobody; the entry
    holds no token in the clear."""
    import redis
    from cryptography.fernet import Fernet

    from entra_auth.client.redis_cache import RedisTokenCacheStore
    from entra_auth.client.token_cache import TokenCacheCipher

    cipher = TokenCacheCipher([Fernet.generate_key().decode()])
    client = redis.Redis.from_url(redis_url)

    def store() -> RedisTokenCacheStore:
        return RedisTokenCacheStore(client, f"entra:apptokens:{DAEMON}", cipher, ttl=3600)

    entra_emulator.reset_counts()
    one = AppTokenProvider(daemon_config(entra_emulator), cache_store=store())
    two = AppTokenProvider(daemon_config(entra_emulator), cache_store=store())
    token = one.get_token(API_DEFAULT)
    assert two.get_token(API_DEFAULT) == token
    assert entra_emulator.request_counts()["token"] == 1
    assert token.encode() not in (client.get(f"entra:apptokens:{DAEMON}") or b"")


# -- on HTTP clients -------------------------------------------------------------------------------
@pytest.fixture
def protected_api(entra_emulator: EntraEmulator) -> Any:
    """The demo API (FastAPI) in-process: ``/all-data`` takes the app role Data.Read.All."""
    from examples.fastapi_demo.app import create_app

    return create_app(entra_emulator.env_for(API) | {"ENTRA_CLIENT_SECRET": ""})


def test_httpx_clients_send_the_apps_token(provider: AppTokenProvider, protected_api: Any) -> None:
    auth = provider.httpx_auth(f"api://{API}/.default")

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=protected_api)
        async with httpx.AsyncClient(transport=transport, base_url="http://api", auth=auth) as c:
            return await c.get("/all-data")

    answer = asyncio.run(call())
    assert answer.status_code == 200, answer.text
    assert answer.json()["app_only"] is True
    without = asyncio.run(_get_without_auth(protected_api))
    assert without.status_code == 401


async def _get_without_auth(app: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await client.get("/all-data")


def test_requests_sessions_send_the_apps_token(
    entra_emulator: EntraEmulator, provider: AppTokenProvider
) -> None:
    session = requests.Session()
    session.verify, session.trust_env = str(entra_emulator.ca_path), False
    session.auth = provider.requests_auth("https://graph.microsoft.com/.default")
    users = session.get(f"{entra_emulator.graph_base}/v1.0/users", timeout=10)
    assert users.status_code == 200, users.text
    assert any(u["userPrincipalName"].startswith("adele@") for u in users.json()["value"])
