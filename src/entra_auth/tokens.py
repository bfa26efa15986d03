"""Token validation: ``AccessTokenValidator`` for APIs, ``IdTokenValidator`` for sign-in.

Order of checks, for every token: shape and header (RS256 only, a ``kid``, no ``crit``, no
``zip``), then the RS256 signature against the tenant's key (``JwksCache``), and only then the
claims, each in a method of its own (PyJWT's layout): version, issuer, tenant, audience, times,
kind of token. A forged token is refused as forged before any claim is read for a decision.

The compact JWS is parsed here rather than by PyJWT because this must refuse what PyJWT
accepts — non-canonical base64url (padding, ``+/``, whitespace) and duplicate JSON members —
and because PyJWT's per-call overhead is several times the RSA verification itself. The
cryptography is ``cryptography``'s RSA PKCS#1 v1.5 / SHA-256 verify; nothing else is custom.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from .config import EntraConfig
from .errors import InsufficientScopeError, InvalidTokenError
from .jwks import JwksCache

GRAPH_AUDIENCES = frozenset(
    {
        "00000003-0000-0000-c000-000000000000",
        "https://graph.microsoft.com",
        "https://graph.microsoft.com/",
    }
)
MAX_TOKEN_LENGTH = 32 * 1024
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
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

    @property
    def key(self) -> tuple[str, str]:
        """The stable identity to key data and authorization on."""
        return (self.oid, self.tid)

    @property
    def username(self) -> str | None:
        """For display only (mutable and reassignable: never authorize on it)."""
        value = self.claims.get("preferred_username") or self.claims.get("upn")
        return value if isinstance(value, str) else None


def _refuse(message: str, reason: str, remedy: str | None = None) -> InvalidTokenError:
    return InvalidTokenError(message, reason=reason, remedy=remedy)


_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64_VALUE = {c: i for i, c in enumerate(_B64_ALPHABET)}
_URL_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
# Bits of the last character that a canonical encoding leaves zero, by length modulo 4.
_UNUSED_BITS = {0: 0, 2: 0x0F, 3: 0x03}


_PADDING = {0: b"", 2: b"==", 3: b"="}
_STRICT = sys.version_info >= (3, 11)

if sys.version_info >= (3, 11):

    def _a2b(raw: bytes) -> bytes:
        return binascii.a2b_base64(raw, strict_mode=True)  # non-alphabet bytes refused, in C

else:  # pragma: no cover - Python 3.10: the alphabet is checked by _B64URL first

    def _a2b(raw: bytes) -> bytes:
        return binascii.a2b_base64(raw)


def _b64decode(segment: str, what: str) -> bytes:
    """Strict base64url (RFC 7515 §2): the alphabet, no padding, canonical trailing bits."""
    length = len(segment) % 4
    unused = _UNUSED_BITS.get(length)
    if unused is None or "=" in segment or "+" in segment or "/" in segment:
        raise _refuse(f"The token's {what} is not canonical base64url.", "malformed")
    if not _STRICT and not _B64URL.fullmatch(segment):  # pragma: no cover - Python 3.10
        raise _refuse(f"The token's {what} is not base64url.", "malformed")
    try:
        raw = segment.encode("ascii").translate(_URL_TO_STANDARD) + _PADDING[length]
        data = _a2b(raw)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise _refuse(f"The token's {what} is not base64url.", "malformed") from None
    if segment and _B64_VALUE[segment[-1]] & unused:  # bits a canonical encoder leaves zero
        raise _refuse(f"The token's {what} is not canonical base64url.", "malformed")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member")
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# One decoder for every token: json.loads with hooks would build a new one per call.
_JSON = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constants)


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = _JSON.decode(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _refuse(f"The token's {what} is not a JSON object.", "malformed") from None
    if not isinstance(value, dict):
        raise _refuse(f"The token's {what} is not a JSON object.", "malformed")
    return value


# NumericDate bounds (RFC 7519 §2): 1970 up to the last second of year 9999. A date outside
# them is no date any issuer writes; accepting 10**300 as `exp` would make a never-expiring token.
MAX_NUMERIC_DATE = 253_402_300_799


def _date_claim(claims: Mapping[str, Any], name: str, *, required: bool) -> int | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise _refuse(f"The token has no '{name}' claim.", "missing_claim")
        return None
    if type(value) is not int:  # bool is an int subclass; floats and strings are refused
        raise _refuse(f"The token's '{name}' claim is not a whole number.", "malformed")
    if not 0 <= value <= MAX_NUMERIC_DATE:
        raise _refuse(f"The token's '{name}' claim is not a valid date.", "malformed")
    return value


def _str_claim(claims: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise _refuse(f"The token's '{name}' claim is missing or not a string.", "missing_claim")
    return value


class _TokenValidator:
    """What ID and access tokens share: signature, issuer, tenant and time checks."""

    def __init__(
        self,
        config: EntraConfig,
        jwks: JwksCache | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.config = config
        self.jwks = jwks or JwksCache(config)
        self._clock = clock
        # Headers repeat (one per signing key): parse and check each distinct one once.
        self._headers: dict[str, dict[str, Any]] = {}

    # -- signature first --------------------------------------------------------------------
    def _verified_claims(self, token: object) -> tuple[dict[str, Any], dict[str, Any]]:
        if not isinstance(token, str) or not token:
            raise _refuse("No token was given.", "malformed")
        if len(token) > MAX_TOKEN_LENGTH:
            raise _refuse("The token is longer than any Entra token.", "malformed")
        if not token.isascii():  # a compact JWS is base64url and dots: ASCII only
            raise _refuse("The token holds characters that no JWT can hold.", "malformed")
        parts = token.split(".")
        if len(parts) != 3:
            kind = "an encrypted token (JWE)" if len(parts) == 5 else f"{len(parts)} parts"
            raise _refuse(f"The token is not a signed JWT: it has {kind}.", "malformed")
        header_b64, payload_b64, signature_b64 = parts
        header = self._headers.get(header_b64)
        if header is None:
            header = _json_object(_b64decode(header_b64, "header"), "header")
            self._check_header(header)
            if len(self._headers) < 64:
                self._headers[header_b64] = header
        signature = _b64decode(signature_b64, "signature")
        if not signature:
            raise _refuse("The token has no signature.", "bad_signature")
        key = self.jwks.get(header["kid"])
        try:
            key.public_key.verify(
                signature, f"{header_b64}.{payload_b64}".encode("ascii"), _PKCS1, _SHA256
            )
        except InvalidSignature:
            raise _refuse(
                "The token's signature does not verify with the tenant's key.",
                "bad_signature",
                remedy="The token was altered or not issued by the configured tenant.",
            ) from None
        return header, _json_object(_b64decode(payload_b64, "payload"), "payload")

    def _check_header(self, header: dict[str, Any]) -> None:
        alg = header.get("alg")
        if alg != "RS256":  # an allow-list of one: the token's own alg is never trusted
            raise _refuse(
                f"The token's algorithm {str(alg)[:20]!r} is not accepted; only RS256 is.",
                "bad_algorithm",
            )
        if "crit" in header or "b64" in header or "zip" in header or "enc" in header:
            raise _refuse(
                "The token's header asks for extensions that are not supported.", "bad_header"
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _refuse("The token's header has no key id ('kid').", "bad_header")

    # -- claims -----------------------------------------------------------------------------
    def _check_tenant(self, claims: Mapping[str, Any]) -> str:
        tid = _str_claim(claims, "tid")
        assert tid is not None
        if self.config.is_multi_tenant or self.config.allowed_tenants:
            allowed = {t.lower() for t in self.config.allowed_tenants}
            if self.config.tenant_id:
                allowed.add(self.config.tenant_id)
            if tid.lower() not in allowed:
                raise _refuse(
                    "The token was issued by a tenant this API does not accept.",
                    "wrong_tenant",
                    remedy="Add the tenant to ENTRA_ALLOWED_TENANTS if it should be accepted.",
                )
        elif tid.lower() != self.config.tenant_id:
            raise _refuse(
                "The token was issued by another tenant than the configured one.",
                "wrong_tenant",
                remedy="Request the token from the tenant in ENTRA_TENANT_ID.",
            )
        if not self.config.allow_guests:
            idp = claims.get("idp")
            if idp is not None and idp != self.config.v1_issuer_template.format(tenantid=tid):
                raise _refuse("Guest accounts are not accepted here.", "guest_refused")
        return tid

    def _check_issuer(self, claims: Mapping[str, Any], tid: str, version: str) -> None:
        if version == "1.0":
            expected = self.config.v1_issuer_template.format(tenantid=tid)
        else:
            expected = f"{self.jwks.metadata.issuer_base}/{tid}/v2.0"
        if claims.get("iss") != expected:
            raise _refuse(
                "The token's issuer is not the configured tenant's.",
                "wrong_issuer",
                remedy="Use a token from the tenant and cloud in ENTRA_AUTHORITY.",
            )

    def _check_times(self, claims: Mapping[str, Any], now: float) -> int:
        leeway = self.config.leeway
        exp = _date_claim(claims, "exp", required=True)
        assert exp is not None
        if now > exp + leeway:
            minutes = int((now - exp) // 60)
            raise _refuse(
                f"The token expired {minutes} min ago.",
                "expired",
                remedy="Get a new token (MSAL's acquire_token_silent refreshes it).",
            )
        nbf = _date_claim(claims, "nbf", required=False)
        if nbf is not None and nbf > now + leeway:
            raise _refuse(
                "The token is not valid yet (nbf is in the future).",
                "not_yet_valid",
                remedy="Check this server's clock.",
            )
        iat = _date_claim(claims, "iat", required=False)
        if iat is not None and iat > now + leeway:
            raise _refuse(
                "The token claims to be issued in the future.",
                "issued_in_future",
                remedy="Check this server's clock.",
            )
        return exp


class AccessTokenValidator(_TokenValidator):
    """Validates bearer tokens sent to this app's own API and returns a ``Principal``.

    Validated tokens are remembered (bounded, by SHA-256 of the token) until their ``exp`` or a
    change of the key set, so a hot endpoint pays one RSA verification per token, not per call.
    """

    def __init__(
        self,
        config: EntraConfig,
        jwks: JwksCache | None = None,
        *,
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
    ):
        super().__init__(config, jwks, clock=clock)
        config.require("tenant_id" if not config.is_multi_tenant else "authority", "api_audiences")
        self._audiences = frozenset(config.audiences)
        self._cache: OrderedDict[bytes, tuple[Principal, int, int]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    def validate(
        self,
        token: object,
        *,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
    ) -> Principal:
        """The token's principal, after every check; raises ``InvalidTokenError`` (→ 401) or
        ``InsufficientScopeError`` (→ 403)."""
        principal = self.authenticate(token)
        self.authorize(principal, scopes=scopes, roles=roles)
        return principal

    def authenticate(self, token: object) -> Principal:
        now = self._clock()
        digest = (
            hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
            if (isinstance(token, str) and self._cache_size)
            else None
        )
        if digest is not None:
            with self._cache_lock:
                hit = self._cache.get(digest)
                if hit is not None:
                    principal, exp, version = hit
                    if now <= exp and version == self.jwks.version:
                        self._cache.move_to_end(digest)
                        return principal
                    del self._cache[digest]
        version = self.jwks.version
        principal, exp = self._validate_uncached(token, now)
        if digest is not None:
            with self._cache_lock:
                self._cache[digest] = (principal, exp, version)
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return principal

    def _validate_uncached(self, token: object, now: float) -> tuple[Principal, int]:
        _, claims = self._verified_claims(token)
        # What the token is, then whom it is for: "an ID token", "a Graph token", "another app's
        # token" are the diagnoses that help, whatever else is also wrong with it.
        scopes, roles, client_id = self._check_access_token_kind(claims)
        self._check_audience(claims)
        version = self._check_version(claims)
        tid = self._check_tenant(claims)
        self._check_issuer(claims, tid, version)
        exp = self._check_times(claims, now)
        oid = _str_claim(claims, "oid")
        sub = _str_claim(claims, "sub")
        assert oid is not None
        assert sub is not None
        name = claims.get("name")
        return (
            Principal(
                oid=oid,
                tid=tid,
                sub=sub,
                scopes=scopes,
                roles=roles,
                name=name if isinstance(name, str) else None,
                client_id=client_id,
                app_only=self._is_app_only(claims, scopes, oid, sub),
                claims=MappingProxyType(claims),
            ),
            exp,
        )

    def _check_version(self, claims: Mapping[str, Any]) -> str:
        version = claims.get("ver")
        if version not in ("1.0", "2.0"):
            raise _refuse("The token has no valid 'ver' claim.", "malformed")
        if version not in self.config.accepted_token_versions:
            if version == "1.0":
                raise _refuse(
                    "The token is a v1 access token, and this API accepts v2 only.",
                    "wrong_version",
                    remedy="Set accessTokenAcceptedVersion to 2 in the API's app manifest, or "
                    "accept v1 with ENTRA_ACCEPTED_TOKEN_VERSIONS=1,2.",
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
                remedy="Request a token for this API's scope (api://<app id>/<scope>), not "
                "for Graph (User.Read).",
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
        if (scp is None and roles is None) or client is None or "nonce" in claims:
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
        if roles is not None and (
            not isinstance(roles, list) or not all(isinstance(r, str) for r in roles)
        ):
            raise _refuse("The token's 'roles' claim is not a list of strings.", "malformed")
        return frozenset(scp.split() if scp else ()), frozenset(roles or ()), client

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

    @staticmethod
    def authorize(
        principal: Principal, *, scopes: Iterable[str] = (), roles: Iterable[str] = ()
    ) -> None:
        """Exact-match authorization.

        ``scopes`` only: a delegated token carrying every scope. ``roles`` only: a token (app-only
        or a user's assigned app roles) carrying every role. Both: a delegated token is checked
        for the scopes, an app-only token for the roles.
        """
        need_scopes, need_roles = tuple(scopes), tuple(roles)
        if not need_scopes and not need_roles:
            return
        if need_scopes and (not need_roles or not principal.app_only):
            missing = [s for s in need_scopes if s not in principal.scopes]
            if principal.app_only or missing:
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
        missing = [r for r in need_roles if r not in principal.roles]
        if missing:
            raise InsufficientScopeError(
                f"The token lacks an app role this endpoint requires: {' '.join(missing)}.",
                scopes=need_scopes,
                roles=need_roles,
                remedy="Assign the app role to the calling app (admin consent) or the user.",
            )


class IdTokenValidator(_TokenValidator):
    """Verifies the ID token of a sign-in (MSAL does not check its signature, issuer, audience
    or expiry)."""

    def __init__(
        self,
        config: EntraConfig,
        jwks: JwksCache | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(config, jwks, clock=clock)
        config.require("client_id")

    def validate(self, token: object, *, nonce: str | None) -> Principal:
        """The signed-in user; ``nonce`` is the value the ID token must carry (MSAL sends the
        SHA-256 hex of its flow's nonce). None skips the check (refreshed ID tokens have none)."""
        _, claims = self._verified_claims(token)
        tid = self._check_tenant(claims)
        self._check_issuer(claims, tid, "2.0")
        self._check_audience(claims)
        self._check_times(claims, self._clock())
        if claims.get("iat") is None:
            raise _refuse("The ID token has no 'iat' claim.", "missing_claim")
        self._check_nonce(claims, nonce)
        oid = _str_claim(claims, "oid")
        sub = _str_claim(claims, "sub")
        assert oid is not None
        assert sub is not None
        roles = claims.get("roles")
        name = claims.get("name")
        return Principal(
            oid=oid,
            tid=tid,
            sub=sub,
            roles=frozenset(r for r in roles if isinstance(r, str))
            if isinstance(roles, list)
            else frozenset(),
            name=name if isinstance(name, str) else None,
            client_id=self.config.client_id,
            claims=MappingProxyType(claims),
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
