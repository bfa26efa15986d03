"""Token validation: ``AccessTokenValidator`` for APIs, ``IdTokenValidator`` for sign-in.

Order of checks, for every token: shape and header (RS256 only, a ``kid``, no ``crit``, no
``zip``), then the RS256 signature against the tenant's key (``JwksCache``), and only then the
claims, each in a method of its own (PyJWT's layout): version, issuer, tenant, the signing
key's own issuer, audience, times, kind of token. A forged token is refused as forged before
any claim is read for a decision, with one exception that only chooses between two refusals: a
header carrying a ``nonce`` with a Microsoft Graph audience is refused as a Graph token before
its signature is checked. Graph signs over a hash of that nonce, so the signature of a real
Graph token never verifies with the published key, and "forged" would send the developer the
wrong way.

The tenant is the configuration's: its GUID (ENTRA_TENANT_ID or the authority's), the fixed
tenant of ``/consumers``, or, for an authority named by a verified domain, the GUID the
discovery document's issuer names (learned with the keys, on the first token).

Sync and async validation are one validator: ``validate``/``authenticate`` with a sync key
source (``JwksCache``, ``StaticKeys``), ``validate_async``/``authenticate_async`` with either
kind (``AsyncJwksCache`` for asyncio apps). Only the key lookup differs between them: the
parsing, the signature check, every claim check and the validated-token cache are the same
methods, so the two cannot drift apart. A sync call on an async key source is refused with a
``ConfigurationError`` saying to await ``validate_async``.

The compact JWS (shape, strict base64url, JSON without duplicate members, header) is parsed by
``_jws``, which says why it is not PyJWT. The cryptography is ``cryptography``'s RSA PKCS#1 v1.5
/ SHA-256 verify; nothing else is custom.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NoReturn, cast
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from ._jws import MAX_TOKEN_LENGTH as MAX_TOKEN_LENGTH  # the bound's old home, kept for importers
from ._jws import decode_payload, parse
from .challenges import auth_context_claims
from .config import EntraConfig
from .errors import (
    ConfigurationError,
    InsufficientClaimsError,
    InsufficientScopeError,
    InvalidTokenError,
)
from .keys import AsyncKeySource, JwksCache, KeySource, PublishedKeys, SigningKey

# Microsoft Graph's audiences, in every cloud Microsoft lists ("Troubleshoot access token
# signature validation errors"): tokens only Graph can validate.
GRAPH_AUDIENCES = frozenset(
    {
        "00000003-0000-0000-c000-000000000000",
        "https://graph.microsoft.com",
        "https://graph.microsoft.com/",
        "https://graph.microsoft.us",
        "https://graph.microsoft.us/",
        "https://dod-graph.microsoft.us",
        "https://dod-graph.microsoft.us/",
    }
)
_GRAPH_REMEDY = (
    "Request a token for this API's scope (api://<app id>/<scope>), not for Graph (User.Read)."
)
# Distinct ``scp`` values remembered per validator, as their sets of scopes.
MAX_SCOPE_SETS = 256
_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


@dataclass(frozen=True)
class Principal:
    """Who a validated token speaks for. Identity is ``oid`` + ``tid``; never email or UPN."""

    oid: str
    tid: str
    sub: str
    scopes: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    name: str | None = None
    client_id: str | None = None
    app_only: bool = False
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # The access token this principal was validated from (None for an ID token's user or a
    # principal made by hand): what on-behalf-of exchanges, so that only a validated token is.
    token: str | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        """The stable identity to key data and authorization on."""
        return (self.oid, self.tid)

    @property
    def username(self) -> str | None:
        """For display only (mutable and reassignable: never authorize on it)."""
        value = self.claims.get("preferred_username") or self.claims.get("upn")
        return value if isinstance(value, str) else None


_NO_NAMES: frozenset[str] = frozenset()
_is_str = str.__instancecheck__  # isinstance(value, str), as a function for map()
_new_object = object.__new__
_set_attribute = object.__setattr__


def _principal(
    oid: str,
    tid: str,
    sub: str,
    scopes: frozenset[str],
    roles: frozenset[str],
    name: object,
    client_id: str | None,
    app_only: bool,
    claims: dict[str, Any],
    token: str | None = None,
) -> Principal:
    """A ``Principal`` for the validators, equal to the one ``Principal(...)`` builds.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``; the cold
    path sets them all at once instead, a microsecond less per token. The claims are wrapped
    read-only: a principal lives on in the validated-token cache, shared between requests.
    """
    principal: Principal = _new_object(Principal)
    _set_attribute(
        principal,
        "__dict__",
        {
            "oid": oid,
            "tid": tid,
            "sub": sub,
            "scopes": scopes,
            "roles": roles,
            "name": name if isinstance(name, str) else None,
            "client_id": client_id,
            "app_only": app_only,
            "claims": MappingProxyType(claims),
            "token": token,
        },
    )
    return principal


def _refuse(message: str, reason: str, remedy: str | None = None) -> InvalidTokenError:
    return InvalidTokenError(message, reason=reason, remedy=remedy)


# NumericDate bounds (RFC 7519 §2): 1970 up to the last second of year 9999. A date outside
# them is no date any issuer writes; accepting 10**300 as `exp` would make a never-expiring token.
MAX_NUMERIC_DATE = 253_402_300_799


def _refuse_date(name: str, value: object) -> NoReturn:
    """The refusal of a time claim that is not a NumericDate (the check itself is inline)."""
    if value is None:
        raise _refuse(f"The token has no '{name}' claim.", "missing_claim")
    if type(value) is not int:  # bool is an int subclass; floats and strings are refused
        raise _refuse(f"The token's '{name}' claim is not a whole number.", "malformed")
    raise _refuse(f"The token's '{name}' claim is not a valid date.", "malformed")


def _use_validate_async() -> ConfigurationError:
    return ConfigurationError(
        "This validator's key source is asynchronous (an AsyncKeySource such as AsyncJwksCache): "
        "the sync validate() and authenticate() cannot use it without blocking the event loop.",
        remedy="Call `await validator.validate_async(token, scopes=..., roles=...)` (or "
        "authenticate_async), or give the validator a sync key source (JwksCache, StaticKeys).",
        code="async_key_source",
    )


def _is_async_source(keys: object) -> bool:
    """Is ``keys.get`` a coroutine function (an ``AsyncKeySource``)?"""
    return inspect.iscoroutinefunction(getattr(keys, "get", None))


def _str_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise _refuse(f"The token's '{name}' claim is missing or not a string.", "missing_claim")
    return value


class _TokenValidator:
    """What ID and access tokens share: signature, issuer, tenant and time checks."""

    def __init__(
        self,
        config: EntraConfig,
        keys: KeySource | AsyncKeySource | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.config = config
        # Any key source: the tenant's published key set (default), StaticKeys, or an async
        # one (AsyncJwksCache) for validate_async.
        source: KeySource | AsyncKeySource = JwksCache(config) if keys is None else keys
        self.jwks = source
        self._async_keys: AsyncKeySource | None = None
        self._sync_keys: KeySource | None = None
        if _is_async_source(source):
            self._async_keys = cast(AsyncKeySource, source)
        else:
            self._sync_keys = cast(KeySource, source)
        # Decided once: an ABC's isinstance is no cheap check on a token's path.
        self._published = source if isinstance(source, PublishedKeys) else None
        # An authority named by domain: the tenant's GUID is the discovery document's to tell,
        # and only a key set found through discovery has one. Keys given (StaticKeys) need
        # ENTRA_TENANT_ID instead: the validators require it at start.
        self._discovered = self._published if config.tenant_by_domain else None
        self._tenant_required: tuple[str, ...] = (
            ("tenant_id",) if config.tenant_by_domain and self._discovered is None else ()
        )
        # v2 issuers are https://<the authority's host>/<tid>/v2.0: known from the configuration,
        # so a key source needs no discovery document (StaticKeys in an air-gapped job).
        self._issuer_base = "https://" + urlsplit(str(config.authority)).netloc.lower()
        self._clock = clock
        # Headers repeat (one per signing key): parse and check each distinct one once.
        self._headers: dict[str, dict[str, Any]] = {}
        # What the claim checks read from the (frozen) configuration, derived once rather than
        # per token: ``is_multi_tenant`` alone parses the authority URL.
        self._leeway = config.leeway
        self._allow_guests = config.allow_guests
        self._tenant_id = config.tenant_id
        self._tenants: frozenset[str] | None = None  # None: the configured tenant only
        if config.is_multi_tenant or config.allowed_tenants:
            allowed = {t.lower() for t in config.allowed_tenants}
            if config.tenant_id:
                allowed.add(config.tenant_id)
            self._tenants = frozenset(allowed)

    # -- signature first --------------------------------------------------------------------
    def _verified_claims(self, token: object) -> tuple[SigningKey, dict[str, Any]]:
        """The key that verified the token, and its claims (``InvalidTokenError`` if none)."""
        source = self._sync_keys
        if source is None:
            raise _use_validate_async()
        header, signing_input, signature, payload = self._signed_parts(token)
        key = source.get(header["kid"])
        return key, self._verified_payload(key, signing_input, signature, payload)

    def _key_now(self, kid: str) -> SigningKey | None:
        """The key when it can be had without waiting (keys given; a published set's fresh
        key), else None: ``_key_async`` then awaits it. Most tokens are signed by a known key,
        and a coroutine not made is time a cold validation does not spend."""
        if self._published is not None:  # AsyncJwksCache, JwksCache
            return self._published.known(kid)
        if self._sync_keys is not None:  # keys given (StaticKeys): in memory, never blocks
            return self._sync_keys.get(kid)
        return None

    async def _key_async(self, kid: str) -> SigningKey:
        if self._async_keys is not None:
            return await self._async_keys.get(kid)
        source = self._sync_keys
        assert source is not None  # one of the two is set
        if isinstance(source, JwksCache):
            return await asyncio.to_thread(source.get, kid)  # may fetch (requests, blocking)
        return source.get(kid)

    def _signed_parts(self, token: object) -> tuple[dict[str, Any], bytes, bytes, str]:
        """The token's checked header, signing input, signature and (undecoded) payload."""
        header, signing_input, signature, payload = parse(token, self._headers)
        if "nonce" in header:  # Graph's mark; no other Entra token has a header nonce
            self._refuse_graph_token(payload)
        return header, signing_input, signature, payload

    @staticmethod
    def _verified_payload(
        key: SigningKey, signing_input: bytes, signature: bytes, payload: str
    ) -> dict[str, Any]:
        try:
            key.public_key.verify(signature, signing_input, _PKCS1, _SHA256)
        except InvalidSignature:
            raise _refuse(
                "The token's signature does not verify with the tenant's key.",
                "bad_signature",
                remedy="The token was altered or not issued by the configured tenant.",
            ) from None
        return decode_payload(payload)

    _graph_remedy = _GRAPH_REMEDY

    def _refuse_graph_token(self, payload: str) -> None:
        """Refuse a Microsoft Graph token as what it is, from its unverified audience.

        Never an acceptance: it only names the refusal. Any other token with a header nonce
        goes on to the signature check, which decides."""
        try:
            aud = decode_payload(payload).get("aud")
        except InvalidTokenError:
            return  # not even JSON: the signature check refuses it for what it is
        if isinstance(aud, str) and aud in GRAPH_AUDIENCES:
            raise _refuse(
                "The token is an access token for Microsoft Graph (its header carries Graph's "
                "nonce and its audience is Graph, read without verifying): only Graph can "
                "validate it, and it is not for this app.",
                "graph_token",
                remedy=self._graph_remedy,
            )

    # -- claims -----------------------------------------------------------------------------
    def _learn_tenant(self, source: PublishedKeys) -> str:
        """The GUID of a tenant named by domain, from the discovery document's issuer (checked
        against the authority's host when it was read)."""
        tenant = source.metadata.tenant_id
        if tenant is None:  # parse_metadata refuses such a document: never reached
            raise ConfigurationError(
                "The discovery document names no tenant.",
                remedy="Set ENTRA_TENANT_ID to your Directory (tenant) ID.",
            )
        if self._tenants is not None:
            self._tenants = self._tenants | {tenant}
        self._tenant_id = tenant
        self._discovered = None  # learned once: the tenant of an authority does not change
        return tenant

    def _check_tenant(self, claims: Mapping[str, Any]) -> str:
        tid = _str_claim(claims, "tid")
        source = self._discovered  # read once: another thread may be learning it right now
        if source is not None:
            self._learn_tenant(source)
        if self._tenants is not None:
            if tid.lower() not in self._tenants:
                raise _refuse(
                    "The token was issued by a tenant this API does not accept.",
                    "wrong_tenant",
                    remedy="Add the tenant to ENTRA_ALLOWED_TENANTS if it should be accepted.",
                )
        elif tid.lower() != self._tenant_id:
            raise _refuse(
                "The token was issued by another tenant than the configured one.",
                "wrong_tenant",
                remedy="Request the token from the tenant in ENTRA_TENANT_ID.",
            )
        if not self._allow_guests:
            idp = claims.get("idp")
            if idp is not None and idp != self.config.v1_issuer_template.format(tenantid=tid):
                raise _refuse("Guest accounts are not accepted here.", "guest_refused")
        return tid

    def _check_issuer(self, claims: Mapping[str, Any], tid: str, version: str) -> None:
        if version == "1.0":
            expected = self.config.v1_issuer_template.format(tenantid=tid)
        else:
            expected = f"{self._issuer_base}/{tid}/v2.0"
        if claims.get("iss") != expected:
            raise _refuse(
                "The token's issuer is not the configured tenant's.",
                "wrong_issuer",
                remedy="Use a token from the tenant and cloud in ENTRA_AUTHORITY.",
            )

    def _check_key_issuer(
        self, key: SigningKey, claims: Mapping[str, Any], tid: str, version: str
    ) -> None:
        """The key that signed must be one Entra publishes for the token's issuer: a key set
        (the common one above all) mixes keys of different issuers, and a key of one issuer
        must not vouch for a token claiming another (Microsoft: "Validate the signing key
        issuer"). Keys carry v2 issuers only; a v1 token (``iss`` sts.windows.net, already
        checked to be its tenant's) is held to its tenant's v2 issuer, as
        Microsoft.IdentityModel does."""
        iss = claims.get("iss") if version == "2.0" else f"{self._issuer_base}/{tid}/v2.0"
        if not key.signs_for(iss, tid):
            raise _refuse(
                "The token is signed by a key the key set publishes for another issuer than "
                "the token's.",
                "wrong_key_issuer",
                remedy="The token was not issued by the tenant it names: use a token from the "
                "configured tenant.",
            )

    def _check_times(self, claims: Mapping[str, Any], now: float) -> int:
        leeway = self._leeway
        exp = claims.get("exp")
        # A whole number of seconds in range (``type`` rather than isinstance: no bool).
        if type(exp) is not int or not 0 <= exp <= MAX_NUMERIC_DATE:
            _refuse_date("exp", exp)
        if now > exp + leeway:
            minutes = int((now - exp) // 60)
            raise _refuse(
                f"The token expired {minutes} min ago.",
                "expired",
                remedy="Get a new token (MSAL's acquire_token_silent refreshes it).",
            )
        nbf = claims.get("nbf")
        if nbf is not None:
            if type(nbf) is not int or not 0 <= nbf <= MAX_NUMERIC_DATE:
                _refuse_date("nbf", nbf)
            if nbf > now + leeway:
                raise _refuse(
                    "The token is not valid yet (nbf is in the future).",
                    "not_yet_valid",
                    remedy="Check this server's clock.",
                )
        iat = claims.get("iat")
        if iat is not None:
            if type(iat) is not int or not 0 <= iat <= MAX_NUMERIC_DATE:
                _refuse_date("iat", iat)
            if iat > now + leeway:
                raise _refuse(
                    "The token claims to be issued in the future.",
                    "issued_in_future",
                    remedy="Check this server's clock.",
                )
        return exp


class AccessTokenValidator(_TokenValidator):
    """Validates bearer tokens sent to this app's own API and returns a ``Principal``.

    ``validate`` (sync) or ``await validate_async`` (asyncio apps; the only one an async key
    source such as ``AsyncJwksCache`` allows). Validated tokens are remembered (bounded, by
    SHA-256 of the token) until their ``exp`` or a change of the key set, so a hot endpoint pays
    one RSA verification per token, not per call.
    """

    def __init__(
        self,
        config: EntraConfig,
        keys: KeySource | AsyncKeySource | None = None,
        *,
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
    ):
        super().__init__(config, keys, clock=clock)
        config.require(*self._tenant_required, "api_audiences")
        self._audiences = frozenset(config.audiences)
        self._versions = config.accepted_token_versions
        # ``scp`` values repeat (one per client app and consent): split each distinct one once.
        self._scope_sets: dict[str, frozenset[str]] = {}
        self._cache: OrderedDict[bytes, tuple[Principal, int, int]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    def validate(
        self,
        token: object,
        *,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        app_only: bool = False,
        auth_contexts: Iterable[str] = (),
    ) -> Principal:
        """The token's principal, after every check; raises ``InvalidTokenError`` (→ 401),
        ``InsufficientScopeError`` (→ 403) or, for an authentication context (``acrs``) the
        token lacks, ``InsufficientClaimsError`` (→ 401 with the claims to ask for)."""
        principal = self.authenticate(token)
        self._authorize(principal, scopes, roles, app_only, auth_contexts)
        return principal

    def _authorize(
        self,
        principal: Principal,
        scopes: Iterable[str],
        roles: Iterable[str],
        app_only: bool,
        auth_contexts: Iterable[str] = (),
    ) -> None:
        self.authorize(
            principal,
            scopes=scopes,
            roles=roles,
            app_only=app_only,
            apps_without_roles=self.config.allow_apps_without_roles,
            auth_contexts=auth_contexts,
        )

    def authenticate(self, token: object) -> Principal:
        """The token's principal after every check but authorization (``validate`` without
        ``scopes``/``roles``)."""
        if self._sync_keys is None:
            raise _use_validate_async()
        now = self._clock()
        digest = self._digest(token)
        if digest is not None:
            hit = self._cached(digest, now)
            if hit is not None:
                return hit
        # The key set's version before the verification: a change during it drops the entry.
        version = self.jwks.version if digest is not None else 0
        principal, exp = self._validate_uncached(token, now)
        if digest is not None:
            self._remember(digest, principal, exp, version)
        return principal

    async def validate_async(
        self,
        token: object,
        *,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        app_only: bool = False,
        auth_contexts: Iterable[str] = (),
    ) -> Principal:
        """``validate`` for asyncio apps: the same checks, errors and validated-token cache;
        the key is looked up without blocking the event loop (an ``AsyncKeySource`` such as
        ``AsyncJwksCache``; a sync ``JwksCache`` fetches in a thread; ``StaticKeys`` as is)."""
        principal = await self.authenticate_async(token)
        self._authorize(principal, scopes, roles, app_only, auth_contexts)
        return principal

    async def authenticate_async(self, token: object) -> Principal:
        """``authenticate`` for asyncio apps (see ``validate_async``)."""
        now = self._clock()
        digest = self._digest(token)
        if digest is not None:
            hit = self._cached(digest, now)
            if hit is not None:
                return hit
        version = self.jwks.version if digest is not None else 0
        # ``_verified_claims`` with the key looked up without blocking the event loop, written
        # out here: each coroutine level is time a cold validation spends (bench_fastapi).
        header, signing_input, signature, payload = self._signed_parts(token)
        kid = header["kid"]
        key = self._key_now(kid)
        if key is None:
            key = await self._key_async(kid)
        claims = self._verified_payload(key, signing_input, signature, payload)
        principal, exp = self._checked_claims(key, claims, now, token)
        if digest is not None:
            self._remember(digest, principal, exp, version)
        return principal

    # -- the validated-token cache, shared by both ------------------------------------------
    def _digest(self, token: object) -> bytes | None:
        if isinstance(token, str) and self._cache_size:
            return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        return None

    def _cached(self, digest: bytes, now: float) -> Principal | None:
        """The principal remembered for this token, while its ``exp`` and the key set last."""
        with self._cache_lock:
            hit = self._cache.get(digest)
            if hit is not None:
                principal, exp, version = hit
                if now <= exp and version == self.jwks.version:
                    self._cache.move_to_end(digest)
                    return principal
                del self._cache[digest]
        return None

    def _remember(self, digest: bytes, principal: Principal, exp: int, version: int) -> None:
        with self._cache_lock:
            self._cache[digest] = (principal, exp, version)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    # -- the checks, shared by both -----------------------------------------------------------
    def _validate_uncached(self, token: object, now: float) -> tuple[Principal, int]:
        key, claims = self._verified_claims(token)
        return self._checked_claims(key, claims, now, token)

    def _checked_claims(
        self, key: SigningKey, claims: dict[str, Any], now: float, token: object
    ) -> tuple[Principal, int]:
        # What the token is, then whom it is for: "an ID token", "a Graph token", "another app's
        # token" are the diagnoses that help, whatever else is also wrong with it.
        scopes, roles, client_id = self._check_access_token_kind(claims)
        self._check_audience(claims)
        version = self._check_version(claims)
        tid = self._check_tenant(claims)
        self._check_issuer(claims, tid, version)
        self._check_key_issuer(key, claims, tid, version)
        exp = self._check_times(claims, now)
        oid = _str_claim(claims, "oid")
        sub = _str_claim(claims, "sub")
        app_only = self._is_app_only(claims, scopes, oid, sub)
        principal = _principal(
            oid,
            tid,
            sub,
            scopes,
            roles,
            claims.get("name"),
            client_id,
            app_only,
            claims,
            token if isinstance(token, str) else None,
        )
        return principal, exp

    def _check_version(self, claims: Mapping[str, Any]) -> str:
        version = claims.get("ver")
        if version not in ("1.0", "2.0"):
            raise _refuse("The token has no valid 'ver' claim.", "malformed")
        if version not in self._versions:
            if version == "1.0":
                raise _refuse(
                    "The token is a v1 access token, and this API accepts v2 only.",
                    "wrong_version",
                    remedy="An API registered in the portal gets v1 tokens until its manifest "
                    'says "requestedAccessTokenVersion": 2 (under "api"): set it, or accept v1 '
                    "with ENTRA_ACCEPTED_TOKEN_VERSIONS=1,2.",
                )
            raise _refuse(
                "The token is a v2 access token, and this API accepts v1 only.",
                "wrong_version",
                remedy="Accept v2 with ENTRA_ACCEPTED_TOKEN_VERSIONS=2 (or 1,2).",
            )
        return str(version)

    def _check_audience(self, claims: Mapping[str, Any]) -> None:
        aud = claims.get("aud")
        if not isinstance(aud, str):
            raise _refuse("The token's audience is missing or not a single string.", "malformed")
        if aud in self._audiences:
            return
        if aud in GRAPH_AUDIENCES:
            raise _refuse(
                "The token's audience is Microsoft Graph, not this API.",
                "graph_token",
                remedy=_GRAPH_REMEDY,
            )
        raise _refuse(
            "The token's audience is another application, not this API.",
            "wrong_audience",
            remedy="Request the token for this API's scope; accepted audiences are set by "
            "ENTRA_API_AUDIENCE.",
        )

    def _check_access_token_kind(
        self, claims: Mapping[str, Any]
    ) -> tuple[frozenset[str], frozenset[str], str]:
        """Scopes, roles and the calling app's id, or a refusal when this is no access token.

        What tells the kinds apart is what only an access token carries: the calling app
        (``azp`` in v2, ``appid`` in v1) and ``scp`` or ``roles``. An ID token has neither
        client claim and may carry a sign-in ``nonce``; it can carry ``roles`` (the user's
        assigned app roles) and, when one registration signs users in and exposes an API, this
        API's audience, so audience and roles alone prove nothing (HX01).
        """
        scp, roles = claims.get("scp"), claims.get("roles")
        client_claim = "appid" if claims.get("ver") == "1.0" else "azp"
        client = claims.get(client_claim)
        # An app's own token (client credentials) for an API that granted the app no role has
        # neither: an access token still (the calling app, no nonce, its subject the app's
        # service principal), refused by ``authorize`` with the reason (403), not as an ID token.
        app_without_roles = (
            scp is None
            and roles is None
            and client is not None
            and "nonce" not in claims
            and (claims.get("idtyp") == "app" or claims.get("sub") == claims.get("oid"))
        )
        if (
            (scp is None and roles is None and not app_without_roles)
            or client is None
            or "nonce" in claims
        ):
            raise _refuse(
                "The token is not an access token: it has "
                + (
                    "neither 'scp' nor 'roles'"
                    if scp is None and roles is None
                    else f"no '{client_claim}' (the calling app)"
                    if client is None
                    else "a sign-in 'nonce'"
                )
                + ", as an ID token does (an ID token sent as a bearer token?).",
                "not_an_access_token",
                remedy="Send an access token for this API, not the ID token.",
            )
        if not isinstance(client, str) or not client:
            raise _refuse(f"The token's '{client_claim}' claim is not a string.", "malformed")
        if scp is not None and not isinstance(scp, str):
            raise _refuse("The token's 'scp' claim is not a string.", "malformed")
        # all(map(...)) rather than a generator: the loop stays in C, once per token.
        if roles is not None and (not isinstance(roles, list) or not all(map(_is_str, roles))):
            raise _refuse("The token's 'roles' claim is not a list of strings.", "malformed")
        scopes = _NO_NAMES
        if scp:
            known = self._scope_sets.get(scp)
            if known is None:
                known = frozenset(scp.split())
                if len(self._scope_sets) < MAX_SCOPE_SETS:  # bounded: tokens choose their scp
                    self._scope_sets[scp] = known
            scopes = known
        return scopes, frozenset(roles) if roles else _NO_NAMES, client

    @staticmethod
    def _is_app_only(claims: Mapping[str, Any], scopes: frozenset[str], oid: str, sub: str) -> bool:
        """Entra's rule (access-token claims reference): ``idtyp`` when the app registration
        asks for it, which is the exact answer; without it, an app-only token has no ``scp`` and
        its ``sub`` is its ``oid`` (the service principal). A user's token carrying only
        ``roles`` (assigned app roles, no scope) is still a user's (HX02)."""
        idtyp = claims.get("idtyp")
        if idtyp is None:
            return not scopes and sub == oid
        if idtyp not in ("app", "user"):
            raise _refuse("The token's 'idtyp' claim is neither 'app' nor 'user'.", "malformed")
        if idtyp == "app" and scopes:
            raise _refuse(
                "The token says it is app-only ('idtyp') but carries delegated scopes.",
                "malformed",
            )
        return bool(idtyp == "app")

    @classmethod
    def authorize(
        cls,
        principal: Principal,
        *,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        app_only: bool = False,
        apps_without_roles: bool = False,
        auth_contexts: Iterable[str] = (),
    ) -> None:
        """Exact-match authorization (``_authorize_permissions``), then the authentication
        contexts (``_validate_acrs``): ``InsufficientScopeError`` (403) or
        ``InsufficientClaimsError`` (401 with the claims to sign in with)."""
        cls._authorize_permissions(
            principal,
            scopes=scopes,
            roles=roles,
            app_only=app_only,
            apps_without_roles=apps_without_roles,
        )
        if auth_contexts:
            _validate_acrs(principal, tuple(auth_contexts))

    @staticmethod
    def _authorize_permissions(
        principal: Principal,
        *,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        app_only: bool = False,
        apps_without_roles: bool = False,
    ) -> None:
        """Exact-match authorization.

        ``scopes`` only: a delegated token carrying every scope. ``roles`` only: a token (app-only
        or a user's assigned app roles) carrying every role. Both: a delegated token is checked
        for the scopes, an app-only token for the roles. ``app_only``: app permissions only, a
        user's token is refused (Microsoft.Identity.Web's app-permission policies).

        Whatever the endpoint asks, an app-only token without an app role of this API is refused:
        any app of the tenant can get one, so it proves nothing but the tenant
        (Microsoft.Identity.Web refuses it too, unless ``AllowWebApiToBeAuthorizedByACL``:
        ``apps_without_roles``, ``ENTRA_ALLOW_APPS_WITHOUT_ROLES``, for an API that checks the
        calling app's id itself).
        """
        need_scopes, need_roles = tuple(scopes), tuple(roles)
        if principal.app_only and not principal.roles and not apps_without_roles:
            raise InsufficientScopeError(
                "The app-only token carries no app role of this API: the calling app was "
                "granted no application permission on it.",
                scopes=need_scopes,
                roles=need_roles,
                remedy="Grant the calling app an application permission (app role) of this API "
                "and admin-consent it (API permissions → Add a permission → My APIs → "
                "Application permissions).",
            )
        if app_only and not principal.app_only:
            raise InsufficientScopeError(
                "This endpoint takes app permissions only (an app's own token), not a user's.",
                scopes=need_scopes,
                roles=need_roles,
                remedy="Call it with the app's token (client credentials, a managed identity), "
                "not one acquired for a signed-in user.",
            )
        if not need_scopes and not need_roles:
            return
        if need_scopes and (not need_roles or not principal.app_only):
            if principal.app_only or not principal.scopes.issuperset(need_scopes):
                missing = [s for s in need_scopes if s not in principal.scopes]
                raise InsufficientScopeError(
                    "The token lacks a scope this endpoint requires"
                    + (
                        " (an app-only token has no delegated scopes)."
                        if principal.app_only
                        else f": {' '.join(missing)}."
                    ),
                    scopes=need_scopes,
                    remedy="Request a delegated token with the scope(s) listed in 'scope'.",
                )
            return
        if not principal.roles.issuperset(need_roles):
            missing = [r for r in need_roles if r not in principal.roles]
            raise InsufficientScopeError(
                f"The token lacks an app role this endpoint requires: {' '.join(missing)}.",
                scopes=need_scopes,
                roles=need_roles,
                remedy="Assign the app role to the calling app (admin consent) or the user.",
            )


def auth_context_names(auth_context: str | Iterable[str]) -> tuple[str, ...]:
    """An endpoint's ``auth_context`` (one id such as ``"c1"``, or several) as a tuple."""
    return (auth_context,) if isinstance(auth_context, str) else tuple(auth_context)


def _validate_acrs(principal: Principal, required: tuple[str, ...]) -> None:
    """Every authentication context ``required`` must be in the token's ``acrs`` (Conditional
    Access authentication context: Entra puts a context there once the user satisfied its
    policy, MFA for instance). Otherwise ``InsufficientClaimsError`` with the claims request
    for the missing ones, which the caller passes to Entra (MSAL's ``claims_challenge``).

    App-only tokens are not checked: authentication contexts apply to users' sign-ins, and an
    app can satisfy none (an endpoint that must refuse apps says ``app_only`` or scopes)."""
    if principal.app_only:
        return
    acrs = principal.claims.get("acrs")
    held = {v for v in acrs if isinstance(v, str)} if isinstance(acrs, list) else set()
    missing = [c for c in required if c not in held]
    if missing:
        raise InsufficientClaimsError(
            "This operation needs a stronger sign-in (authentication context "
            f"{', '.join(missing)}) than the token carries.",
            claims=auth_context_claims(*missing),
            remedy="Acquire a new token with the claims of the challenge (MSAL: "
            "claims_challenge=...): the user goes through the sign-in page once.",
        )


class IdTokenValidator(_TokenValidator):
    """Verifies the ID token of a sign-in (MSAL does not check its signature, issuer, audience
    or expiry)."""

    def __init__(
        self,
        config: EntraConfig,
        keys: KeySource | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ):
        if keys is not None and _is_async_source(keys):
            raise ConfigurationError(
                "IdTokenValidator takes a sync key source; it was given an async one.",
                remedy="Give it a JwksCache (sign-in runs in MSAL's sync flow) or StaticKeys.",
                code="async_key_source",
            )
        super().__init__(config, keys, clock=clock)
        config.require(*self._tenant_required, "client_id")

    _graph_remedy = "Pass the ID token of the sign-in, not an access token for Microsoft Graph."

    def validate(self, token: object, *, nonce: str | None) -> Principal:
        """The signed-in user; ``nonce`` is the value the ID token must carry (MSAL sends the
        SHA-256 hex of its flow's nonce). None skips the check (refreshed ID tokens have none)."""
        key, claims = self._verified_claims(token)
        tid = self._check_tenant(claims)
        self._check_issuer(claims, tid, "2.0")
        self._check_key_issuer(key, claims, tid, "2.0")
        self._check_audience(claims)
        self._check_times(claims, self._clock())
        if claims.get("iat") is None:
            raise _refuse("The ID token has no 'iat' claim.", "missing_claim")
        self._check_nonce(claims, nonce)
        oid = _str_claim(claims, "oid")
        sub = _str_claim(claims, "sub")
        roles = claims.get("roles")
        return _principal(
            oid=oid,
            tid=tid,
            sub=sub,
            scopes=_NO_NAMES,
            roles=frozenset(r for r in roles if isinstance(r, str))
            if isinstance(roles, list)
            else _NO_NAMES,
            name=claims.get("name"),
            client_id=self.config.client_id,
            app_only=False,
            claims=claims,
        )

    def _check_audience(self, claims: Mapping[str, Any]) -> None:
        aud, client_id = claims.get("aud"), self.config.client_id
        if isinstance(aud, str):
            if aud != client_id:
                raise _refuse("The ID token was issued to another application.", "wrong_audience")
            return
        if not isinstance(aud, list) or client_id not in aud:
            raise _refuse("The ID token was issued to another application.", "wrong_audience")
        if len(aud) > 1 and claims.get("azp") != client_id:  # OIDC Core §3.1.3.7, 4-5
            raise _refuse(
                "The ID token has several audiences and this app is not its authorized party.",
                "wrong_audience",
            )

    @staticmethod
    def _check_nonce(claims: Mapping[str, Any], nonce: str | None) -> None:
        if nonce is None:
            return
        given = claims.get("nonce")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), nonce.encode()):
            raise _refuse(
                "The ID token's nonce is not the one of this sign-in.",
                "bad_nonce",
                remedy="Start the sign-in again from this app.",
            )
