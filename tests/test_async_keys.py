"""Issue 17, async all the way: ``AsyncJwksCache`` and ``validate_async`` against the local
Entra ID, over real httpx.

- Parity: the policy (backoff, last-known-good, one refetch per cooldown), the fault matrix
  and the untrustworthy documents run over both transports (the ``transport`` fixture: the
  sync ``JwksCache`` and ``AsyncJwksCache``), with the same fetches counted at the emulator and
  the same typed errors, field for field.
- Single-flight: 50 concurrent cold validations, one discovery and one key-set fetch.
- No request waits for a fetch its known key does not need: told by ordering (the key-set
  request has left, per httpx's event hooks; the emulator holds it), a ticker measuring the
  event loop's lag, and hang guards, never by a speed bound.
- An app that starts while the identity provider is down: no crash, 503 per request, recovery.
- Packaging: the core imports no httpx; ``AsyncJwksCache`` without it names the extra.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import certifi
import httpx
import pytest

from entra_auth import (
    AccessTokenValidator,
    AsyncJwksCache,
    ConfigurationError,
    EntraConfig,
    IdTokenValidator,
    InvalidTokenError,
    JwksCache,
    KeySetUnavailableError,
    Principal,
    SigningKey,
)
from entra_auth._http import FetchError
from entra_auth.bearer import bearer_token, challenge
from entra_auth.emulator import EntraEmulator, Fault
from entra_auth.emulator.seed import default_seed_path, seed_from_dict
from entra_auth.errors import EntraAuthError, ProviderUnavailableError
from entra_auth.keys import PublishedKeys

from .helpers import ADELE, API, API_URI, CONTOSO, FABRIKAM, WEB, emulator_config
from .security.minting import Mint

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

T = TypeVar("T")
TIMEOUT = 0.5  # ENTRA_HTTP_TIMEOUT in the fault matrix
GUARD = 30.0  # a hang guard: far above any timeout here, far below a hang fault's hold
HOLD = 20.0  # how long a hang fault holds the key-set request at the emulator


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    """A monotonic clock the test moves by hand (both caches take ``clock=``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the two transports, driven alike -------------------------------------------------------------
class Transport:
    """The sync cache: calls as they are."""

    name = "sync"

    def cache(self, config: EntraConfig, **options: Any) -> PublishedKeys:
        return JwksCache(config, **options)

    def load(self, cache: Any) -> None:
        cache.load()

    def get(self, cache: Any, kid: str) -> SigningKey:
        return cache.get(kid)  # type: ignore[no-any-return]

    def validate(self, validator: AccessTokenValidator, token: str, **kw: Any) -> Principal:
        return validator.validate(token, **kw)

    def idle(self, cache: Any) -> None:
        """Let a refresh started in the background end (the sync cache has none)."""

    def close(self) -> None:
        pass


class AsyncTransport(Transport):
    """The async cache, each call run to its end on one event loop of the test's own."""

    name = "async"

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.caches: list[AsyncJwksCache] = []

    def run(self, call: Awaitable[T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(call, GUARD))

    def cache(self, config: EntraConfig, **options: Any) -> PublishedKeys:
        cache = AsyncJwksCache(config, **options)
        self.caches.append(cache)
        return cache

    def load(self, cache: Any) -> None:
        self.run(cache.load())

    def get(self, cache: Any, kid: str) -> SigningKey:
        return self.run(cache.get(kid))  # type: ignore[no-any-return]

    def validate(self, validator: AccessTokenValidator, token: str, **kw: Any) -> Principal:
        return self.run(validator.validate_async(token, **kw))

    def idle(self, cache: Any) -> None:
        async def ended() -> None:
            task = cache._flight.current()
            if task is not None:
                await asyncio.wait((task,))

        self.run(ended())

    def close(self) -> None:
        for cache in self.caches:
            self.run(cache.aclose())
        self.loop.close()


@pytest.fixture(params=["sync", "async"])
def transport(request: pytest.FixtureRequest) -> Iterator[Transport]:
    driver = AsyncTransport() if request.param == "async" else Transport()
    yield driver
    driver.close()


@pytest.fixture
def mint(entra_emulator: EntraEmulator) -> Mint:
    return Mint(entra_emulator)


def user(i: int) -> str:
    return f"00000000-0000-0000-0000-{i:012d}"


def validator_on(
    transport: Transport, config: EntraConfig, **options: Any
) -> tuple[Any, AccessTokenValidator]:
    cache: Any = transport.cache(config, **options)
    return cache, AccessTokenValidator(config, cache, cache_size=0)


# -- the policy, the same over both transports ----------------------------------------------------
@pytest.mark.parametrize("endpoint", ["discovery", "jwks"])
def test_no_keys_fails_closed_then_retries_with_backoff(
    entra_emulator: EntraEmulator, mint: Mint, transport: Transport, endpoint: str
) -> None:
    clock = Clock()
    entra_emulator.inject_fault(endpoint, Fault("status", 503))
    _, check = validator_on(transport, emulator_config(entra_emulator), clock=clock)
    counts = entra_emulator.request_counts

    with pytest.raises(KeySetUnavailableError) as first:
        transport.validate(check, mint.token())
    assert (first.value.cause, first.value.retry_after) == ("HTTP 503", 1)
    entra_emulator.reset_counts()
    with pytest.raises(KeySetUnavailableError) as again:
        transport.validate(check, mint.token())  # within the backoff: no fetch
    assert (counts()[endpoint], again.value.retry_after) == (0, 1)
    clock.now += 1
    with pytest.raises(KeySetUnavailableError) as second:
        transport.validate(check, mint.token())  # retried once the backoff is over
    assert (counts()[endpoint], second.value.retry_after) == (1, 2)  # backing off 2 s now
    clock.now += 1
    with pytest.raises(KeySetUnavailableError):
        transport.validate(check, mint.token())
    assert counts()[endpoint] == 1
    entra_emulator.clear_faults()
    clock.now += 1
    assert transport.validate(check, mint.token()).tid == CONTOSO
    assert counts()[endpoint] == 2  # the retry, then the fetch that succeeded


def test_last_known_good_keys_serve_for_a_bounded_time(
    entra_emulator: EntraEmulator, mint: Mint, transport: Transport
) -> None:
    clock = Clock()
    cache, check = validator_on(
        transport, emulator_config(entra_emulator), clock=clock, refresh_interval=100, max_stale=50
    )
    transport.load(cache)
    entra_emulator.reset_counts()
    entra_emulator.inject_fault("jwks", Fault("status", 502))
    clock.now += 120  # due for a refresh, which fails: the keys held still serve
    assert transport.validate(check, mint.token()).tid == CONTOSO
    transport.idle(cache)
    assert entra_emulator.request_counts()["jwks"] == 1
    clock.now += 10  # still stale, within the cooldown of that attempt: no new fetch
    assert transport.validate(check, mint.token()).tid == CONTOSO
    transport.idle(cache)
    assert entra_emulator.request_counts()["jwks"] == 1
    clock.now += 21  # past refresh_interval + max_stale: refused, after one more try
    with pytest.raises(KeySetUnavailableError, match="too old to trust") as refused:
        transport.validate(check, mint.token())
    assert refused.value.http_status == 503
    assert entra_emulator.request_counts()["jwks"] == 2
    entra_emulator.clear_faults()
    clock.now += 2  # the backoff (2 s after two failures) is over
    assert transport.validate(check, mint.token()).tid == CONTOSO
    assert entra_emulator.request_counts()["jwks"] == 3


def test_unknown_kids_refetch_at_most_once_per_cooldown(
    entra_emulator: EntraEmulator, mint: Mint, transport: Transport
) -> None:
    clock = Clock()
    cache, check = validator_on(transport, emulator_config(entra_emulator), clock=clock)
    old_token = mint.token()
    assert transport.validate(check, old_token)
    entra_emulator.reset_counts()
    new_key = entra_emulator.rotate_keys(keep_old=True)
    assert transport.validate(check, mint.token(key=new_key.private_key, kid=new_key.kid))
    assert entra_emulator.request_counts()["jwks"] == 1  # the rotation: one refetch
    for _ in range(20):
        with pytest.raises(InvalidTokenError) as unknown:
            transport.validate(check, mint.token(kid=secrets.token_urlsafe(8)))
        assert unknown.value.reason == "unknown_key"
    assert entra_emulator.request_counts()["jwks"] == 1  # the cooldown holds
    clock.now += 60
    with pytest.raises(InvalidTokenError):
        transport.validate(check, mint.token(kid="another"))
    assert entra_emulator.request_counts()["jwks"] == 2
    assert transport.validate(check, old_token)  # kept: the old key is still published
    assert cache.version == 2


# -- faults: the same typed errors from both transports ------------------------------------------
@dataclass(frozen=True)
class Kind:
    name: str
    cause: str
    fault: Fault | None = None
    host: str | None = None  # "dns", "closed", "tls": the host itself fails
    status: int = 503
    retry_after: int | None = 1  # the provider's, or the backoff's (the clock stands still)


KINDS = [
    Kind("503-retry-after", "HTTP 503, Retry-After 7 s", Fault("status", 503, retry_after=7),
         retry_after=7),
    Kind("503", "HTTP 503", Fault("status", 503)),
    Kind("429", "HTTP 429, Retry-After 2 s", Fault("status", 429, retry_after=2), retry_after=2),
    Kind("hang", f"no answer within {TIMEOUT:g} s", Fault("hang", delay=5)),
    Kind("slow", f"no answer within {TIMEOUT:g} s", Fault("slow", delay=3)),
    Kind("garbage", "the answer is not JSON", Fault("garbage"), status=502),
    Kind("reset", "connection closed before the answer was complete", Fault("reset")),
    Kind("closed-port", "connection refused", host="closed"),
    Kind("unresolvable", "DNS name does not resolve", host="dns"),
    Kind("untrusted-tls", "TLS certificate not trusted", host="tls"),
]  # fmt: skip
CELLS = [
    pytest.param(kind, endpoint, id=f"{kind.name}-{endpoint}")
    for kind in KINDS
    for endpoint in (("discovery", "jwks") if kind.fault else ("host",))
]


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """A port bound for the module's duration but never listening: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


def signature(error: ProviderUnavailableError) -> tuple[Any, ...]:
    """Everything an adapter or an operator reads from the error."""
    return (
        type(error),
        error.http_status,
        error.code,
        error.retry_after,
        error.host,
        error.step,
        error.cause,
        error.message,
        error.remedy,
    )


def load_error(transport: Transport, config: EntraConfig) -> ProviderUnavailableError:
    cache = transport.cache(config, clock=Clock())
    with pytest.raises(ProviderUnavailableError) as caught:
        transport.load(cache)
    return caught.value


@pytest.mark.parametrize(("kind", "endpoint"), CELLS)
def test_faults_map_to_the_same_typed_errors(
    entra_emulator: EntraEmulator, closed_port: int, kind: Kind, endpoint: str
) -> None:
    config = emulator_config(entra_emulator, http_timeout=TIMEOUT)
    if kind.host == "tls":
        config = emulator_config(entra_emulator, http_timeout=TIMEOUT, ca_bundle=certifi.where())
    elif kind.host is not None:
        netloc = (
            f"entra-auth-test.invalid:{closed_port}"
            if kind.host == "dns"
            else f"localhost:{closed_port}"
        )
        config = emulator_config(
            entra_emulator, http_timeout=TIMEOUT, authority=f"https://{netloc}/{CONTOSO}"
        )
    errors = {}
    for driver in (Transport(), AsyncTransport()):
        if kind.fault is not None:
            entra_emulator.inject_fault(endpoint, kind.fault)
        try:
            errors[driver.name] = load_error(driver, config)
        finally:
            driver.close()
            entra_emulator.clear_faults()
    sync, async_ = errors["sync"], errors["async"]
    assert signature(async_) == signature(sync)
    assert sync.http_status == kind.status
    assert isinstance(sync, KeySetUnavailableError) == (kind.status == 503)
    assert kind.cause in sync.cause
    assert sync.step == "signing keys"
    assert sync.retry_after == kind.retry_after
    assert bearer_answer(async_) == bearer_answer(sync)


def bearer_answer(error: EntraAuthError) -> tuple[int, dict[str, str], dict[str, str]]:
    answer = challenge(error)
    return answer.status, answer.headers, answer.body


@dataclass(frozen=True)
class Untrusted:
    name: str
    words: str
    endpoint: str
    change: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None  # the document
    fault: Fault | None = None
    config: tuple[tuple[str, Any], ...] = ()


def _doc(emulator: EntraEmulator, endpoint: str) -> dict[str, Any]:
    path = (
        "/v2.0/.well-known/openid-configuration"
        if endpoint == "discovery"
        else "/discovery/v2.0/keys"
    )
    body: dict[str, Any] = emulator.http_session().get(emulator.authority + path).json()
    return body


UNTRUSTED = [
    Untrusted("redirect", "redirects are not followed", "jwks",
              fault=Fault("status", 302, headers=(("Location", "https://evil.example/keys"),))),
    Untrusted("http-jwks-uri", "is not https on", "discovery",
              lambda d: {**d, "jwks_uri": d["jwks_uri"].replace("https://", "http://")}),
    Untrusted("other-host-jwks-uri", "is not https on", "discovery",
              lambda d: {**d, "jwks_uri": d["jwks_uri"].replace("localhost", "127.0.0.1")}),
    Untrusted("issuer-of-another-tenant", "does not belong", "discovery",
              lambda d: {**d, "issuer": d["issuer"].replace(CONTOSO, FABRIKAM)}),
    Untrusted("discovery-over-1-MiB", "larger than 1 MiB", "discovery",
              lambda d: {**d, "padding": "x" * (1024 * 1024)}),
    Untrusted("key-set-over-1-MiB", "larger than 1 MiB", "jwks",
              lambda d: {**d, "padding": "x" * (1024 * 1024)}),
    Untrusted("no-usable-key", "no usable RSA signing key", "jwks",
              lambda d: {"keys": [dict(k, use="enc") for k in d["keys"]]}),
    Untrusted("not-an-object", "not a JSON object", "discovery", lambda d: None),
    Untrusted("app-keys-without-appid", "does not ask for the app's own keys", "discovery",
              lambda d: d, config=(("app_specific_keys", True),)),
]  # fmt: skip


@pytest.mark.parametrize("case", UNTRUSTED, ids=[c.name for c in UNTRUSTED])
def test_untrustworthy_documents_are_refused_alike(
    entra_emulator: EntraEmulator, case: Untrusted
) -> None:
    fault = case.fault
    if case.change is not None:
        changed = case.change(_doc(entra_emulator, case.endpoint))
        fault = Fault("garbage", body="[]" if changed is None else json.dumps(changed))
    assert fault is not None
    config = emulator_config(entra_emulator, **dict(case.config))
    errors = {}
    for driver in (Transport(), AsyncTransport()):
        entra_emulator.inject_fault(case.endpoint, fault)
        try:
            errors[driver.name] = load_error(driver, config)
        finally:
            driver.close()
            entra_emulator.clear_faults()
    assert signature(errors["async"]) == signature(errors["sync"])
    assert isinstance(errors["sync"], KeySetUnavailableError)
    assert case.words in errors["sync"].message


# -- discovery's tenant, app-specific keys: the same over both -------------------------------------
def test_a_domain_authority_learns_its_tenant_from_discovery(
    entra_emulator: EntraEmulator, mint: Mint, transport: Transport
) -> None:
    config = emulator_config(
        entra_emulator, authority=entra_emulator.authority_for("contoso.example")
    )
    assert config.tenant_by_domain
    cache, check = validator_on(transport, config)
    assert transport.validate(check, mint.token()).tid == CONTOSO
    assert cache.metadata.tenant_id == CONTOSO
    fabrikam = mint.token(tid=FABRIKAM, iss=entra_emulator.issuer(FABRIKAM))
    with pytest.raises(InvalidTokenError) as refused:
        transport.validate(check, fabrikam)
    assert refused.value.reason == "wrong_tenant"


@pytest.fixture(scope="module")
def mapped_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EntraEmulator]:
    """The local Entra ID with the demo API's tokens signed by its own key (claims mapping),
    published only at ``?appid=`` (as in test_fidelity_library)."""
    raw: dict[str, Any] = tomllib.loads(default_seed_path().read_text(encoding="utf-8"))
    for app in raw["apps"]:
        if app["client_id"] == API:
            app["app_specific_signing_key"] = True
    seed = seed_from_dict(raw, origin="an app-specific key for the demo API")
    state = tmp_path_factory.mktemp("async-app-keys")
    with EntraEmulator(seed, state_dir=state, port=0, browser_port=0) as emulator:
        yield emulator


def test_app_specific_keys_come_from_the_apps_own_key_set(
    mapped_api: EntraEmulator, transport: Transport
) -> None:
    token = mapped_api.issue_token(
        client_id=WEB, resource=API_URI, user=ADELE, scopes=["access_as_user"]
    )
    _, shared = validator_on(transport, emulator_config(mapped_api))
    with pytest.raises(InvalidTokenError) as refused:
        transport.validate(shared, token)
    assert refused.value.reason == "unknown_key"
    cache, own = validator_on(transport, emulator_config(mapped_api, app_specific_keys=True))
    assert transport.validate(own, token, scopes=["access_as_user"]).tid == CONTOSO
    assert cache.metadata.jwks_uri.endswith(f"?appid={API}")


# -- single-flight ---------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_fifty_concurrent_cold_validations_fetch_once(
    entra_emulator: EntraEmulator, mint: Mint
) -> None:
    config = emulator_config(entra_emulator)
    entra_emulator.reset_counts()
    cache = AsyncJwksCache(config)
    check = AccessTokenValidator(config, cache)
    try:
        tokens = [mint.token(oid=user(i)) for i in range(50)]
        principals = await asyncio.wait_for(
            asyncio.gather(*(check.validate_async(t) for t in tokens)), GUARD
        )
        assert {p.oid for p in principals} == {user(i) for i in range(50)}
        counts = entra_emulator.request_counts()
        assert (counts["discovery"], counts["jwks"]) == (1, 1)
        # After a rotation, 50 concurrent tokens of the new key: one refetch.
        new_key = entra_emulator.rotate_keys(keep_old=True)
        fresh = [
            mint.token(key=new_key.private_key, kid=new_key.kid, oid=user(i)) for i in range(50)
        ]
        await asyncio.wait_for(asyncio.gather(*(check.validate_async(t) for t in fresh)), GUARD)
        counts = entra_emulator.request_counts()
        assert (counts["discovery"], counts["jwks"]) == (1, 2)
    finally:
        await cache.aclose()


# -- no request waits for a fetch its key does not need -------------------------------------------
class Ticker:
    """A coroutine that ticks every 5 ms and records the event loop's lag (how much later than
    asked each tick came): a loop blocked by I/O would show it as lag of the blocking's length."""

    def __init__(self) -> None:
        self.ticks = 0
        self.max_lag = 0.0
        self._ticked = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(0.005)
            self.max_lag = max(self.max_lag, loop.time() - asked - 0.005)
            self.ticks += 1
            self._ticked.set()

    async def more(self, n: int) -> None:
        """Return once the ticker has ticked ``n`` more times."""
        target = self.ticks + n
        while self.ticks < target:
            self._ticked.clear()
            await asyncio.wait_for(self._ticked.wait(), GUARD)


@asynccontextmanager
async def ticking() -> AsyncIterator[Ticker]:
    ticker = Ticker()
    task = asyncio.get_running_loop().create_task(ticker.run())
    try:
        yield ticker
    finally:
        task.cancel()
        await asyncio.wait((task,))


class Watched:
    """An httpx client on the emulator's CA whose event hooks tell when a key-set request
    leaves (and how many have) and when an answer arrives (ordering, not timing)."""

    def __init__(self, emulator: EntraEmulator) -> None:
        self.sent = asyncio.Event()
        self.answered = asyncio.Event()
        self.key_requests = 0

        async def on_request(request: httpx.Request) -> None:
            if request.url.path.endswith("/keys"):
                self.key_requests += 1
                self.sent.set()

        async def on_response(response: httpx.Response) -> None:
            if response.request.url.path.endswith("/keys"):
                self.answered.set()

        self.client = httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=str(emulator.ca_path)),
            event_hooks={"request": [on_request], "response": [on_response]},
        )

    def reset(self) -> None:
        self.sent.clear()
        self.answered.clear()
        self.key_requests = 0


@pytest.mark.anyio
async def test_known_kids_answer_at_once_while_an_unknown_kid_refresh_hangs(
    entra_emulator: EntraEmulator, mint: Mint
) -> None:
    config = emulator_config(entra_emulator, http_timeout=HOLD + GUARD)  # the hold decides
    watched = Watched(entra_emulator)
    cache = AsyncJwksCache(config, client=watched.client)
    check = AccessTokenValidator(config, cache)
    try:
        await asyncio.wait_for(cache.load(), GUARD)
        watched.reset()
        new_key = entra_emulator.rotate_keys(keep_old=True)
        entra_emulator.inject_fault("jwks", Fault("hang", delay=HOLD))
        async with ticking() as ticker:
            unknown = asyncio.get_running_loop().create_task(
                check.validate_async(mint.token(key=new_key.private_key, kid=new_key.kid))
            )
            await asyncio.wait_for(watched.sent.wait(), GUARD)  # the refetch has left
            for i in range(20):  # cold validations (other tokens), keys known: at once
                assert (await check.validate_async(mint.token(oid=user(i)))).oid == user(i)
            assert not unknown.done()  # still held at the emulator
            await ticker.more(5)  # the loop runs on meanwhile
            assert not unknown.done()
            assert not watched.answered.is_set()
            assert (await check.validate_async(mint.token(oid=user(99)))).oid == user(99)
            assert ticker.max_lag < HOLD / 2  # a hang guard: blocking would show as the hold
        assert watched.key_requests == 1  # one refetch for all
        unknown.cancel()  # the client went away: only its waiting ends
        await asyncio.wait((unknown,))
        assert unknown.cancelled()
        assert cache._flight.current() is not None  # the fetch goes on for the others
    finally:
        await cache.aclose()
        await watched.client.aclose()


def test_an_unknown_kid_refresh_is_bounded_by_the_timeout(
    entra_emulator: EntraEmulator, mint: Mint, transport: Transport
) -> None:
    """Both transports: a refetch that hangs ends at the timeout; the unknown key is refused
    as unknown; known keys serve throughout."""
    cache, check = validator_on(transport, emulator_config(entra_emulator, http_timeout=TIMEOUT))
    transport.load(cache)
    new_key = entra_emulator.rotate_keys(keep_old=True)
    entra_emulator.inject_fault("jwks", Fault("hang", delay=5))
    with pytest.raises(InvalidTokenError) as refused:
        transport.validate(check, mint.token(key=new_key.private_key, kid=new_key.kid))
    assert refused.value.reason == "unknown_key"
    assert cache.policy.last_cause == f"no answer within {TIMEOUT:g} s"
    assert transport.validate(check, mint.token()).tid == CONTOSO


@pytest.mark.anyio
async def test_a_stale_key_set_is_refreshed_in_the_background(
    entra_emulator: EntraEmulator, mint: Mint
) -> None:
    clock = Clock()
    config = emulator_config(entra_emulator, http_timeout=HOLD + GUARD)
    watched = Watched(entra_emulator)
    cache = AsyncJwksCache(config, client=watched.client, clock=clock, refresh_interval=100)
    check = AccessTokenValidator(config, cache, cache_size=0)
    try:
        await asyncio.wait_for(cache.load(), GUARD)
        watched.reset()
        entra_emulator.inject_fault("jwks", Fault("hang", delay=HOLD))
        clock.now += 150  # due for a refresh
        assert (await check.validate_async(mint.token())).tid == CONTOSO  # answered first
        assert not watched.sent.is_set()  # the refresh had not even left
        await asyncio.wait_for(watched.sent.wait(), GUARD)  # now it has, in the background
        for i in range(5):  # and hangs, while known keys answer
            assert (await check.validate_async(mint.token(oid=user(i)))).oid == user(i)
        assert not watched.answered.is_set()
        assert watched.key_requests == 1  # one refresh, not one per request
    finally:
        await cache.aclose()
        await watched.client.aclose()


@pytest.mark.anyio
async def test_validate_async_with_a_sync_jwks_cache_fetches_off_the_event_loop(
    entra_emulator: EntraEmulator, mint: Mint
) -> None:
    config = emulator_config(entra_emulator)
    check = AccessTokenValidator(config, JwksCache(config))
    entra_emulator.inject_fault("jwks", Fault("slow", delay=3, times=1))
    async with ticking() as ticker:
        pending = asyncio.get_running_loop().create_task(check.validate_async(mint.token()))
        await ticker.more(5)  # the loop runs while the (requests) fetch is held
        assert not pending.done()
        assert (await asyncio.wait_for(pending, GUARD)).tid == CONTOSO
        assert ticker.max_lag < 1.5  # a hang guard: the 3 s hold is not the loop's
    assert check.jwks.known(mint.kid) is not None  # type: ignore[union-attr]


# -- startup while the identity provider is down -----------------------------------------------
@pytest.mark.anyio
async def test_load_raises_as_the_sync_load_does_and_prefetch_does_not(
    entra_emulator: EntraEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    entra_emulator.inject_fault("discovery", Fault("status", 503, retry_after=9))
    cache = AsyncJwksCache(emulator_config(entra_emulator), clock=Clock())
    try:
        with pytest.raises(KeySetUnavailableError) as caught:
            await cache.load()
        assert (caught.value.step, caught.value.retry_after) == ("signing keys", 9)
        with caplog.at_level(logging.WARNING, logger="entra_auth.keys"):
            assert await cache.prefetch() is False
        text = caplog.text
        assert "Starting without signing keys" in text
        assert "step=signing keys" in text
        assert "cause=HTTP 503, Retry-After 9 s" in text
        entra_emulator.clear_faults()
        assert await cache.prefetch() is True  # load() starts a fetch whatever the backoff
        assert cache.metadata.issuer == entra_emulator.issuer(CONTOSO)
    finally:
        await cache.aclose()


@pytest.mark.anyio
async def test_an_app_starts_while_the_idp_is_down_and_answers_503_until_it_is_back(
    entra_emulator: EntraEmulator, mint: Mint, caplog: pytest.LogCaptureFixture
) -> None:
    """A Starlette app (what FastAPI is) whose lifespan enters the cache: it starts with the
    discovery document unavailable, answers 503 per request, and recovers without a restart."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    clock = Clock()
    config = emulator_config(entra_emulator)
    keys = AsyncJwksCache(config, clock=clock)
    validator = AccessTokenValidator(config, keys)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with keys:  # prefetch (never raises), aclose at shutdown
            yield

    async def data(request: Request) -> JSONResponse:
        try:
            token = bearer_token(request.headers.getlist("authorization"))
            principal = await validator.validate_async(token, scopes=["access_as_user"])
        except EntraAuthError as error:
            answer = challenge(error)
            return JSONResponse(answer.body, answer.status, answer.headers)
        return JSONResponse({"oid": principal.oid})

    app = Starlette(routes=[Route("/data", data)], lifespan=lifespan)
    entra_emulator.inject_fault("discovery", Fault("status", 503))
    bearer = {"Authorization": f"Bearer {mint.token()}"}
    transport = httpx.ASGITransport(app=app)
    with caplog.at_level(logging.WARNING, logger="entra_auth.keys"):
        async with app.router.lifespan_context(app):  # the server's startup: it completes
            assert "Starting without signing keys" in caplog.text
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                down = await client.get("/data", headers=bearer)
                assert down.status_code == 503
                assert down.headers["Retry-After"] == "1"
                assert down.json()["error"] == "temporarily_unavailable"
                entra_emulator.clear_faults()
                clock.now += 1  # the backoff, not the test, waits
                up = await client.get("/data", headers=bearer)
                assert up.json() == {"oid": mint.claims()["oid"]}
    assert keys._transport._owned is None  # closed at shutdown


# -- the validator's side -------------------------------------------------------------------------
def test_sync_validation_with_an_async_key_source_says_to_use_validate_async(
    entra_emulator: EntraEmulator, mint: Mint
) -> None:
    config = emulator_config(entra_emulator)
    cache = AsyncJwksCache(config)
    check = AccessTokenValidator(config, cache)
    for call in (check.validate, check.authenticate):
        with pytest.raises(ConfigurationError, match="validate_async") as refused:
            call(mint.token())
        assert refused.value.code == "async_key_source"
        assert "await validator.validate_async" in refused.value.remedy
    with pytest.raises(ConfigurationError, match="sync key source"):
        IdTokenValidator(config, cache)  # type: ignore[arg-type]
    # Nothing was fetched for it: the refusal comes first.
    assert cache.policy.last_attempt is None


def test_a_cache_moves_to_a_new_event_loop(entra_emulator: EntraEmulator, mint: Mint) -> None:
    """A test client that runs each request in an event loop of its own: the cache's own
    client is made again for each new loop; keys, policy and validated tokens carry over."""
    config = emulator_config(entra_emulator)
    cache = AsyncJwksCache(config)
    check = AccessTokenValidator(config, cache)
    assert asyncio.run(check.validate_async(mint.token())).tid == CONTOSO
    first = cache._transport._owned
    new_key = entra_emulator.rotate_keys(keep_old=True)
    token = mint.token(key=new_key.private_key, kid=new_key.kid)
    assert asyncio.run(check.validate_async(token)).tid == CONTOSO  # a refetch, in a new loop
    assert cache._transport._owned is not first
    assert entra_emulator.request_counts()["jwks"] == 2


@pytest.mark.anyio
async def test_aclose_closes_the_caches_own_client_never_a_given_one(
    entra_emulator: EntraEmulator,
) -> None:
    config = emulator_config(entra_emulator)
    own = AsyncJwksCache(config)
    await own.load()
    client = own._transport._owned
    assert client is not None
    await own.aclose()
    assert client.is_closed
    given = httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(entra_emulator.ca_path)))
    borrowed = AsyncJwksCache(config, client=given)
    await borrowed.load()
    await borrowed.aclose()
    assert not given.is_closed
    await given.aclose()


def test_a_ca_bundle_that_does_not_load_is_a_configuration_error(
    entra_emulator: EntraEmulator, tmp_path: Any
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="ENTRA_CA_BUNDLE"):
        AsyncJwksCache(emulator_config(entra_emulator, ca_bundle=str(bundle)))


# -- packaging ------------------------------------------------------------------------------------
def _python(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_core_imports_no_httpx_and_the_async_source_without_it_names_the_extra() -> None:
    lean = _python(
        """
        import sys
        import entra_auth, entra_auth.keys, entra_auth.tokens, entra_auth.discovery
        from entra_auth import AccessTokenValidator, AsyncKeySource, JwksCache
        print("httpx" in sys.modules)
        """
    )
    assert lean.returncode == 0, lean.stderr
    assert lean.stdout.strip() == "False"
    for statement in (
        "from entra_auth import AsyncJwksCache",
        "from entra_auth.keys import AsyncJwksCache",
        "from entra_auth.discovery import AsyncDiscovery",
    ):
        without = _python(f"import sys; sys.modules['httpx'] = None\n{statement}")
        assert without.returncode != 0
        last_line = without.stderr.strip().splitlines()[-1]
        assert last_line.startswith("ImportError"), last_line
        assert "pip install 'entra-auth[fastapi]'" in last_line


@pytest.mark.anyio
async def test_a_server_trickling_bytes_is_cut_off_at_the_deadline() -> None:
    """Each byte comes well within the read timeout, so only the whole answer's deadline
    (connect + read timeout) ends the fetch: a trickle cannot hold a waiting request."""
    from entra_auth._async_http import deadline_for, get_json

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            while True:
                writer.write(b"1\r\n \r\n")
                await writer.drain()
                await asyncio.sleep(0.05)
        except (ConnectionError, asyncio.CancelledError):
            writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient() as client:
            with pytest.raises(FetchError) as cut:
                await asyncio.wait_for(
                    get_json(client, f"http://127.0.0.1:{port}/keys", "The key set", timeout=1.0),
                    GUARD,
                )
        assert cut.value.cause == f"no complete answer within {deadline_for(1.0):g} s"
        assert "The key set at http://127.0.0.1" in str(cut.value)
    finally:
        server.close()
