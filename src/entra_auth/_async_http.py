"""The async transport (httpx) and the key source built on it, for asyncio apps (FastAPI).

Needs the ``fastapi`` extra: ``pip install 'entra-auth[fastapi]'``. Import the public names
from the package root: ``from entra_auth import AsyncJwksCache``.

- ``get_json``: the sync transport's limits (``_http``) over ``httpx.AsyncClient``: a connect
  timeout of at most 3.05 s and a read timeout of ``ENTRA_HTTP_TIMEOUT``, plus one deadline for
  the whole answer (connect + read: a server trickling bytes cannot hold a fetch longer), no
  redirects followed, bodies capped at 1 MiB while they stream in, the CA bundle of
  ``ENTRA_CA_BUNDLE``, and failures as the same ``FetchError`` in the same words (the status,
  size and JSON checks and the cause-finding are ``_http``'s own functions, not copies).
- ``AsyncDiscovery``: ``Discovery`` for asyncio: the same ``parse_metadata`` (issuer of the
  authority, a domain authority's tenant from the issuer, ``?appid=``, ``jwks_uri`` https on
  the authority's host) and the same typed errors (``provider_error``).
- ``AsyncJwksCache``: ``JwksCache`` for asyncio: the same ``KeySetPolicy`` (``PublishedKeys``),
  so cooldown, backoff, last-known-good, limits and refusals are the sync cache's, decision for
  decision. Only the single-flight differs: one shared ``asyncio.Task`` per fetch, which every
  coroutine that needs it joins (50 cold requests: one discovery, one key-set fetch), while a
  request whose key is known never waits for any fetch: a due refresh runs in the background,
  and only a request with an unknown ``kid`` (or with no trusted keys at all) waits, bounded by
  the timeouts. A waiter that is cancelled (the client went away) leaves the fetch running for
  the others.

Hand-written rather than taken from a library: no async JWKS client has the discovery checks,
the host rule, the size cap, single-flight or last-known-good (the reasons ``keys`` gives for
not using PyJWT's ``PyJWKClient``), and the policy must be the sync cache's own, not a second
one that drifts.

asyncio only (what FastAPI and Starlette run on under uvicorn and their test client). A cache
belongs to one event loop at a time: a client it makes itself is made again for a new loop (a
test client that runs each request in a loop of its own), a client you give is used as it is
and never closed here.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

try:
    import httpx
except ImportError as exc:  # pragma: no cover - shown by tests/test_async_keys.py
    raise ImportError(
        f"entra_auth's async key source (AsyncJwksCache) needs httpx ({exc.name} is missing): "
        "pip install 'entra-auth[fastapi]'"
    ) from exc

from ._http import (
    MAX_BODY,
    FetchError,
    cause_in_chain,
    json_document,
    status_error,
    too_large,
)
from .config import EntraConfig
from .discovery import ProviderMetadata, parse_metadata, provider_error
from .errors import ConfigurationError, KeySetUnavailableError, ProviderUnavailableError
from .keys import PublishedKeys, SigningKey, parse_key_set

log = logging.getLogger("entra_auth.keys")


# -- the transport --------------------------------------------------------------------------------
def cause_of(exc: httpx.HTTPError, timeout: float) -> str:
    """A failed request's cause in the operator's words, the sync transport's words for the
    same failure (never the exception's own text, which can quote URLs)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connecting timed out after {timeout:g} s"
    if isinstance(exc, httpx.TimeoutException):  # read, write, or waiting for a connection
        return f"no answer within {timeout:g} s"
    found = cause_in_chain(exc)
    if found is not None:
        return found
    if isinstance(exc, httpx.RemoteProtocolError):  # h11: the peer closed mid-answer
        return "connection closed before the answer was complete"
    return f"could not connect ({type(exc).__name__})"


def deadline_for(timeout: float) -> float:
    """The whole answer's deadline: the connect timeout plus the read timeout."""
    return min(timeout, 3.05) + timeout


async def get_json(client: httpx.AsyncClient, url: str, what: str, *, timeout: float) -> Any:
    """The JSON at ``url``; ``what`` names it in errors ("The key set"). ``FetchError`` as
    ``_http.get_json`` raises it."""
    deadline = deadline_for(timeout)
    try:
        return await asyncio.wait_for(_get_json(client, url, what, timeout), deadline)
    except asyncio.TimeoutError:
        cause = f"no complete answer within {deadline:g} s"
        raise FetchError(f"{what} at {url} broke off: {cause}.", cause=cause) from None


async def _get_json(client: httpx.AsyncClient, url: str, what: str, timeout: float) -> Any:
    answered = False
    body = bytearray()
    try:
        async with client.stream(
            "GET",
            url,
            headers={"Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.05)),
            follow_redirects=False,
        ) as response:
            answered = True
            refused = status_error(
                what, url, response.status_code, response.headers.get("Retry-After")
            )
            if refused is not None:
                raise refused
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BODY:
                    raise too_large(what, url)
    except httpx.HTTPError as exc:
        cause = cause_of(exc, timeout)
        how = "broke off" if answered else "could not be fetched"
        raise FetchError(f"{what} at {url} {how}: {cause}.", cause=cause) from None
    return json_document(bytes(body), what, url)


def _trust(config: EntraConfig) -> ssl.SSLContext | bool:
    """What the client verifies servers with: ENTRA_CA_BUNDLE alone when set (as ``requests``
    takes ``verify=<path>``), else httpx's default (certifi). Loaded once, at construction: a
    bundle that does not load is a configuration error, said at start."""
    if not config.ca_bundle:
        return True
    try:
        return ssl.create_default_context(cafile=config.ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"ENTRA_CA_BUNDLE is {config.ca_bundle!r}, which does not load as CA certificates "
            f"({type(exc).__name__}).",
            remedy="Point ENTRA_CA_BUNDLE at a PEM file of the CA certificates to trust.",
        ) from None


class _Transport:
    """An ``httpx.AsyncClient`` with the fetch limits: the caller's (used as given, never
    closed here) or one of its own, made for the running event loop and closed by ``aclose``.
    """

    def __init__(self, config: EntraConfig, client: httpx.AsyncClient | None, timeout: float):
        self.timeout = timeout
        self._given = client
        self._verify = _trust(config) if client is None else True
        self._owned: httpx.AsyncClient | None = None
        self._owned_loop: asyncio.AbstractEventLoop | None = None

    def client(self) -> httpx.AsyncClient:
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        owned = self._owned
        if owned is None or owned.is_closed or self._owned_loop is not loop:
            # A client's connections belong to the loop that opened them; one of a loop that
            # is gone is dropped with it.
            owned = httpx.AsyncClient(verify=self._verify, follow_redirects=False)
            self._owned, self._owned_loop = owned, loop
        return owned

    async def get_json(self, url: str, what: str) -> Any:
        return await get_json(self.client(), url, what, timeout=self.timeout)

    async def aclose(self) -> None:
        owned, self._owned = self._owned, None
        if owned is not None and self._owned_loop is asyncio.get_running_loop():
            await owned.aclose()


class _SingleFlight:
    """At most one fetch under way: each caller that needs one joins it rather than starting
    another. The task is held here (a task nobody holds can be collected mid-flight); one of
    another event loop does not count (its loop is gone, or it is not this cache's loop)."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def current(self) -> asyncio.Task[None] | None:
        task = self._task
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            return None
        return task

    def start(self, fetch: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(fetch())
        self._task = task
        return task

    async def cancel(self) -> None:
        task = self.current()
        if task is not None:
            task.cancel()
            await asyncio.wait((task,))


async def _join(task: asyncio.Task[None]) -> None:
    """Wait for a shared fetch to end, however it ends; cancelling the waiter (its client went
    away) cancels only the waiting, never the fetch the others wait for."""
    await asyncio.wait((task,))


# -- discovery ------------------------------------------------------------------------------------
class AsyncDiscovery:
    """The authority's metadata for asyncio apps: read once (``await load()``), then shared;
    the checks of ``Discovery`` (``parse_metadata``) and its typed errors."""

    def __init__(
        self,
        config: EntraConfig,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float | None = None,
    ):
        self.config = config
        self.timeout = config.http_timeout if timeout is None else timeout
        self._transport = _Transport(config, client, self.timeout)
        self._metadata: ProviderMetadata | None = None
        self._error: FetchError | None = None
        self._flight = _SingleFlight()

    async def read(self) -> ProviderMetadata:
        """Fetch and check the discovery document now (``FetchError`` says what is wrong)."""
        url = self.config.metadata_url
        doc = await self._transport.get_json(url, "The discovery document")
        return parse_metadata(doc, self.config, url)

    async def load(self) -> ProviderMetadata:
        """The metadata, read on first use by one fetch that concurrent callers share;
        ``KeySetUnavailableError`` (502's ``ProviderResponseError`` for nonsense) while it
        cannot be had, as ``Discovery.metadata`` raises it."""
        if self._metadata is None:
            await _join(self._flight.current() or self._flight.start(self._fetch))
            if self._metadata is None:
                error = self._error or FetchError("The discovery document was not read.")
                raise provider_error(
                    error, self.config, "discovery", "The identity provider's metadata"
                )
        return self._metadata

    @property
    def metadata(self) -> ProviderMetadata:
        """The metadata read so far (by ``load`` or the key cache's first fetch)."""
        if self._metadata is None:
            raise KeySetUnavailableError(
                "The identity provider's metadata has not been read yet.",
                remedy="Await load() first (the app's startup), or the key cache's load().",
                host=urlsplit(str(self.config.authority)).netloc,
                step="discovery",
                cause="not read yet",
            )
        return self._metadata

    def remember(self, metadata: ProviderMetadata) -> None:
        """Keep metadata fetched elsewhere (the key cache's first fetch)."""
        self._metadata = metadata

    @property
    def known(self) -> ProviderMetadata | None:
        return self._metadata

    async def aclose(self) -> None:
        """Stop a read under way; close the client this object made (not one it was given)."""
        await self._flight.cancel()
        await self._transport.aclose()

    async def _fetch(self) -> None:
        try:
            self._metadata = await self.read()
        except FetchError as exc:
            self._error = exc
        except Exception as exc:  # a bug: logged, and refused like an outage (fail closed)
            cause = f"unexpected error ({type(exc).__name__})"
            log.error("Discovery document not read: %s", cause, exc_info=exc)
            self._error = FetchError(f"Reading it failed with an {cause}.", cause=cause)


# -- the published key set ------------------------------------------------------------------------
class AsyncJwksCache(PublishedKeys):
    """Signing keys of one authority for asyncio apps: ``JwksCache``'s policy over httpx.

    Share one per app (and event loop). ``await get(kid)``; ``await load()`` fetches now and
    raises as ``JwksCache.load`` does; for an app's startup, ``async with AsyncJwksCache(config)
    as keys:`` (or ``await prefetch()``) fetches without raising, so the app starts while the
    identity provider is down and refuses tokens (503) until the keys can be had; ``await
    aclose()`` at shutdown.
    """

    def __init__(
        self,
        config: EntraConfig,
        *,
        discovery: AsyncDiscovery | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float | None = None,
        cooldown: float = 60.0,
        refresh_interval: float = 24 * 3600.0,
        max_stale: float = 24 * 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(
            config,
            timeout=timeout,
            cooldown=cooldown,
            refresh_interval=refresh_interval,
            max_stale=max_stale,
            clock=clock,
        )
        self._owns_discovery = discovery is None
        if discovery is None:  # one client for both documents
            discovery = AsyncDiscovery(config, client=client, timeout=self.timeout)
            self._transport = discovery._transport
        else:
            self._transport = _Transport(config, client, self.timeout)
        self.discovery = discovery
        self._flight = _SingleFlight()

    # -- public -------------------------------------------------------------------------------
    @property
    def metadata(self) -> ProviderMetadata:
        """The discovery document the keys were found through (known once a fetch succeeded:
        after ``load``, or once ``get`` has answered)."""
        return self.discovery.metadata

    async def load(self) -> None:
        """Fetch metadata and keys now; ``KeySetUnavailableError`` if that fails."""
        await _join(self._flight.current() or self._flight.start(self._fetch))
        self.policy.require_trusted(self._clock())

    async def prefetch(self) -> bool:
        """``load`` for an app's startup: never raises. False (and a warning naming host, step
        and cause) when the keys cannot be had now: the app starts all the same, every token is
        refused with 503 meanwhile (fail closed), and the next requests fetch again, with
        backoff, until the provider is back: no restart."""
        try:
            await self.load()
        except ProviderUnavailableError as exc:
            log.warning(
                "Starting without signing keys (host=%s step=%s cause=%s): tokens are refused "
                "with 503 until the keys can be had.",
                exc.host,
                exc.step,
                exc.cause,
            )
            return False
        return True

    async def __aenter__(self) -> AsyncJwksCache:
        await self.prefetch()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def get(self, kid: str) -> SigningKey:
        """The key with this ``kid``; a known one at once (a due refresh runs in the
        background), an unknown one after at most one refetch per cooldown."""
        policy = self.policy
        now = self._clock()
        found = policy.lookup(kid, now)
        if isinstance(found, SigningKey):
            if policy.stale(now):
                self._refresh("stale")  # in the background: nobody waits for it
            return found
        task = self._refresh(found)
        if task is not None:
            await _join(task)
        return policy.settle(kid, self._clock())

    async def keys(self) -> dict[str, SigningKey]:
        if not self.policy.keys:
            task = self._refresh("empty")
            if task is not None:
                await _join(task)
            self.policy.require_trusted(self._clock())
        return dict(self.policy.keys)

    async def read_keys(self, url: str) -> dict[str, SigningKey]:
        """Fetch and parse the key set at ``url`` now (``FetchError`` says what is wrong)."""
        doc = await self._transport.get_json(url, "The key set")
        return parse_key_set(doc, url)

    async def aclose(self) -> None:
        """Stop a fetch under way; close the client this cache made (not one it was given)."""
        await self._flight.cancel()
        await self._transport.aclose()
        if self._owns_discovery:
            await self.discovery.aclose()

    # -- fetching -----------------------------------------------------------------------------
    def _refresh(self, why: str) -> asyncio.Task[None] | None:
        """The fetch to wait for: the one under way, else a new one if the policy says it is
        due; None when there is none."""
        running = self._flight.current()
        if running is not None:
            return running
        if not self.policy.due(why, self._clock()):
            return None
        return self._flight.start(self._fetch)

    async def _fetch(self) -> None:
        self.policy.attempt(self._clock())
        try:
            metadata = self.discovery.known or await self.discovery.read()
            keys = await self.read_keys(metadata.jwks_uri)
        except Exception as exc:  # the policy logs it; lookups fail closed
            self.policy.fetch_failed(exc)
            return
        self.discovery.remember(metadata)
        self.policy.succeeded(keys, self._clock())
