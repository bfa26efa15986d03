"""The token endpoint's grants, one function per ``grant_type``.

Each grant takes the emulator's context, the request's form (every parameter once), the client
the token endpoint already authenticated and the tenant of the path (None for ``common`` and
``organizations``), and returns the JSON body of a successful answer or raises an ``AadError``.
They know nothing of HTTP, so the token endpoint is only client authentication and dispatch.

Every delegated grant issues through ``_user_tokens``, which also applies Conditional Access
authentication contexts: a scope of the seed with ``authentication_context``, or a ``claims``
parameter asking for ``acrs``, needs a sign-in that satisfied that context (a step-up), else
AADSTS50076 with the claims challenge to pass to an interactive sign-in. The contexts a
sign-in satisfied travel with its code, refresh tokens and on-behalf-of exchanges, and reach
its access tokens as ``acrs``. A sign-in from before ``revoke_sessions`` is refused everywhere
(AADSTS50173).

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

import jwt

from .claims_requests import context_challenge, requested_contexts
from .client_assertions import net_time
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
# The on-behalf-of flow's grant type (RFC 7523's JWT bearer grant, as Entra uses it).
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Entra lets a token's times be off by up to five minutes (its token validation's clock skew).
ASSERTION_CLOCK_SKEW = 300


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
    if state.sign_in_revoked(record.tenant_id, record.user_oid, record.auth_time):
        raise AadError(50173)  # the user's sessions were revoked since the sign-in
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
        acrs=record.acrs,
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
        acrs=grant.acrs,
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


def on_behalf_of(
    ctx: EmulatorContext, form: dict[str, str], client: App, tenant: Tenant | None
) -> dict[str, Any]:
    """The on-behalf-of flow: a middle-tier API exchanges the user's access token it received
    (``assertion``) for a token to a downstream API, as the same user.

    As Entra (Microsoft Learn, "Microsoft identity platform and OAuth 2.0 On-Behalf-Of flow"):
    ``requested_token_use=on_behalf_of``; only a confidential client (the middle tier
    authenticated by secret or certificate); the assertion an access token of this directory,
    signed by its keys (a Microsoft Graph token, whose signature only Graph can check, fails
    here), unexpired, issued for the calling app (``aud`` its client id or an App ID URI), a
    user's (delegated: ``scp``), in the tenant of the path; every refusal of the assertion is
    AADSTS50013. The user, or an admin for every user, must have consented for the middle tier
    to the downstream scopes (AADSTS65001, consent_required: there is no one to show a consent
    page to). The answer is ``_user_tokens``': the same ``oid`` and ``tid`` as the assertion,
    ``azp`` the middle tier, a refresh token (with ``offline_access``) the middle tier redeems
    with the refresh_token grant, an ID token for it (with ``openid``).

    The assertion's ``iat`` stands for the sign-in behind it (access tokens carry no
    ``auth_time``): one from before ``revoke_sessions`` is refused (AADSTS50173), and its
    ``acrs`` are the authentication contexts the chain has satisfied.
    """
    state = ctx.state
    use = form.get("requested_token_use")
    if not use:
        raise AadError(90014, field="requested_token_use")
    if use != "on_behalf_of":
        raise AadError(
            9002313,
            detail=f"The grant {JWT_BEARER} takes requested_token_use=on_behalf_of (got "
            f"'{use[:40]}').",
        )
    if client.public_client:  # a public client holds no credential: no on-behalf-of
        raise AadError(7000218)
    for field in ("assertion", "scope"):
        if not form.get(field):
            raise AadError(90014, field=field)
    claims = _verified_assertion(ctx, form["assertion"], client, tenant)
    tenant_id, issued_at = str(claims["tid"]), int(claims["iat"])
    user = _user(ctx, tenant_id, str(claims.get("oid", "")))
    if state.sign_in_revoked(tenant_id, user.oid, issued_at):
        raise AadError(50173)
    scopes = resolve_scopes(state.seed, form["scope"], tenant_id)
    require_consent(state, client, user, scopes)
    satisfied = claims.get("acrs")
    return _user_tokens(
        ctx,
        client,
        tenant_id,
        user,
        scopes,
        form,
        nonce=None,
        sid=str(uuid.uuid4()),
        auth_time=issued_at,
        family=None,
        acrs=tuple(a for a in satisfied if isinstance(a, str))
        if isinstance(satisfied, list)
        else (),
    )


def _verified_assertion(
    ctx: EmulatorContext, assertion: str, client: App, tenant: Tenant | None
) -> dict[str, Any]:
    """The claims of an on-behalf-of assertion that Entra would accept from ``client``; an
    AADSTS50013 (AADSTS50027 for something that is no JWT) in Entra's words otherwise."""
    state = ctx.state
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise AadError(50027, detail="The assertion is not a JWT in compact form.") from None
    kid = str(header.get("kid") or header.get("x5t") or "")[:64]
    key = state.key_by_kid(kid) if kid else None
    if key is None:
        raise AadError(50013, reason=_signature_failure("The key was not found.", kid))
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key.private_key.public_key(),
            algorithms=["RS256"],
            # The signature here; the times, issuer and audience below, in Entra's words.
            options={
                "verify_aud": False,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_iss": False,
            },
        )
    except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError):
        # A Microsoft Graph token lands here: its signature covers a hashed header nonce.
        raise AadError(
            50013,
            reason=_signature_failure(
                "The provided signature value did not match the expected signature value.", kid
            ),
        ) from None
    except jwt.PyJWTError:
        raise AadError(50027, detail="The assertion's claims cannot be read.") from None
    if all(k.kid != kid for k in state.keys):
        # Entra: "applications that have custom signing keys can't be used as middle-tier
        # APIs in the OBO flow" (their tokens' keys are the app's, not Entra's own).
        raise AadError(
            50013,
            reason=_signature_failure(
                "The assertion is signed with an application-specific signing key: an app with "
                "a custom signing key cannot be the middle tier of the on-behalf-of flow.",
                kid,
            ),
        )
    tid = str(claims.get("tid", ""))
    issuers = {ctx.minter.v1_issuer(tid), ctx.urls.v2_issuer(tid)}
    if not tid or claims.get("iss") not in issuers:
        raise AadError(
            50013,
            reason=f"failed validation: its issuer '{str(claims.get('iss'))[:200]}' is not the "
            "token service of a tenant of this directory.",
        )
    _check_assertion_time(claims, state.now())
    audiences = {client.client_id.lower(), *(u.lower().rstrip("/") for u in client.identifier_uris)}
    aud = claims.get("aud")
    if not isinstance(aud, str) or aud.lower().rstrip("/") not in audiences:
        raise AadError(
            50013,
            reason="audience does not match the Client app presenting the assertion. The "
            f"audience in the assertion was '{str(aud)[:200]}' and the expected audience is "
            f"'{client.client_id}' or one of the Application Uris of this application with App "
            f"ID '{client.client_id}'({client.display_name}). The downstream client must "
            "request a token for the expected audience (the application that made the OBO "
            "request) and this application should use that token as the assertion.",
        )
    scp = claims.get("scp")
    if not isinstance(scp, str) or not scp.strip() or not isinstance(claims.get("oid"), str):
        raise AadError(
            50013,
            reason="is not a user's access token: it has no 'scp' (delegated permissions), as "
            "an app-only token or an ID token. The on-behalf-of flow exchanges a user's token; "
            "an app acting as itself uses the client credentials flow.",
        )
    if tenant is not None and tid != tenant.id:
        raise AadError(
            50013,
            reason=f"was issued in the tenant '{tid}', not in the tenant of this request "
            f"('{tenant.id}'): ask the user's tenant for the downstream token.",
        )
    return claims


def _signature_failure(reason: str, kid: str) -> str:
    return (
        f"failed signature validation. [Reason - {reason}, Thumbprint of key used by client: "
        f"'{kid}']"
    )


def _whole_seconds(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_assertion_time(claims: dict[str, Any], now: float) -> None:
    """AADSTS50013 for an assertion expired (or not yet valid) beyond the clock skew, or
    without the ``exp`` and ``iat`` every access token has."""
    exp, nbf, iat = (_whole_seconds(claims.get(name)) for name in ("exp", "nbf", "iat"))
    if (
        exp is None
        or iat is None
        or now > exp + ASSERTION_CLOCK_SKEW
        or (nbf is not None and nbf > now + ASSERTION_CLOCK_SKEW)
    ):
        raise AadError(
            50013,
            reason="is not within its valid time range. Ensure that the access token is not "
            "expired before using it for user assertion, or request a new token. Current "
            f"time: {net_time(now)}, expiry time of assertion {net_time(float(exp or 0))}.",
        )


GRANTS: dict[str, Grant] = {
    "authorization_code": authorization_code,
    "refresh_token": refresh_token,
    "client_credentials": client_credentials,
    "password": password,
    JWT_BEARER: on_behalf_of,
}
# How request_counts() names each grant's token requests: `token:<name>`.
GRANT_NAMES = {grant_type: grant_type for grant_type in GRANTS} | {JWT_BEARER: "on_behalf_of"}
GRANT_COUNTERS = tuple(f"token:{name}" for name in GRANT_NAMES.values())


def grant_name(grant_type: str | None) -> str | None:
    """The name a token request is counted under (``token:<name>``): its grant type, or
    ``on_behalf_of`` for the JWT bearer grant; None for a grant the endpoint does not know."""
    return GRANT_NAMES.get(grant_type or "")


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
    acrs: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The answer of a delegated grant: access token, and refresh and ID tokens when asked.

    ``acrs``: the authentication contexts the sign-in satisfied. The contexts the request
    needs (its scopes' and those its ``claims`` ask for) must be among them, else AADSTS50076
    with the claims to ask for; the access token carries them all as ``acrs``.
    """
    state, minter = ctx.state, ctx.minter
    picked = scopes.single_resource(form.get("scope", ""))
    if picked is None:  # OpenID Connect scopes only: Entra returns a Graph token
        resource = resolve_resource(state.seed, GRAPH_APP_ID, tenant_id)
        values: list[str] = []
    else:
        resource, values = picked
    if scopes.default or not values:
        granted = state.consented(tenant_id, user.oid, client.client_id)
        granted |= admin_granted(state.seed, client)
        prefix = f"{resource.app_id}|"
        values = values or [k[len(prefix) :] for k in sorted(granted) if k.startswith(prefix)]
    _require_contexts(resource, values, form, acrs)
    scp = values + ([s for s in scopes.oidc if s != "offline_access"] if resource.is_graph else [])
    roles = minter.user_roles(user, resource.app)
    access, lifetime = minter.access_token(
        client=client,
        resource=resource,
        tenant_id=tenant_id,
        user=user,
        scopes=scp,
        roles=roles,
        acrs=acrs,
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
                acrs=acrs,
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


def _require_contexts(
    resource: Resource, values: list[str], form: dict[str, str], satisfied: tuple[str, ...]
) -> None:
    """AADSTS50076 (interaction_required, suberror basic_action, as Entra's MFA answers) with
    the claims challenge for the contexts the request needs and the sign-in has not satisfied:
    those of the scopes asked for (the seed's ``authentication_context``) and those its
    ``claims`` parameter asks for."""
    needed = [
        scope.authentication_context
        for value in values
        if (scope := resource.scope(value)) is not None and scope.authentication_context
    ]
    needed += requested_contexts(form.get("claims"))
    missing = [c for c in dict.fromkeys(needed) if c not in satisfied]
    if missing:
        raise AadError(
            50076,
            suberror="basic_action",
            claims=context_challenge(missing),
            resource=resource.app_id,
        )


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
