"""JwksCache: the tenant's signing keys, fetched rarely and trusted carefully.

- Reads the OpenID discovery document of the configured authority and checks that its
  ``issuer`` belongs to that authority (OIDC Discovery §4.3) and that ``jwks_uri`` is https on
  the authority's own host and port (``on_authority_host``). Redirects are never followed;
  bodies are capped at 1 MiB; every fetch has a timeout.
- Keys are parsed once per fetch (PyJWT's ``PyJWK``), never per request. RSA keys under 2048
  bits, ``use: enc`` keys, other key types and unparseable keys are skipped.
- An unknown ``kid`` triggers at most one refetch per cooldown; concurrent callers share one
  fetch (single-flight). A failed or empty fetch keeps the last-known-good keys for a bounded
  time. With no keys at all, every lookup fails closed (``KeySetUnavailableError``) and
  fetches are retried with backoff.

Why not PyJWT's ``PyJWKClient``: it has no discovery/issuer check, no host check, no size cap,
no single-flight, and drops the key set on a failed fetch.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from .config import EntraConfig
from .errors import InvalidTokenError, KeySetUnavailableError

log = logging.getLogger("entra_auth.jwks")

MAX_BODY = 1024 * 1024
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class SigningKey:
    kid: str
    public_key: RSAPublicKey
    issuer: str | None  # the JWK's ``issuer`` member, when Entra publishes one


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    jwks_uri: str
    raw: dict[str, Any]

    issuer_base: str = ""  # ``scheme://host`` of the issuer: v2 issuers are {base}/{tid}/v2.0


class FetchError(Exception):
    """A discovery document or key set that could not be fetched or trusted (says why)."""


class JwksCache:
    """Signing keys of one authority. Thread-safe; share one per process."""

    def __init__(
        self,
        config: EntraConfig,
        *,
        session: requests.Session | None = None,
        timeout: float = 5.0,
        cooldown: float = 60.0,
        refresh_interval: float = 24 * 3600.0,
        max_stale: float = 24 * 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.timeout = timeout
        self.cooldown = cooldown
        self.refresh_interval = refresh_interval
        self.max_stale = max_stale
        self._clock = clock
        self._session = session or requests.Session()
        self._verify: str | bool = config.ca_bundle or True
        self._metadata: ProviderMetadata | None = None
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None  # when the current keys were fetched
        self._last_attempt: float | None = None
        self._last_kid_fetch: float | None = None
        self._failures = 0
        self._last_error = "no fetch has succeeded yet"
        self._version = 0
        self._fetch_lock = threading.Lock()

    # -- public -------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        """Changes whenever the set of keys changes: caches built on the keys check it."""
        return self._version

    @property
    def metadata(self) -> ProviderMetadata:
        if self._metadata is None:
            self._ensure_loaded()
        assert self._metadata is not None
        return self._metadata

    def load(self) -> None:
        """Fetch metadata and keys now; ``KeySetUnavailableError`` if that fails."""
        with self._fetch_lock:
            self._fetch_locked()
        if not self._keys:
            raise self._unavailable()

    def get(self, kid: str) -> SigningKey:
        """The key with this ``kid``; refetches once per cooldown for an unknown one."""
        self._ensure_loaded()
        now = self._clock()
        if self._fetched_at is not None and now - self._fetched_at > self.refresh_interval:
            self._refresh("stale", wait=False)  # one caller refreshes; the others go on
            if now - (self._fetched_at or now) > self.refresh_interval + self.max_stale:
                raise self._unavailable(stale=True)
        key = self._keys.get(kid)
        if key is not None:
            return key
        self._refresh("unknown_kid", wait=True)
        key = self._keys.get(kid)
        if key is not None:
            return key
        raise InvalidTokenError(
            "The token is signed with a key the tenant does not publish.",
            reason="unknown_key",
            remedy="Use a token issued by the configured tenant; if its keys just rotated, "
            "retry in a minute.",
        )

    def keys(self) -> dict[str, SigningKey]:
        self._ensure_loaded()
        return dict(self._keys)

    # -- fetching -----------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._keys:
            return
        self._refresh("empty", wait=True)
        if not self._keys:
            raise self._unavailable()

    def _due(self, why: str, now: float) -> bool:
        """May a fetch for this reason start now? Rate limits, so that no token can make this
        process hammer the identity provider."""
        if why == "unknown_kid":  # at most one refetch per cooldown for unknown key ids
            return self._last_kid_fetch is None or now - self._last_kid_fetch >= self.cooldown
        if why == "stale":
            return self._last_attempt is None or now - self._last_attempt >= self.cooldown
        # no keys at all: retry with backoff (1, 2, 4 ... seconds, up to the cooldown)
        if self._last_attempt is None:
            return True
        return now - self._last_attempt >= min(self.cooldown, 2.0 ** max(self._failures - 1, 0))

    def _refresh(self, why: str, *, wait: bool) -> None:
        if not self._fetch_lock.acquire(blocking=False):
            if wait:  # single-flight: wait for the fetch under way (it has its own timeouts)
                with self._fetch_lock:
                    pass
            return
        try:
            # Checked under the lock: another caller may have fetched while this one waited.
            now = self._clock()
            if self._due(why, now):
                if why == "unknown_kid":
                    self._last_kid_fetch = now
                self._fetch_locked()
        finally:
            self._fetch_lock.release()

    def _fetch_locked(self) -> None:
        self._last_attempt = self._clock()
        try:
            metadata = self._metadata or self.read_metadata()
            keys = self.read_keys(metadata.jwks_uri)
        except FetchError as exc:
            self._failures += 1
            self._last_error = str(exc)
            log.warning("Signing keys not refreshed: %s", exc)
            return
        self._metadata = metadata
        if set(keys) != set(self._keys) or any(
            keys[k].public_key.public_numbers() != self._keys[k].public_key.public_numbers()
            for k in keys
        ):
            self._version += 1
        self._keys = keys
        self._fetched_at = self._clock()
        self._failures = 0

    def _get_json(self, url: str, what: str) -> Any:
        try:
            response = self._session.get(
                url,
                timeout=(min(self.timeout, 3.05), self.timeout),
                allow_redirects=False,
                stream=True,
                verify=self._verify,
                headers={"Accept": "application/json"},
            )
        except requests.RequestException as exc:
            raise FetchError(
                f"{what} at {url} could not be fetched ({type(exc).__name__})."
            ) from None
        with response:
            if response.is_redirect or 300 <= response.status_code < 400:
                raise FetchError(f"{what} at {url} redirects; redirects are not followed.")
            if response.status_code != 200:
                raise FetchError(f"{what} at {url} answered HTTP {response.status_code}.")
            body = b""
            try:
                for chunk in response.iter_content(64 * 1024):
                    body += chunk
                    if len(body) > MAX_BODY:
                        raise FetchError(f"{what} at {url} is larger than 1 MiB.")
            except requests.RequestException as exc:
                raise FetchError(f"{what} at {url} broke off ({type(exc).__name__}).") from None
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise FetchError(f"{what} at {url} is not JSON.") from None

    def read_metadata(self) -> ProviderMetadata:
        url = self.config.metadata_url
        doc = self._get_json(url, "The discovery document")
        if not isinstance(doc, dict):
            raise FetchError(f"The discovery document at {url} is not a JSON object.")
        issuer, jwks_uri = doc.get("issuer"), doc.get("jwks_uri")
        if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
            raise FetchError(f"The discovery document at {url} lacks issuer or jwks_uri.")
        if not self._issuer_matches_authority(issuer):
            raise FetchError(
                f"The discovery document's issuer {issuer!r} does not belong to the configured "
                f"authority {self.config.authority}."
            )
        if not on_authority_host(jwks_uri, str(self.config.authority)):
            raise FetchError(
                f"The discovery document's jwks_uri {jwks_uri!r} is not https on "
                f"{urlsplit(str(self.config.authority)).netloc}."
            )
        parts = urlsplit(issuer)
        return ProviderMetadata(issuer, jwks_uri, doc, f"{parts.scheme}://{parts.netloc}")

    def _issuer_matches_authority(self, issuer: str) -> bool:
        authority = urlsplit(str(self.config.authority))
        expected_base = f"https://{authority.netloc.lower()}/"
        if not issuer.startswith(expected_base) or not issuer.endswith("/v2.0"):
            return False
        tenant = issuer[len(expected_base) : -len("/v2.0")]
        if self.config.is_multi_tenant:
            return tenant == "{tenantid}"
        if self.config.tenant_id is not None:
            return tenant == self.config.tenant_id
        return "/" not in tenant and tenant != "{tenantid}"  # authority by domain name

    def read_keys(self, url: str) -> dict[str, SigningKey]:
        doc = self._get_json(url, "The key set")
        raw_keys = doc.get("keys") if isinstance(doc, dict) else None
        if not isinstance(raw_keys, list):
            raise FetchError(f"The key set at {url} has no 'keys' list.")
        keys: dict[str, SigningKey] = {}
        for raw in raw_keys:
            key = _signing_key(raw)
            if key is not None:
                keys[key.kid] = key
        if not keys:
            raise FetchError(f"The key set at {url} holds no usable RSA signing key.")
        return keys

    def _unavailable(self, stale: bool = False) -> KeySetUnavailableError:
        detail = self._last_error
        return KeySetUnavailableError(
            (
                "The signing keys are too old to trust and cannot be refreshed: "
                if stale
                else "The identity provider's signing keys are unavailable: "
            )
            + detail,
            remedy=f"Check that {self.config.authority} is reachable from this server "
            "(network, proxy, ENTRA_CA_BUNDLE) and that ENTRA_AUTHORITY names the right tenant.",
        )


def on_authority_host(url: str, authority: str) -> bool:
    """Is ``url`` https on exactly the authority's host and port?

    The one rule for every URL from a discovery document that is then called (``jwks_uri``, and
    ``doctor``'s ``token_endpoint``): a document that is wrong or was rewritten on the way (an
    intercepting proxy) must not send key fetches, or the client secret, to another host or
    over plain http.
    """
    # Whitespace, control characters and backslashes are refused outright: urlsplit drops tabs
    # and newlines, and HTTP clients read backslashes their own way, so the host we compare
    # could differ from the host that is called.
    if not url.isascii() or "\\" in url or any(c <= " " or c == "\x7f" for c in url):
        return False
    try:
        target, base = urlsplit(url), urlsplit(authority)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    # netloc, not hostname: user info ("user@host") and the port must match too.
    return target.scheme == "https" and target.netloc.lower() == base.netloc.lower()


def _signing_key(raw: object) -> SigningKey | None:
    """A usable RS256 verification key from one JWK, or None (and a debug line) to skip it."""
    if not isinstance(raw, dict):
        return None
    kid = raw.get("kid")
    if not isinstance(kid, str) or not kid:
        return None
    if raw.get("kty") != "RSA" or raw.get("use", "sig") != "sig":
        log.debug("Skipping key %s: not an RSA signing key.", kid)
        return None
    if raw.get("alg") not in (None, "RS256"):
        return None
    try:
        public_key = jwt.PyJWK(raw, algorithm="RS256").key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        log.debug("Skipping key %s: it does not parse.", kid)
        return None
    if not isinstance(public_key, RSAPublicKey) or public_key.key_size < MIN_RSA_BITS:
        log.debug("Skipping key %s: RSA keys under %d bits are not trusted.", kid, MIN_RSA_BITS)
        return None
    issuer = raw.get("issuer")
    return SigningKey(kid, public_key, issuer if isinstance(issuer, str) else None)
