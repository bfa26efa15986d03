"""Tokens shaped as Entra issues them: ID tokens, v1 and v2 access tokens, ``client_info``.

Signed with PyJWT (RS256) by the emulator's active key. Claims follow Microsoft's token
reference: pairwise ``sub`` per app, ``oid``+``tid`` identity, ``idp`` for guests, ``scp`` for
delegated and ``roles`` for app permissions, ``idtyp: app`` on app-only tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

import jwt

from .pki import b64url
from .scopes import Resource
from .seed import App, User
from .state import EmulatorState


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

    def sign(self, claims: dict[str, Any], *, v1: bool = False, nonce: bool = False) -> str:
        key = self.state.active_key
        headers: dict[str, Any] = {"typ": "JWT", "kid": key.kid}
        if v1:
            headers["x5t"] = key.x5t
        if nonce:  # Graph's tokens carry a header nonce: only Graph validates them
            headers["nonce"] = b64url(secrets.token_bytes(32))
        return jwt.encode(claims, key.private_key, algorithm="RS256", headers=headers)

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
                "login_hint": b64url(f"{user.oid}:{tenant_id}".encode()),
            }
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
        return rewriter(claims) if rewriter is not None else self.sign(claims)

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
        client: App,
        resource: Resource,
        tenant_id: str,
        user: User | None,
        scopes: list[str],
        roles: list[str],
    ) -> tuple[str, int]:
        """A delegated (``user`` given) or app-only access token, and its lifetime."""
        lifetime = self.state.access_token_lifetime()
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
        if user is not None:
            claims["scp"] = " ".join(scopes)
            claims["name"] = user.name
            if v1:
                claims.update(
                    {
                        "amr": ["pwd"],
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
        else:
            claims["idtyp"] = "app"
        if roles:
            claims["roles"] = roles
        return self.sign(claims, v1=v1, nonce=resource.is_graph), lifetime


def hash_verifier(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
