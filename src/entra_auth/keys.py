"""Key sources: where a validator finds the key a token names (``kid``).

- ``JwksCache``: the tenant's published key set, fetched rarely and trusted carefully. Reads
  ``jwks_uri`` from the checked discovery document (``discovery.Discovery``; the app's own, with
  ``?appid=``, when ``app_specific_keys`` is set); keys are parsed once per fetch (PyJWT's
  ``PyJWK``), never per request; RSA keys under 2048 bits, ``use: enc`` keys, other key types,
  keys whose ``issuer`` is not a string and unparseable keys are skipped. Each key keeps the
  ``issuer`` Entra publishes it for: the validators refuse a token whose ``iss`` it does not
  fit (``SigningKey.signs_for``).
- ``AsyncJwksCache``: the same key set for asyncio apps, ``await cache.get(kid)``; it
  satisfies ``AsyncKeySource``. It lives in ``_async_http`` with its transport (httpx, the
  ``fastapi`` extra) and loads on first use, here as at the package root: importing this module
  imports no httpx.
- ``StaticKeys``: keys you give it (a JWKS document, PEM public keys or certificates,
  ``cryptography`` keys): unit tests and air-gapped jobs validate tokens without any server.

The fetch policy lives once, without I/O, in ``KeySetPolicy`` (the h11 shape): what a lookup
needs (``lookup``: the key at once, a refresh in the background, or a fetch to wait for), whether
a fetch may start (``due``: an unknown ``kid`` triggers at most one refetch per cooldown; with no
trusted keys, retries back off 1, 2, 4 … s), what a fetch's outcome changes (a failed or empty
fetch keeps the last-known-good keys for a bounded time) and the answer once a fetch is over
(``settle``: the key, ``unknown_key``, or ``KeySetUnavailableError``, fail closed).
``PublishedKeys`` holds that policy for both caches; each transport adds only its I/O and its
single-flight: ``JwksCache`` a lock (concurrent threads share one fetch), ``AsyncJwksCache`` one
shared task (concurrent coroutines share one fetch, and no request waits for a refresh its
known key does not need).

Why not PyJWT's ``PyJWKClient``: it has no discovery/issuer check, no host check, no size cap,
no single-flight, no async, and drops the key set on a failed fetch.
"""

from __future__ import annotations

import abc
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ._http import FetchError, get_json
from .config import EntraConfig
from .discovery import Discovery, ProviderMetadata
from .errors import (
    ConfigurationError,
    InvalidTokenError,
    KeySetUnavailableError,
    ProviderResponseError,
    ProviderUnavailableError,
)

if TYPE_CHECKING:
    from ._async_http import AsyncJwksCache as AsyncJwksCache
else:

    def __getattr__(name: str) -> Any:
        """``AsyncJwksCache`` loads on first use: it needs httpx (the ``fastapi`` extra), which
        importing this module must not (a bare install validates tokens without it)."""
        if name == "AsyncJwksCache":
            from ._async_http import AsyncJwksCache

            return AsyncJwksCache
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


log = logging.getLogger("entra_auth.keys")

MIN_RSA_BITS = 2048


_TENANT_TEMPLATE = re.compile(re.escape("{tenantid}"), re.IGNORECASE)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    public_key: RSAPublicKey
    # The JWK's ``issuer`` member, when Entra publishes one: the issuer this key signs for, a
    # ``{tenantid}`` template on most keys of a multi-tenant set, a fixed tenant on others
    # (personal accounts' keys in the common set). None: the key says nothing (keys given).
    issuer: str | None = None

    def signs_for(self, iss: object, tid: str) -> bool:
        """May this key sign a token of tenant ``tid`` whose (v2) issuer is ``iss``?

        Microsoft's rule ("Validate the signing key issuer"): the key's issuer, ``{tenantid}``
        (in any case) replaced by the token's ``tid``, must be exactly the token's ``iss``. A
        key without an issuer fits any (keys given, which say nothing).
        """
        issuer = self.issuer
        if issuer is None:
            return True
        if "{" not in issuer:  # a fixed issuer (no template): compared as it is, per token
            return issuer == iss
        return _TENANT_TEMPLATE.sub(lambda _: tid, issuer) == iss


class KeySource(Protocol):
    """What a validator needs: the key for a ``kid``, and a ``version`` that changes whenever
    the set of keys changes (caches of validated tokens are dropped then)."""

    @property
    def version(self) -> int: ...

    def get(self, kid: str) -> SigningKey: ...


class AsyncKeySource(Protocol):
    """``KeySource`` for asyncio apps (``AsyncJwksCache``): ``await get(kid)``. Give one to
    ``AccessTokenValidator`` and call ``validate_async``/``authenticate_async``.

    A source that found its keys through discovery (``AsyncJwksCache``, ``JwksCache``) also
    tells the validator the tenant of an authority named by domain; any other source needs
    ENTRA_TENANT_ID for such an authority, as ``StaticKeys`` does."""

    @property
    def version(self) -> int: ...

    async def get(self, kid: str) -> SigningKey: ...


def _unknown_key() -> InvalidTokenError:
    return InvalidTokenError(
        "The token is signed with a key the tenant does not publish.",
        reason="unknown_key",
        remedy="Use a token issued by the configured tenant; if its keys just rotated, retry "
        "in a minute.",
    )


# -- parsing ------------------------------------------------------------------------------------
def signing_key(raw: object) -> SigningKey | None:
    """A usable RS256 verification key from one JWK, or None (and a debug line) to skip it."""
    if not isinstance(raw, dict):
        return None
    kid = raw.get("kid")
    if not isinstance(kid, str) or not kid:
        return None
    if raw.get("kty") != "RSA" or raw.get("use", "sig") != "sig":
        log.debug("Skipping a key that is not an RSA signing key.")
        return None
    if raw.get("alg") not in (None, "RS256"):
        return None
    try:
        public_key = jwt.PyJWK(raw, algorithm="RS256").key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        log.debug("Skipping a key that does not parse.")
        return None
    if not isinstance(public_key, RSAPublicKey) or public_key.key_size < MIN_RSA_BITS:
        log.debug("Skipping an RSA key under %d bits.", MIN_RSA_BITS)
        return None
    issuer = raw.get("issuer")
    if issuer is not None and (not isinstance(issuer, str) or not issuer):
        # A key whose issuer cannot be read cannot be scoped: skipped rather than trusted for
        # every issuer (Entra always publishes a string).
        log.debug("Skipping a key whose issuer is not a string.")
        return None
    return SigningKey(kid, public_key, issuer)


def parse_key_set(doc: object, url: str = "the key set") -> dict[str, SigningKey]:
    """The usable signing keys of a JWKS document (``{"keys": [...]}``), by ``kid``."""
    raw_keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(raw_keys, list):
        raise FetchError(f"The key set at {url} has no 'keys' list.")
    keys: dict[str, SigningKey] = {}
    for raw in raw_keys:
        key = signing_key(raw)
        if key is not None:
            keys[key.kid] = key
    if not keys:
        raise FetchError(f"The key set at {url} holds no usable RSA signing key.")
    return keys


# -- policy, without I/O ------------------------------------------------------------------------
class KeySetPolicy:
    """When to fetch, what to keep, when to refuse: the state of one key set, no I/O.

    A transport asks ``due(why, now)`` before fetching, calls ``attempt(now)`` when it starts,
    then ``succeeded(keys, now)`` or ``failed(error)``; lookups go through ``key(kid)``.
    """

    def __init__(
        self,
        authority: str,
        *,
        cooldown: float = 60.0,
        refresh_interval: float = 24 * 3600.0,
        max_stale: float = 24 * 3600.0,
    ):
        self.authority = authority
        self.cooldown, self.refresh_interval, self.max_stale = cooldown, refresh_interval, max_stale
        self.keys: dict[str, SigningKey] = {}
        self.version = 0
        self.fetched_at: float | None = None  # when the current keys were fetched
        self.last_attempt: float | None = None
        self.last_kid_fetch: float | None = None
        self.failures = 0
        self.last_error = "no fetch has succeeded yet"
        self.last_cause = self.last_error
        self.last_retry_after: int | None = None
        self.last_nonsense = False  # the last answer was not JSON: 502, not 503

    def stale(self, now: float) -> bool:
        """Past the refresh interval: time to refresh in the background of a lookup."""
        return self.fetched_at is not None and now - self.fetched_at > self.refresh_interval

    def too_stale(self, now: float) -> bool:
        """Past the refresh interval and the grace of ``max_stale``: no longer trusted."""
        return (
            self.fetched_at is not None
            and now - self.fetched_at > self.refresh_interval + self.max_stale
        )

    def trusted(self, now: float) -> bool:
        """Are there keys to answer with (some, and not past ``max_stale``)?"""
        return bool(self.keys) and not self.too_stale(now)

    def lookup(self, kid: str, now: float) -> SigningKey | str:
        """What a lookup of ``kid`` needs, without any I/O: the key, or the fetch to wait for.

        A key: answer with it now (if ``stale(now)``, a refresh is due in the background, which
        no caller waits for). ``"empty"``: no trusted keys (none yet, or past ``max_stale``):
        nothing can be answered before a fetch. ``"unknown_kid"``: a key the set does not hold:
        the caller waits for a refetch, if ``due``, then ``settle``s.
        """
        if not self.trusted(now):
            return "empty"
        return self.keys.get(kid) or "unknown_kid"

    def settle(self, kid: str, now: float) -> SigningKey:
        """The answer once the fetch a lookup asked for is over (or was not due): the key,
        ``InvalidTokenError`` (``unknown_key``), or ``KeySetUnavailableError`` (fail closed)."""
        self.require_trusted(now)
        key = self.keys.get(kid)
        if key is None:
            raise _unknown_key()
        return key

    def require_trusted(self, now: float) -> None:
        """``KeySetUnavailableError`` (or 502's ``ProviderResponseError``) unless ``trusted``."""
        if not self.keys:
            raise self.unavailable(now=now)
        if self.too_stale(now):
            raise self.unavailable(stale=True, now=now)

    def due(self, why: str, now: float) -> bool:
        """May a fetch for this reason (``empty``, ``stale``, ``unknown_kid``) start now? Rate
        limits, so that no token can make this process hammer the identity provider."""
        if why == "unknown_kid":  # at most one refetch per cooldown for unknown key ids
            due = self.last_kid_fetch is None or now - self.last_kid_fetch >= self.cooldown
            if due:
                self.last_kid_fetch = now
            return due
        if why == "stale":
            return self.last_attempt is None or now - self.last_attempt >= self.cooldown
        # no keys at all: retry with backoff (1, 2, 4 ... seconds, up to the cooldown)
        if self.last_attempt is None:
            return True
        return now - self.last_attempt >= min(self.cooldown, 2.0 ** max(self.failures - 1, 0))

    def attempt(self, now: float) -> None:
        self.last_attempt = now

    def succeeded(self, keys: dict[str, SigningKey], now: float) -> None:
        if set(keys) != set(self.keys) or any(
            keys[k].public_key.public_numbers() != self.keys[k].public_key.public_numbers()
            for k in keys
        ):
            self.version += 1
        self.keys = keys
        self.fetched_at = now
        self.failures = 0

    def failed(
        self, error: str, *, cause: str = "", retry_after: int | None = None, nonsense: bool = False
    ) -> None:
        self.failures += 1
        self.last_error = error
        self.last_cause, self.last_retry_after = cause or error, retry_after
        self.last_nonsense = nonsense

    def fetch_failed(self, exc: BaseException) -> None:
        """A fetch that failed, for any reason: the keys held stay (last-known-good), the
        next fetch backs off, and the log says why. A ``FetchError`` says it in our words;
        anything else is a bug, logged with its traceback and refused like an outage (fail
        closed: 503, never a key)."""
        if isinstance(exc, FetchError):
            self.failed(
                str(exc), cause=exc.cause, retry_after=exc.retry_after, nonsense=exc.nonsense
            )
            log.warning("Signing keys not refreshed: %s", exc)
            return
        cause = f"unexpected error ({type(exc).__name__})"
        self.failed(f"fetching them failed with an {cause}.", cause=cause)
        log.error("Signing keys not refreshed: %s", cause, exc_info=exc)

    def next_attempt_in(self, now: float) -> int:
        """Whole seconds until a fetch for an empty key set may start again (backoff)."""
        if self.last_attempt is None:
            return 0
        wait = min(self.cooldown, 2.0 ** max(self.failures - 1, 0))
        return max(0, int(-(-(self.last_attempt + wait - now) // 1)))

    def unavailable(
        self, *, stale: bool = False, now: float | None = None
    ) -> ProviderUnavailableError:
        """The refusal while no trusted key can be had: 503 (502 when the provider answered
        nonsense), Retry-After as the provider asked or until the next fetch may start,
        whichever is later."""
        waits = [
            w
            for w in (self.last_retry_after, None if now is None else self.next_attempt_in(now))
            if w
        ]
        kind = ProviderResponseError if self.last_nonsense and not stale else KeySetUnavailableError
        return kind(
            (
                "The signing keys are too old to trust and cannot be refreshed: "
                if stale
                else "The identity provider's signing keys are unavailable: "
            )
            + self.last_error,
            remedy=f"Check that {self.authority} is reachable from this server (network, proxy, "
            "ENTRA_CA_BUNDLE) and that ENTRA_AUTHORITY names the right tenant.",
            retry_after=max(waits) if waits else None,
            host=urlsplit(self.authority).netloc,
            step="signing keys",
            cause=self.last_cause,
        )


# -- the published key set: what both transports share ------------------------------------------
class PublishedKeys(abc.ABC):
    """What ``JwksCache`` and ``AsyncJwksCache`` share, without I/O: the configuration, the
    fetch timeout, the policy and its clock, the ``version``, and the ``metadata`` the keys were
    found through (from which the validators learn the tenant of an authority named by
    domain)."""

    def __init__(
        self,
        config: EntraConfig,
        *,
        timeout: float | None,
        cooldown: float,
        refresh_interval: float,
        max_stale: float,
        clock: Callable[[], float],
    ):
        self.config = config
        # ENTRA_HTTP_TIMEOUT unless told otherwise: a hanging key fetch holds a worker.
        self.timeout = config.http_timeout if timeout is None else timeout
        self._clock = clock
        self.policy = KeySetPolicy(
            str(config.authority),
            cooldown=cooldown,
            refresh_interval=refresh_interval,
            max_stale=max_stale,
        )

    @property
    def version(self) -> int:
        """Changes whenever the set of keys changes: caches built on the keys check it."""
        return self.policy.version

    @property
    @abc.abstractmethod
    def metadata(self) -> ProviderMetadata:
        """The discovery document this key set was found through."""

    def known(self, kid: str) -> SigningKey | None:
        """The key for ``kid`` when it can be answered now, no fetch due (None: ask ``get``)."""
        now = self._clock()
        found = self.policy.lookup(kid, now)
        if isinstance(found, SigningKey) and not self.policy.stale(now):
            return found
        return None


# -- the published key set, over the sync transport ---------------------------------------------
class JwksCache(PublishedKeys):
    """Signing keys of one authority. Thread-safe; share one per process."""

    def __init__(
        self,
        config: EntraConfig,
        *,
        discovery: Discovery | None = None,
        session: requests.Session | None = None,
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
        self._session = session or requests.Session()
        self.discovery = discovery or Discovery(config, session=self._session, timeout=self.timeout)
        self._verify: str | bool = config.ca_bundle or True
        self._fetch_lock = threading.Lock()

    # -- public -------------------------------------------------------------------------------
    @property
    def metadata(self) -> ProviderMetadata:
        """The discovery document this key set was found through."""
        if self.discovery.known is None:
            self._ensure_loaded()
        return self.discovery.metadata

    def load(self) -> None:
        """Fetch metadata and keys now; ``KeySetUnavailableError`` if that fails."""
        with self._fetch_lock:
            self._fetch_locked()
        self.policy.require_trusted(self._clock())

    def get(self, kid: str) -> SigningKey:
        """The key with this ``kid``; refetches once per cooldown for an unknown one."""
        policy = self.policy
        now = self._clock()
        found = policy.lookup(kid, now)
        if isinstance(found, SigningKey):
            if policy.stale(now):
                self._refresh("stale", wait=False)  # one caller refreshes; the others go on
            return found
        self._refresh(found, wait=True)
        return policy.settle(kid, self._clock())

    def keys(self) -> dict[str, SigningKey]:
        self._ensure_loaded()
        return dict(self.policy.keys)

    def read_keys(self, url: str) -> dict[str, SigningKey]:
        """Fetch and parse the key set at ``url`` now (``FetchError`` says what is wrong)."""
        doc = get_json(self._session, url, "The key set", timeout=self.timeout, verify=self._verify)
        return parse_key_set(doc, url)

    # -- fetching -----------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self.policy.keys:
            return
        self._refresh("empty", wait=True)
        self.policy.require_trusted(self._clock())

    def _refresh(self, why: str, *, wait: bool) -> None:
        if not self._fetch_lock.acquire(blocking=False):
            if wait:  # single-flight: wait for the fetch under way (it has its own timeouts)
                with self._fetch_lock:
                    pass
            return
        try:
            # Checked under the lock: another caller may have fetched while this one waited.
            if self.policy.due(why, self._clock()):
                self._fetch_locked()
        finally:
            self._fetch_lock.release()

    def _fetch_locked(self) -> None:
        self.policy.attempt(self._clock())
        try:
            metadata = self.discovery.known or self.discovery.read()
            keys = self.read_keys(metadata.jwks_uri)
        except Exception as exc:  # the policy logs it; lookups fail closed
            self.policy.fetch_failed(exc)
            return
        self.discovery.remember(metadata)
        self.policy.succeeded(keys, self._clock())


# -- keys given -----------------------------------------------------------------------------------
class StaticKeys:
    """Keys given rather than fetched, by ``kid``; they never change (``version`` stays 0).

    StaticKeys.from_jwks(json.load(open("keys.json")))
    StaticKeys.from_pem({"my-kid": pem_text})         # public keys or certificates
    StaticKeys({"my-kid": public_key})                # cryptography RSAPublicKey
    """

    version = 0

    def __init__(self, keys: Mapping[str, RSAPublicKey] | Iterable[SigningKey]):
        found: dict[str, SigningKey] = {}
        items = (
            [SigningKey(kid, key) for kid, key in keys.items()]
            if isinstance(keys, Mapping)
            else list(keys)
        )
        for key in items:
            if not isinstance(key.public_key, RSAPublicKey) or key.public_key.key_size < 2048:
                raise ConfigurationError(
                    f"The key {key.kid!r} is not an RSA public key of 2048 bits or more.",
                    remedy="Entra signs with RSA-2048 (RS256); give the tenant's public keys.",
                )
            found[key.kid] = key
        if not found:
            raise ConfigurationError(
                "StaticKeys was given no keys.", remedy="Give at least one RSA public key."
            )
        self._keys = found

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any] | str | bytes) -> StaticKeys:
        """From a JWKS document (``{"keys": [...]}``) as a mapping or JSON text."""
        doc = json.loads(jwks) if isinstance(jwks, (str, bytes)) else dict(jwks)
        try:
            return cls(parse_key_set(doc).values())
        except FetchError as exc:
            raise ConfigurationError(
                str(exc), remedy="Give a JWKS with RSA signing keys."
            ) from None

    @classmethod
    def from_pem(cls, pems: Mapping[str, str | bytes]) -> StaticKeys:
        """From PEM text by ``kid``: public keys (``BEGIN PUBLIC KEY``) or certificates."""
        keys: dict[str, RSAPublicKey] = {}
        for kid, pem in pems.items():
            data = pem.encode() if isinstance(pem, str) else pem
            public: object
            try:
                if b"BEGIN CERTIFICATE" in data:
                    public = x509.load_pem_x509_certificate(data).public_key()
                else:
                    public = load_pem_public_key(data)
            except ValueError:
                raise ConfigurationError(
                    f"The PEM for {kid!r} is neither a public key nor a certificate.",
                    remedy="Give 'BEGIN PUBLIC KEY' or 'BEGIN CERTIFICATE' PEM text.",
                ) from None
            if not isinstance(public, RSAPublicKey):
                raise ConfigurationError(
                    f"The key {kid!r} is not an RSA key.", remedy="Entra signs with RSA (RS256)."
                )
            keys[kid] = public
        return cls(keys)

    def get(self, kid: str) -> SigningKey:
        key = self._keys.get(kid)
        if key is None:
            raise _unknown_key()
        return key

    def keys(self) -> dict[str, SigningKey]:
        return dict(self._keys)
