"""The authorize endpoint and the pages behind it: sign-in, consent, and the answer to the app.

Until the redirect URI is known to be registered for the client, errors are shown on the
emulator's own page; after that they go back to the app in the request's response mode, as
Entra does.

PKCE as Entra applies it: required for a redirect URI of the single-page application platform
(AADSTS9002325 without a ``code_challenge``), optional for a Web one; ``S256`` and ``plain``
accepted, a challenge without ``code_challenge_method`` is ``plain`` (RFC 7636 §4.3). The code
keeps the challenge in its S256 form, so that the token endpoint checks both methods alike.

The browser's sign-in session (SSO) lives in a Flask session cookie, one account per tenant
(``session["sso"]``; an account replaced by a fresh sign-in is remembered in
``session["earlier"]``), and each live session's id is kept server-side too, so that signing
out ends every copy of the cookie; with it, the apps that signed in through the session, whose
front-channel logout URLs its sign-out loads (``logout.py``).

A session ends for the emulator when its user's sessions are revoked (``revoke_sessions``):
one that started before is no longer a session, and the sign-in page asks again.

A step-up: a request whose ``claims`` asks for an authentication context (``access_token.acrs``,
as MSAL sends a claims challenge) that the browser's session has not satisfied shows the
sign-in page again, SSO or not (``prompt=none`` gets AADSTS50076); the sign-in that follows
satisfies the contexts asked for, which the session remembers and its codes carry to their
tokens (``acrs``). Entra would run the Conditional Access policy of the context (MFA, most
often); the emulator's stand-in is signing in again.
"""

from __future__ import annotations

import hmac
import re
import secrets
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Blueprint, redirect, render_template, request, session
from werkzeug.wrappers import Response as WerkzeugResponse

from ..claims_requests import requested_contexts
from ..context import current
from ..faults import fault_point
from ..grants import PKCE_VERIFIER
from ..minting import hash_verifier
from ..oauth_errors import AadError
from ..policy import assigned, missing_consent, needs_admin, usable_in
from ..scopes import OIDC_DESCRIPTIONS, ScopeRequest, resolve_scopes
from ..seed import Tenant, User
from ..state import AuthorizationCode, AuthorizeRequest
from .common import (
    PageError,
    error_body,
    is_registered_redirect,
    is_spa_redirect,
    single,
    tenant_or_error,
)

blueprint = Blueprint("authorize", __name__)

RESPONSE_MODES = ("query", "form_post", "fragment")
PKCE_METHODS = ("S256", "plain")
# A plain challenge is a verifier (PKCE_VERIFIER); an S256 challenge is the base64url of a
# SHA-256: 43 characters without padding (RFC 7636 §4.2).
S256_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")
# How many replaced sessions a browser remembers for sign-out (each fresh sign-in in a tenant
# replaces one); a bound, so that the cookie cannot grow without end.
MAX_EARLIER = 20
# The answer of a page: HTML (with its status) or a redirect back to the app.
Page = str | tuple[str, int] | WerkzeugResponse


@blueprint.get("/<tenant>/oauth2/v2.0/authorize")
@fault_point("authorize")
def authorize(tenant: str) -> Page:
    state = current().state
    params = single(request.args, page=True)
    try:
        found = tenant_or_error(tenant)
    except AadError as exc:
        raise PageError(exc) from None
    client_id = params.get("client_id")
    if not client_id:
        raise PageError(AadError(90014, field="client_id"))
    client = state.seed.app(client_id)
    tenant_label = found.id if found else tenant
    if client is None or (found is not None and not usable_in(client, found)):
        raise PageError(AadError(700016, client_id=client_id, tenant=tenant_label))
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        raise PageError(AadError(900971))
    if not is_registered_redirect(client, redirect_uri):
        raise PageError(AadError(50011, redirect_uri=redirect_uri, client_id=client_id))
    # From here on the redirect URI is registered: errors go back to the app.
    response_mode = params.get("response_mode") or "query"
    auth = AuthorizeRequest(
        txn=secrets.token_urlsafe(24),
        tenant_path=tenant,
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scope=params.get("scope", ""),
        state=params.get("state"),
        nonce=params.get("nonce"),
        code_challenge="",  # set below, once checked
        response_mode=response_mode if response_mode in RESPONSE_MODES else "query",
        prompt=params.get("prompt"),
        login_hint=params.get("login_hint"),
        created=state.now(),
        claims=params.get("claims"),
    )
    try:
        if found is None and not client.multi_tenant:
            raise AadError(50194, client_id=client.client_id, app_name=client.display_name)
        if params.get("response_type") != "code":
            raise AadError(700051, response_type=params.get("response_type", ""))
        auth.code_challenge = _pkce_challenge(params, spa=is_spa_redirect(client, redirect_uri))
        if not auth.scope:
            raise AadError(90014, field="scope")
        resolve_scopes(state.seed, auth.scope, tenant_label)
    except AadError as exc:
        return _to_client(auth, error=exc)
    with state.lock:
        state.pending[auth.txn] = auth
    session.setdefault("txns", [])
    session["txns"] = [*session["txns"][-9:], auth.txn]

    signed_in = _sso_user(found)
    step_up = signed_in is not None and not _satisfies(signed_in, auth)
    if auth.prompt == "none":
        if signed_in is None:
            return _to_client(auth, error=AadError(50058))
        if step_up:  # the contexts asked for need a sign-in: no silent answer
            return _to_client(auth, error=AadError(50076, resource=auth.client_id))
        return _after_sign_in(auth, signed_in, found)
    if signed_in is not None and not step_up and auth.prompt not in ("login", "select_account"):
        return _after_sign_in(auth, signed_in, found)
    return _sign_in_page(auth, found)


@blueprint.post("/<tenant>/oauth2/v2.0/authorize/login")
def login(tenant: str) -> Page:
    state = current().state
    form = single(request.form, page=True)
    auth = _pending(form.get("txn"))
    found = tenant_or_error(auth.tenant_path)
    candidates = state.seed.users_of(found.id) if found else list(state.seed.users)
    user: User | None = None
    if form.get("user"):  # a demo user picked from the list
        user = next((u for u in candidates if u.oid == form["user"]), None)
    else:
        name = (form.get("username") or "").strip().lower()
        password = form.get("password") or ""
        match = next(
            (u for u in candidates if name in (u.upn.lower(), u.sign_in_name.lower())), None
        )
        if match is not None and hmac.compare_digest(match.password.encode(), password.encode()):
            user = match
    if user is None:
        # Kept in the field, as Entra does, so that the user retypes only the password.
        typed = (form.get("username") or "").strip()
        return _sign_in_page(auth, found, error=AadError(50126), username=typed), 200
    return _after_sign_in(auth, user, found, fresh=True)


@blueprint.post("/<tenant>/oauth2/v2.0/authorize/consent")
def consent(tenant: str) -> Page:
    state = current().state
    form = single(request.form, page=True)
    auth = _pending(form.get("txn"))
    found = tenant_or_error(auth.tenant_path)
    user = _sso_user(found, oid=form.get("user"))
    if user is None:
        raise PageError(AadError(9002313, detail="Sign in again: your session ended."))
    if form.get("decision") != "accept":
        return _to_client(auth, error=AadError(65004), subcode="cancel")
    scopes = resolve_scopes(state.seed, auth.scope, user.tenant_id)
    state.grant_consent(user.tenant_id, user.oid, auth.client_id, scopes.consent_keys)
    user_tenant = state.seed.tenant(user.tenant_id)
    assert user_tenant is not None
    return _issue_code(auth, user, user_tenant)


def _pkce_challenge(params: dict[str, str], *, spa: bool) -> str:
    """The request's PKCE challenge in its S256 form; "" when the request uses no PKCE.

    Entra's rules: a SPA redirect URI needs a challenge (AADSTS9002325); ``S256`` and ``plain``
    are the methods (AADSTS50149 for another), ``plain`` when none is named; a challenge of the
    wrong size is AADSTS501491 (an S256 one is 43 characters: base64url without ``=``). A
    method without a challenge asks for nothing: the code is then issued without PKCE, and a
    verifier sent for it is refused at the token endpoint (AADSTS50148).
    """
    challenge = params.get("code_challenge") or ""
    method = params.get("code_challenge_method") or "plain"
    if not challenge:
        if spa:
            raise AadError(9002325)
        return ""
    if method not in PKCE_METHODS:
        raise AadError(50149)
    if method == "S256":
        if not S256_CHALLENGE.fullmatch(challenge):
            raise AadError(501491)
        return challenge
    if not PKCE_VERIFIER.fullmatch(challenge):
        raise AadError(501491)
    return hash_verifier(challenge)  # plain: the verifier is the challenge itself


def _pending(txn: str | None) -> AuthorizeRequest:
    """The authorize request a sign-in or consent form continues, if this browser started it."""
    state = current().state
    with state.lock:
        auth = state.pending.get(txn or "")
    if auth is None or txn not in session.get("txns", []):
        raise PageError(
            AadError(9002313, detail="The sign-in request expired. Start again from the app.")
        )
    return auth


# What Entra's sign-in page tells the user, in words; the AADSTS text is for developers and
# stays on the page folded away (Entra puts it in the sign-in logs and "Troubleshooting details").
USER_MESSAGES = {
    50126: "Your account or password is incorrect. "
    "If you don't remember your password, reset it now.",
}


def _sign_in_page(
    auth: AuthorizeRequest,
    tenant: Tenant | None,
    error: AadError | None = None,
    username: str = "",
) -> str:
    seed = current().state.seed
    users = seed.users_of(tenant.id) if tenant else list(seed.users)
    return render_template(
        "signin.html",
        auth=auth,
        users=users,
        client=seed.app(auth.client_id),
        tenant=tenant,
        error=error,
        error_message=USER_MESSAGES.get(error.code, error.message) if error else "",
        username=username or auth.login_hint or "",
        step_up=requested_contexts(auth.claims),  # the contexts this sign-in is to satisfy
    )


def _after_sign_in(
    auth: AuthorizeRequest, user: User, tenant: Tenant | None, fresh: bool = False
) -> Page:
    """Once the user is known: remember the session, check access, then consent or a code."""
    state = current().state
    client = state.seed.app(auth.client_id)
    assert client is not None  # checked when the request arrived
    user_tenant = state.seed.tenant(user.tenant_id)
    assert user_tenant is not None
    sso = dict(session.get("sso", {}))
    if fresh or user_tenant.id not in sso:
        replaced = sso.get(user_tenant.id, {})
        if replaced.get("sid"):
            # The browser is still signed in to the apps of the session this sign-in replaces:
            # remembered with its account, so that signing out (of that account, or of all)
            # ends it too and tells its apps.
            session["earlier"] = [
                *session.get("earlier", [])[-(MAX_EARLIER - 1) :],
                {"sid": replaced["sid"], "tid": user_tenant.id, "oid": replaced.get("oid", "")},
            ]
        sid = str(uuid.uuid4())
        sso[user_tenant.id] = {
            "oid": user.oid,
            "sid": sid,
            "auth_time": int(state.now()),
            # The authentication contexts this sign-in satisfied: those the request asked for.
            "acrs": list(requested_contexts(auth.claims)),
        }
        session["sso"] = sso
        with state.lock:  # kept server-side, so that sign-out ends it for every copy
            state.sso_sessions.add(sid)
    try:
        if not usable_in(client, user_tenant):
            raise AadError(700016, client_id=client.client_id, tenant=user_tenant.id)
        if client.assignment_required and not assigned(user, client):
            raise AadError(50105, client_id=client.client_id, app_name=client.display_name)
        scopes = resolve_scopes(state.seed, auth.scope, user_tenant.id)
        missing = missing_consent(state, client, user, scopes)
        admin_only = [k for k in missing if needs_admin(k, scopes)]
        if admin_only:
            raise AadError(90094)
    except AadError as exc:
        return _to_client(auth, error=exc)
    if missing or auth.prompt == "consent":
        return render_template(
            "consent.html",
            auth=auth,
            client=client,
            user=user,
            items=_consent_items(scopes),
        )
    return _issue_code(auth, user, user_tenant)


def _issue_code(auth: AuthorizeRequest, user: User, tenant: Tenant) -> Page:
    state = current().state
    sso = session.get("sso", {}).get(tenant.id, {})
    sid = sso.get("sid")
    with state.lock:
        if sid in state.sso_sessions:  # the app is now signed in through this session
            apps = state.sso_apps.setdefault(sid, [])
            if auth.client_id not in apps:
                apps.append(auth.client_id)
    code = state.store_code(
        AuthorizationCode(
            client_id=auth.client_id,
            tenant_id=tenant.id,
            user_oid=user.oid,
            redirect_uri=auth.redirect_uri,
            scope=auth.scope,
            code_challenge=auth.code_challenge,
            nonce=auth.nonce,
            sid=sso.get("sid", str(uuid.uuid4())),
            auth_time=sso.get("auth_time", int(state.now())),
            issued_at=state.now(),
            acrs=tuple(sso.get("acrs", ())),
        )
    )
    with state.lock:
        state.pending.pop(auth.txn, None)
    return _to_client(auth, values={"code": code, "session_state": sso.get("sid", "")})


def _to_client(
    auth: AuthorizeRequest,
    *,
    values: dict[str, str] | None = None,
    error: AadError | None = None,
    subcode: str | None = None,
) -> Page:
    """The authorization response, in the request's response mode, to a registered URI."""
    answer: dict[str, str] = dict(values or {})
    if error is not None:
        body = error_body(error)
        answer = {"error": body["error"], "error_description": body["error_description"]}
        if subcode:
            answer["error_subcode"] = subcode
    if auth.state is not None:
        answer["state"] = auth.state
    if auth.response_mode == "form_post":
        return render_template("form_post.html", action=auth.redirect_uri, fields=answer)
    parts = urlsplit(auth.redirect_uri)
    if auth.response_mode == "fragment":
        target = urlunsplit(parts._replace(fragment=urlencode(answer)))
    else:
        query = f"{parts.query}&{urlencode(answer)}" if parts.query else urlencode(answer)
        target = urlunsplit(parts._replace(query=query))
    response = redirect(target, 302)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _sso_user(tenant: Tenant | None, oid: str | None = None) -> User | None:
    """The user this browser is signed in as (in ``tenant`` when given), if still signed in:
    not signed out, and not signed in before the user's sessions were revoked."""
    state = current().state
    sso: dict[str, dict[str, Any]] = session.get("sso", {})
    for tid, entry in sso.items():
        if tenant is not None and tid != tenant.id:
            continue
        if entry.get("sid") not in state.sso_sessions:  # signed out (or emulator restarted)
            continue
        if oid is not None and entry.get("oid") != oid:
            continue
        user = state.seed.user(tid, entry.get("oid", ""))
        if user is None:
            continue
        auth_time = entry.get("auth_time")
        if not isinstance(auth_time, int) or state.sign_in_revoked(tid, user.oid, auth_time):
            continue  # revoke_sessions ended it: the password is asked again
        return user
    return None


def _satisfies(user: User, auth: AuthorizeRequest) -> bool:
    """Whether the user's session has satisfied every authentication context the request's
    ``claims`` asks for (else the sign-in is a step-up)."""
    entry: dict[str, Any] = session.get("sso", {}).get(user.tenant_id, {})
    done = entry.get("acrs") or []
    return all(context in done for context in requested_contexts(auth.claims))


def _consent_items(scopes: ScopeRequest) -> list[tuple[str, str]]:
    """What the consent page lists: each scope and its description."""
    items = [(s, OIDC_DESCRIPTIONS.get(s, s)) for s in scopes.oidc]
    for resource, values in scopes.resources.values():
        for value in values:
            scope = resource.scope(value)
            items.append(
                (value, f"{scope.description if scope else value} ({resource.display_name})")
            )
    return items
