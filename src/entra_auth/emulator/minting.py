"""Tokens shaped as Entra issues them: ID tokens, v1 and v2 access tokens, ``client_info``.

Signed with PyJWT (RS256) by the emulator's active key, or by the app's own key for an app
with ``app_specific_signing_key`` (the tokens whose audience it is). Claims follow Microsoft's
token reference: pairwise ``sub`` per app, ``oid``+``tid`` identity, ``idp`` for guests,
``scp`` for delegated and ``roles`` for app permissions; an app-only token's ``sub`` is its
``oid``. The optional claims (``login_hint``, ``idtyp``, ``acct``, ``xms_cc``, and ``groups``/
``wids`` by ``groupMembershipClaims``) appear only when the registration of the app the token
is for asks for them, as in Entra.

Microsoft Graph's tokens are signed the way Graph's are: a ``nonce`` in the header, the
signature made over the header with the SHA-256 of that nonce in its place. A standard
verifier therefore refuses them with the published key; only Graph (``graph_signed_form``)
checks them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from flask import has_request_context, request
from jwt.algorithms import RSAAlgorithm

from .pki import SigningKey, b64url
from .scopes import Resource
from .seed import App, ManagedIdentity, OptionalClaim, OptionalClaims, User
from .state import EmulatorState

# What Microsoft Graph's own registration asks for in its access tokens (as real Graph tokens
# show: `idtyp` "user" or "app", `acct`, and `xms_cc` for a client that declared capabilities).
GRAPH_OPTIONAL_CLAIMS = OptionalClaims(
    access_token=(
        OptionalClaim("idtyp", ("include_user_token",)),
        OptionalClaim("acct"),
        OptionalClaim("xms_cc"),
    )
)
# Entra puts a requested capability into `xms_cc` only "if it's a known value. The only
# currently known value is cp1" (claims-challenge docs); values are case-insensitive.
KNOWN_CLIENT_CAPABILITIES = frozenset({"cp1"})
_RS256 = RSAAlgorithm(RSAAlgorithm.SHA256)


@dataclass(frozen=True)
class Urls:
    """Where the emulator is reached: the HTTPS back channel and the browser pages."""

    https_base: str
    browser_base: str

    def v2_issuer(self, tenant_id: str) -> str:
        return f"{self.https_base}/{tenant_id}/v2.0"

    @property
    def graph_base(self) -> str:
        return f"{self.https_base}/graph"


def requested_capabilities(claims_parameter: str | None) -> tuple[str, ...]:
    """The client capabilities a ``claims`` request parameter declares, known ones only.

    MSAL's ``client_capabilities=["cp1"]`` sends ``{"access_token": {"xms_cc": {"values":
    ["cp1"]}}}`` (merged with any claims challenge) on its token requests.
    """
    if not claims_parameter:
        return ()
    try:
        parsed = json.loads(claims_parameter)
    except ValueError:
        return ()
    access = parsed.get("access_token") if isinstance(parsed, dict) else None
    xms_cc = access.get("xms_cc") if isinstance(access, dict) else None
    values = xms_cc.get("values") if isinstance(xms_cc, dict) else None
    if not isinstance(values, list):
        return ()
    return _known_capabilities(values)


def _known_capabilities(values: Sequence[object]) -> tuple[str, ...]:
    known = (v for v in values if isinstance(v, str) and v.lower() in KNOWN_CLIENT_CAPABILITIES)
    return tuple(dict.fromkeys(known))


def _capabilities_of_this_request() -> tuple[str, ...]:
    # The capabilities travel in the token request's own `claims` parameter: read here, every
    # grant carries them without each one passing them along.
    if not has_request_context():
        return ()
    return requested_capabilities(request.values.get("claims"))


def _hashed_nonce(nonce: str) -> str:
    return b64url(hashlib.sha256(nonce.encode("ascii")).digest())


def _header_segment(header: dict[str, Any]) -> str:
    return b64url(json.dumps(header, separators=(",", ":")).encode())


def graph_signed_form(token: str) -> str:
    """A Graph token as Graph verifies it: the header's ``nonce`` replaced by its SHA-256
    (base64url), which is the header the signature was made over.

    ``jwt.PyJWTError`` when the token has no header nonce (Graph never issues one without).
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise jwt.DecodeError("not a JWS in compact form")
    try:
        padded = parts[0] + "=" * (-len(parts[0]) % 4)
        header = json.loads(base64.urlsafe_b64decode(padded))
    except ValueError:
        raise jwt.DecodeError("the header is not base64url JSON") from None
    nonce = header.get("nonce") if isinstance(header, dict) else None
    if not isinstance(nonce, str) or not nonce.isascii():
        raise jwt.InvalidTokenError("no header nonce: not a token Graph issued")
    header["nonce"] = _hashed_nonce(nonce)
    return f"{_header_segment(header)}.{parts[1]}.{parts[2]}"


def client_info(user: User) -> str:
    """``{"uid", "utid"}`` of the user's home account (for a guest, the home tenant's)."""
    uid = user.home_oid or user.oid
    utid = user.home_tenant_id or user.tenant_id
    return b64url(json.dumps({"uid": uid, "utid": utid}, separators=(",", ":")).encode())


class TokenMinter:
    def __init__(self, state: EmulatorState, urls: Urls):
        self.state = state
        self.urls = urls

    def v1_issuer(self, tenant_id: str) -> str:
        return f"https://{self.state.settings.v1_issuer_host}/{tenant_id}/"

    def pairwise_sub(self, user_oid: str, app_id: str) -> str:
        """A subject that differs per app, as Entra's: stable for one user and app."""
        tenant_salt = self.state.seed.default_tenant.encode()
        digest = hmac.new(tenant_salt, f"{user_oid}:{app_id}".encode(), hashlib.sha256).digest()
        return b64url(digest)

    def sign(
        self,
        claims: dict[str, Any],
        *,
        v1: bool = False,
        graph: bool = False,
        key: SigningKey | None = None,
    ) -> str:
        """``claims`` signed by ``key`` (the tenant's active key by default); for Microsoft
        Graph (``graph``), signed the way Graph's tokens are."""
        key = key or self.state.active_key
        if graph:
            return self._sign_for_graph(claims, key, v1=v1)
        headers: dict[str, Any] = {"typ": "JWT", "kid": key.kid}
        if v1:
            headers["x5t"] = key.x5t
        return jwt.encode(claims, key.private_key, algorithm="RS256", headers=headers)

    @staticmethod
    def _sign_for_graph(claims: dict[str, Any], key: SigningKey, *, v1: bool) -> str:
        # Entra's Graph tokens: the header carries a nonce, the signature covers the header
        # with the nonce's SHA-256 instead, so the published key does not verify the token as
        # sent. Header fields in the order Entra writes them.
        nonce = b64url(secrets.token_bytes(32))
        header: dict[str, Any] = {"typ": "JWT", "nonce": nonce, "alg": "RS256"}
        if v1:
            header["x5t"] = key.x5t
        header["kid"] = key.kid
        payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
        signed_header = _header_segment({**header, "nonce": _hashed_nonce(nonce)})
        signature = _RS256.sign(f"{signed_header}.{payload}".encode("ascii"), key.private_key)
        return f"{_header_segment(header)}.{payload}.{b64url(signature)}"

    def _optional_claims(
        self,
        asked: tuple[OptionalClaim, ...],
        group_membership_claims: str | None,
        *,
        user: User | None,
        tenant_id: str,
        capabilities: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The optional claims a registration asked for, with the values this token has
        (a claim with no value, such as ``xms_cc`` without capabilities, stays out)."""
        claims: dict[str, Any] = {}
        for claim in asked:
            if claim.name == "acct" and user is not None:
                claims["acct"] = 1 if user.is_guest else 0  # 0 member, 1 guest
            elif claim.name == "login_hint" and user is not None:
                claims["login_hint"] = login_hint(user.oid, tenant_id)
            elif claim.name == "idtyp":
                if user is None:
                    claims["idtyp"] = "app"
                elif "include_user_token" in claim.additional_properties:
                    claims["idtyp"] = "user"
            elif claim.name == "xms_cc" and capabilities:
                claims["xms_cc"] = list(capabilities)
            # "groups" as an optional claim only formats the claim groupMembershipClaims emits.
        if user is None:
            return claims
        if group_membership_claims in ("SecurityGroup", "All") and user.groups:
            claims["groups"] = list(user.groups)
        if group_membership_claims in ("DirectoryRole", "All") and user.directory_roles:
            claims["wids"] = list(user.directory_roles)
        return claims

    def _common(self, tenant_id: str, lifetime: int) -> dict[str, Any]:
        now = int(self.state.now())
        return {
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "tid": tenant_id,
            "uti": b64url(secrets.token_bytes(16)),
            "rh": f"0.A{b64url(secrets.token_bytes(24))}.",
            "aio": b64url(secrets.token_bytes(40)),
        }

    def id_token(
        self,
        *,
        user: User,
        app: App,
        tenant_id: str,
        nonce: str | None,
        sid: str,
        with_email: bool,
    ) -> str:
        claims = self._common(tenant_id, self.state.settings.id_token_lifetime)
        claims.update(
            {
                "aud": app.client_id,
                "iss": self.urls.v2_issuer(tenant_id),
                "name": user.name,
                "oid": user.oid,
                "preferred_username": user.sign_in_name,
                "sub": self.pairwise_sub(user.oid, app.client_id),
                "sid": sid,
                "ver": "2.0",
            }
        )
        claims.update(
            self._optional_claims(
                app.optional_claims.id_token,
                app.group_membership_claims,
                user=user,
                tenant_id=tenant_id,
            )
        )
        if nonce is not None:
            claims["nonce"] = nonce
        if with_email and user.email:
            claims["email"] = user.email
        if user.is_guest:
            claims["idp"] = self.v1_issuer(user.home_tenant_id or "")
        roles = self.user_roles(user, app)
        if roles:
            claims["roles"] = roles
        rewriter = self.state.id_token_rewriter
        if rewriter is not None:
            return rewriter(claims)
        return self.sign(claims, key=self.state.signing_key_for(app))

    def user_roles(self, user: User, app: App | None) -> list[str]:
        """The app roles ``user`` is assigned on ``app``: the ``roles`` of their ID token when
        ``app`` signs them in, of their access token when ``app`` is the API called."""
        if app is None:
            return []
        names = {app.client_id.lower(), *(u.lower().rstrip("/") for u in app.identifier_uris)}
        values = [
            role.value
            for assignment in user.app_roles
            if assignment.app.lower().rstrip("/") in names
            for role in [app.role(assignment.role)]
            if role is not None and "User" in role.allowed_member_types
        ]
        return list(dict.fromkeys(values))  # a role assigned twice is in the claim once

    def access_token(
        self,
        *,
        client: App | ManagedIdentity,
        resource: Resource,
        tenant_id: str,
        user: User | None,
        scopes: list[str],
        roles: list[str],
        capabilities: Sequence[str] | None = None,
        acrs: Sequence[str] = (),
    ) -> tuple[str, int]:
        """A delegated (``user`` given) or app-only access token, and its lifetime.

        ``capabilities``: what the client declared (``xms_cc``); by default those of the
        ``claims`` parameter of the token request being served. ``acrs``: the Conditional
        Access authentication contexts the user's sign-in satisfied (a step-up): the token
        carries them as ``acrs``, and a v1 token's ``amr`` adds ``mfa``.
        """
        declared = (
            _capabilities_of_this_request()
            if capabilities is None
            else _known_capabilities(capabilities)
        )
        # Entra: a CAE-capable client (cp1) gets long-lived tokens for a resource that
        # evaluates continuously (Graph here), up to 28 hours: revocation no longer waits.
        cae = resource.is_graph and user is not None and bool(declared)
        lifetime = self.state.access_token_lifetime(cae=cae)
        claims = self._common(tenant_id, lifetime)
        v1 = resource.token_version == 1
        subject_oid = user.oid if user else client.service_principal_id
        claims.update(
            {
                "aud": resource.identifier if v1 else resource.app_id,
                "iss": self.v1_issuer(tenant_id) if v1 else self.urls.v2_issuer(tenant_id),
                "oid": subject_oid,
                # Entra: a user's `sub` is pairwise per app; an app-only token's is its `oid`.
                "sub": self.pairwise_sub(subject_oid, resource.app_id) if user else subject_oid,
                "ver": "1.0" if v1 else "2.0",
            }
        )
        if v1:
            claims.update({"appid": client.client_id, "appidacr": "1"})
        else:
            claims.update({"azp": client.client_id, "azpacr": "1"})
        if isinstance(client, ManagedIdentity):
            # A managed identity signs in with a certificate (acr "2"); `xms_mirid` names the
            # Azure resource (the user-assigned identity, or what a system-assigned one is of).
            claims["appidacr" if v1 else "azpacr"] = "2"
            if client.resource_id:
                claims["xms_mirid"] = client.resource_id
        if user is not None:
            claims["scp"] = " ".join(scopes)
            claims["name"] = user.name
            if v1:
                claims.update(
                    {
                        "amr": ["pwd", "mfa"] if acrs else ["pwd"],
                        "unique_name": user.sign_in_name,
                        "given_name": user.given_name,
                        "family_name": user.surname,
                        "acr": "1",
                    }
                )
                if not user.is_guest:
                    claims["upn"] = user.upn
            else:
                claims["preferred_username"] = user.sign_in_name
            if user.is_guest:
                claims["idp"] = self.v1_issuer(user.home_tenant_id or "")
            if acrs:
                claims["acrs"] = list(acrs)
        # The API's registration (Graph's own for Graph) decides the optional claims.
        registration = resource.app
        asked = registration.optional_claims if registration is not None else GRAPH_OPTIONAL_CLAIMS
        claims.update(
            self._optional_claims(
                asked.access_token,
                registration.group_membership_claims if registration else None,
                user=user,
                tenant_id=tenant_id,
                capabilities=declared,
            )
        )
        if roles:
            claims["roles"] = roles
        key = self.state.signing_key_for(registration)
        return self.sign(claims, v1=v1, graph=resource.is_graph, key=key), lifetime


def hash_verifier(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def login_hint(oid: str, tenant_id: str) -> str:
    """The ``login_hint`` optional claim of an account (opaque to apps, as Entra's is): what an
    app sends back as ``logout_hint`` to the end-session endpoint (endpoints/logout.py)."""
    return b64url(f"{oid}:{tenant_id}".encode())
