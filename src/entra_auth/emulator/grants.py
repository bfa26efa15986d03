"""The token endpoint's grants, one function per ``grant_type``.

Each grant takes the emulator's context, the request's form (every parameter once), the client
the token endpoint already authenticated and the tenant of the path (None for ``common`` and
``organizations``), and returns the JSON body of a successful answer or raises an ``AadError``.
They know nothing of HTTP, so the token endpoint is only client authentication and dispatch.

A code issued to a redirect URI of the single-page application platform, and the refresh tokens
that descend from it, are a SPA's: ``issued_to_spa`` tells the token endpoint so before it
authenticates the client (a SPA's grant is redeemed from the browser, without a secret).
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from .context import EmulatorContext
from .minting import client_info, hash_verifier
from .oauth_errors import AadError
from .policy import admin_granted, require_consent
from .scopes import Resource, ScopeRequest, resolve_resource, resolve_scopes
from .seed import GRAPH_APP_ID, App, ManagedIdentity, Seed, Tenant, User
from .state import RefreshGrant

Grant = Callable[[EmulatorContext, dict[str, str], App, Tenant | None], dict[str, Any]]

# RFC 7636 §4.1: a code verifier is 43 to 128 unreserved characters.
PKCE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# The refresh-token family of a sign-in through a SPA redirect URI starts with this: its tokens
# stay a SPA's through every rotation.
SPA_FAMILY = "spa-"


def issued_to_spa(ctx: EmulatorContext, form: dict[str, str], client_id: str) -> bool:
    """Whether the code or refresh token this token request (of ``client_id``) redeems was
    issued to a single-page app (a redirect URI of the SPA platform). False for other grants
    and for anything unknown or another client's, which the grant itself then refuses."""
    state = ctx.state
    client_id = client_id.lower()
    with state.lock:
        if form.get("grant_type") == "authorization_code":
            record = state.codes.get(form.get("code") or "")
            if record is None or record.client_id.lower() != client_id:
                return False
            app = state.seed.app(record.client_id)
            return app is not None and record.redirect_uri in app.spa_redirect_uris
        if form.get("grant_type") == "refresh_token":
            grant = state.refresh_grants.get(form.get("refresh_token") or "")
            return (
                grant is not None
                and grant.client_id.lower() == client_id
                and grant.family.startswith(SPA_FAMILY)
            )
    return False


def authorization_code(
    ctx: EmulatorContext, form: dict[str, str], client: App, tenant: Tenant | None
) -> dict[str, Any]:
    """Redeem an authorization code (once only), checking the redirect URI and PKCE verifier.

    PKCE as Entra checks it: a code requested with a challenge needs its verifier (AADSTS50148
    without one, AADSTS501481 for another one); a verifier for a code requested without a
    challenge is refused too (AADSTS50148), so that PKCE cannot be stripped from a request.
    """
    state = ctx.state
    handle = form.get("code")
    if not handle:
        raise AadError(90014, field="code")
    with state.lock:
        record = state.codes.get(handle)
        if record is None or record.client_id != client.client_id:
            raise AadError(70000)
        if record.redeemed:
            raise AadError(54005)
        record.redeemed = True  # one use only, whatever happens next
    if state.now() > record.issued_at + state.settings.code_lifetime:
        raise AadError(70008)
    if form.get("redirect_uri") != record.redirect_uri:
        raise AadError(50011, redirect_uri=form.get("redirect_uri", ""), client_id=client.client_id)
    verifier = form.get("code_verifier") or ""
    if record.code_challenge:
        if not verifier:
            raise AadError(50148)
        if not PKCE_VERIFIER.fullmatch(verifier) or not hmac.compare_digest(
            hash_verifier(verifier), record.code_challenge
        ):
            raise AadError(501481)
    elif verifier:
        raise AadError(50148)
    user = _user(ctx, record.tenant_id, record.user_oid)
    scopes = resolve_scopes(state.seed, form.get("scope") or record.scope, record.tenant_id)
    require_consent(state, client, user, scopes)
    return _user_tokens(
        ctx,
        client,
        record.tenant_id,
        user,
        scopes,
        form,
        nonce=record.nonce,
        sid=record.sid,
        auth_time=record.auth_time,
        family=None,
        spa=record.redirect_uri in client.spa_redirect_uris,
    )


def refresh_token(
    ctx: EmulatorContext, form: dict[str, str], client: App, tenant: Tenant | None
) -> dict[str, Any]:
    """Redeem a refresh token: revocation, rotation policy and inactivity lifetime apply."""
    state = ctx.state
    handle = form.get("refresh_token")
    if not handle:
        raise AadError(90014, field="refresh_token")
    now = state.now()
    with state.lock:
        grant = state.refresh_grants.get(handle)
        if grant is None or grant.client_id != client.client_id:
            raise AadError(9002313, detail="The refresh token is not valid for this client.")
        if state.is_revoked(grant):
            raise AadError(50173)
        if grant.used and state.settings.refresh_token_rotation == "strict":  # noqa: S105
            # A rotated token presented again: someone kept an old copy (RFC 9700 §4.14.2).
            state.revoked_families.add(grant.family)
            raise AadError(50173)
        inactive = now - grant.last_used
        if inactive > state.settings.refresh_token_inactive_lifetime:
            raise AadError(
                700082, issued=_iso(grant.issued_at), inactive=f"{int(inactive)} seconds"
            )
        grant.used = True
        grant.last_used = now
    if tenant is not None and tenant.id != grant.tenant_id:
        raise AadError(9002313, detail="The refresh token was issued in another tenant.")
    user = _user(ctx, grant.tenant_id, grant.user_oid)
    scopes = resolve_scopes(state.seed, form.get("scope", ""), grant.tenant_id)
    require_consent(state, client, user, scopes)
    return _user_tokens(
        ctx,
        client,
        grant.tenant_id,
        user,
        scopes,
        form,
        nonce=None,
        sid=grant.sid,
        auth_time=grant.auth_time,
        family=grant.family,
    )


def client_credentials(
    ctx: EmulatorContext, form: dict[str, str], client: App, tenant: Tenant | None
) -> dict[str, Any]:
    """An app-only token for ``<resource>/.default``, carrying the roles an admin granted."""
    raw = form.get("scope", "")
    if not raw:
        raise AadError(90014, field="scope")
    items = raw.split()
    if len(items) != 1 or not items[0].endswith("/.default"):
        raise AadError(1002012, scope=raw)
    tenant_id = tenant.id if tenant else client.tenant_id
    resource = resolve_resource(ctx.state.seed, items[0][: -len("/.default")], tenant_id)
    roles = granted_roles(ctx.state.seed, client, resource)
    token, lifetime = ctx.minter.access_token(
        client=client, resource=resource, tenant_id=tenant_id, user=None, scopes=[], roles=roles
    )
    return {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    }


def password(
    ctx: EmulatorContext, form: dict[str, str], client: App, tenant: Tenant | None
) -> dict[str, Any]:
    """Resource owner password credentials: the user's name and password in the form."""
    state = ctx.state
    for field in ("username", "password", "scope"):
        if not form.get(field):
            raise AadError(90014, field=field)
    candidates = [tenant.id] if tenant is not None else [t.id for t in state.seed.tenants]
    user = next(
        (u for tid in candidates if (u := state.seed.user(tid, form["username"])) is not None),
        None,
    )
    if user is None or not hmac.compare_digest(user.password.encode(), form["password"].encode()):
        raise AadError(50126)
    scopes = resolve_scopes(state.seed, form["scope"], user.tenant_id)
    require_consent(state, client, user, scopes)
    return _user_tokens(
        ctx,
        client,
        user.tenant_id,
        user,
        scopes,
        form,
        nonce=None,
        sid=str(uuid.uuid4()),
        auth_time=int(state.now()),
        family=None,
    )


GRANTS: dict[str, Grant] = {
    "authorization_code": authorization_code,
    "refresh_token": refresh_token,
    "client_credentials": client_credentials,
    "password": password,
}


def _user_tokens(
    ctx: EmulatorContext,
    client: App,
    tenant_id: str,
    user: User,
    scopes: ScopeRequest,
    form: dict[str, str],
    *,
    nonce: str | None,
    sid: str,
    auth_time: int,
    family: str | None,
    spa: bool = False,
) -> dict[str, Any]:
    """The answer of a delegated grant: access token, and refresh and ID tokens when asked."""
    state, minter = ctx.state, ctx.minter
    picked = scopes.single_resource(form.get("scope", ""))
    if picked is None:  # OpenID Connect scopes only: Entra returns a Graph token
        resource = resolve_resource(state.seed, GRAPH_APP_ID, tenant_id)
        values: list[str] = []
    else:
        resource, values = picked
    if scopes.default or not values:
        granted = state.consented(tenant_id, user.oid, client.client_id) | admin_granted(client)
        prefix = f"{resource.app_id}|"
        values = values or [k[len(prefix) :] for k in sorted(granted) if k.startswith(prefix)]
    scp = values + ([s for s in scopes.oidc if s != "offline_access"] if resource.is_graph else [])
    roles = minter.user_roles(user, resource.app)
    access, lifetime = minter.access_token(
        client=client,
        resource=resource,
        tenant_id=tenant_id,
        user=user,
        scopes=scp,
        roles=roles,
    )
    answer: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": " ".join(
            scp if resource.is_graph else [f"{resource.identifier}/{v}" for v in values]
        ),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access,
    }
    if "offline_access" in scopes.oidc:
        now = state.now()
        answer["refresh_token"] = state.store_refresh(
            RefreshGrant(
                client_id=client.client_id,
                tenant_id=tenant_id,
                user_oid=user.oid,
                sid=sid,
                auth_time=auth_time,
                issued_at=now,
                last_used=now,
                family=family or (SPA_FAMILY if spa else "") + secrets.token_hex(8),
            )
        )
        answer["refresh_token_expires_in"] = state.settings.refresh_token_inactive_lifetime
    if "openid" in scopes.oidc:
        answer["id_token"] = minter.id_token(
            user=user,
            app=client,
            tenant_id=tenant_id,
            nonce=nonce,
            sid=sid,
            with_email="email" in scopes.oidc,
        )
    if form.get("client_info") == "1":
        answer["client_info"] = client_info(user)
    return answer


def _user(ctx: EmulatorContext, tenant_id: str, oid: str) -> User:
    user = ctx.state.seed.user(tenant_id, oid)
    if user is None:
        raise AadError(50126)
    return user


def granted_roles(seed: Seed, grantee: App | ManagedIdentity, resource: Resource) -> list[str]:
    """The app roles of ``resource`` an admin granted ``grantee`` (its application permissions:
    an app's, or a managed identity's), roles that applications can hold, once each."""
    roles: list[str] = []
    for grant in grantee.app_permissions:
        try:
            granted_to = resolve_resource(seed, grant.resource, grantee.tenant_id)
        except AadError:
            continue
        if granted_to.app_id != resource.app_id:
            continue
        for value in grant.roles:
            role = resource.role(value)
            if role is None or "Application" not in role.allowed_member_types:
                continue
            if role.value not in roles:
                roles.append(role.value)
    return roles


def _iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
