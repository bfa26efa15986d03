"""The end-session endpoint: ends the browser's sign-in sessions, tells their apps, returns.

It returns only to an address registered for the app (a redirect or post-logout URI), named by
``client_id`` or by the audience of an ``id_token_hint`` the emulator itself signed.

Single sign-out, as Entra does it: every app that signed in through a session this sign-out
ends, and that registered a front-channel logout URL, has that URL loaded in a hidden iframe of
the sign-out page, with ``?sid=<the session's id>`` (the ``sid`` claim of the ID tokens it got).
Entra sends ``sid`` alone, without the ``iss`` of OpenID Connect Front-Channel Logout 1.0 (and
its discovery does not advertise ``frontchannel_logout_session_supported``). The app that asked
to sign out is framed too. Only URLs from the directory go into a frame, and the page's
Content-Security-Policy allows exactly those; once they have loaded (or after a bounded wait)
the page continues to the post-logout redirect, or at once with a plain 302 when there is no
frame to load.

Which account, as Entra decides it: ``logout_hint`` (the value of the ID token's ``login_hint``
optional claim) names the account to sign out, with no question asked; only its sessions end
and only its apps are told, the browser's other accounts stay signed in. Without a hint (or
with one that names no account of this browser), a browser signed in with several accounts
(one per tenant, and those a fresh sign-in replaced) gets Entra's account picker ("Pick an
account"), whose choice comes back here as a ``logout_hint``; with one account it is signed
out at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import jwt
from flask import Blueprint, make_response, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from ..context import current
from ..faults import fault_point
from ..minting import login_hint
from ..seed import User, front_channel_url_problem
from .common import single

blueprint = Blueprint("logout", __name__)

# How long the sign-out page waits for the front-channel frames before it continues anyway: an
# app that never answers must not keep the user on the page.
FRAME_WAIT_MS = 5000
_SCRIPT_SCHEMES = ("javascript", "data", "vbscript")
# What the account picker sends back with the choice: the request's own parameters.
_KEPT = ("post_logout_redirect_uri", "client_id", "id_token_hint", "state")


@dataclass(frozen=True)
class Frame:
    """A front-channel logout URL to load: an app of an ended session, and that session."""

    client_id: str
    app_name: str
    url: str  # the registered URL with ?sid= added


@dataclass(frozen=True)
class Account:
    """An account this browser is signed in with, and its live sessions (sids)."""

    user: User
    tenant_id: str
    hint: str  # the ID token's login_hint for it: what a logout_hint names it by
    sids: tuple[str, ...]


@blueprint.route("/<tenant>/oauth2/v2.0/logout", methods=["GET", "POST"])
@fault_point("logout")
def logout(tenant: str) -> WerkzeugResponse:
    state = current().state
    params = single(request.values, page=True)
    accounts = _accounts()
    hint = params.get("logout_hint")
    chosen = next((a for a in accounts if hint and a.hint == hint), None)
    if chosen is None and len(accounts) > 1:
        return _picker(tenant, params, accounts)
    frames = _frames(_end_sessions(chosen))
    session.pop("txns", None)
    target = params.get("post_logout_redirect_uri")
    client_id = params.get("client_id") or _hint_audience(params.get("id_token_hint"))
    client = state.seed.app(client_id) if client_id else None
    notice = ""
    if target:
        allowed = client is not None and target in (
            *client.redirect_uris,
            *client.spa_redirect_uris,
            *client.post_logout_redirect_uris,
        )
        if allowed:
            parts = urlsplit(target)
            if params.get("state"):
                extra = urlencode({"state": params["state"]})
                parts = parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra)
            if not frames:
                return redirect(urlunsplit(parts), 302)
            # Never a link or script navigation to a URL that runs code in this page's origin.
            if parts.scheme.lower() not in _SCRIPT_SCHEMES:
                return _signed_out_page(frames, continue_to=urlunsplit(parts))
        else:
            notice = (
                "The app asked to return to an address that is not registered for it, so you "
                "stay here. Register it as a redirect URI (or post-logout URI) of the app."
            )
    return _signed_out_page(frames, notice=notice)


def _accounts() -> list[Account]:
    """The accounts this browser is signed in with (live sessions only): each tenant's
    current one, then those a fresh sign-in replaced."""
    state = current().state
    entries = [
        (tid, entry.get("oid"), entry.get("sid"))
        for tid, entry in (session.get("sso") or {}).items()
        if isinstance(entry, dict)
    ] + [
        (entry.get("tid"), entry.get("oid"), entry.get("sid"))
        for entry in session.get("earlier") or []
        if isinstance(entry, dict)
    ]
    grouped: dict[tuple[str, str], list[str]] = {}
    with state.lock:
        for tid, oid, sid in entries:
            if isinstance(tid, str) and isinstance(oid, str) and sid in state.sso_sessions:
                grouped.setdefault((tid, oid), []).append(sid)
    accounts = []
    for (tid, oid), sids in grouped.items():
        user = state.seed.user(tid, oid)
        if user is not None:
            accounts.append(Account(user, tid, login_hint(oid, tid), tuple(sids)))
    return accounts


def _picker(tenant: str, params: dict[str, str], accounts: list[Account]) -> WerkzeugResponse:
    """Entra's account picker: the choice comes back to the end-session endpoint (POST, which
    it accepts) as ``logout_hint``, with the request's own parameters."""
    seed = current().state.seed
    tenant_names = {
        a.tenant_id: (found.display_name or found.domain)
        if (found := seed.tenant(a.tenant_id))
        else a.tenant_id
        for a in accounts
    }
    return make_response(
        render_template(
            "sign_out_picker.html",
            action=url_for("logout.logout", tenant=tenant),
            fields={name: params[name] for name in _KEPT if params.get(name)},
            accounts=accounts,
            tenant_names=tenant_names,
        )
    )


def _end_sessions(account: Account | None = None) -> list[tuple[str, list[str]]]:
    """End the sessions of ``account`` in this browser, or every session it started (None);
    return the live ones', each with the apps signed in through it."""
    state = current().state
    if account is None:
        current_sids = [
            entry.get("sid")
            for entry in (session.pop("sso", None) or {}).values()
            if isinstance(entry, dict)
        ]
        earlier = [e.get("sid") for e in session.pop("earlier", None) or [] if isinstance(e, dict)]
        sids = current_sids + earlier
    else:
        sids = list(account.sids)
        sso = dict(session.get("sso") or {})
        entry = sso.get(account.tenant_id)
        if isinstance(entry, dict) and entry.get("sid") in account.sids:
            del sso[account.tenant_id]
            session["sso"] = sso
        session["earlier"] = [
            e
            for e in session.get("earlier") or []
            if isinstance(e, dict) and e.get("sid") not in account.sids
        ]
    ended: list[tuple[str, list[str]]] = []
    with state.lock:
        for sid in sids:
            if not isinstance(sid, str):
                continue
            apps = state.sso_apps.pop(sid, [])
            # A session already ended (by another copy of the cookie) has no one left to tell.
            if sid in state.sso_sessions:
                state.sso_sessions.discard(sid)
                ended.append((sid, apps))
    return ended


def _frames(ended: list[tuple[str, list[str]]]) -> list[Frame]:
    """The front-channel logout URL of each app of ``ended`` that registered one, with ``sid``."""
    seed = current().state.seed
    frames: list[Frame] = []
    for sid, client_ids in ended:
        for client_id in client_ids:
            app = seed.app(client_id)
            registered = app.front_channel_logout_url if app else None
            # Checked again here (the seed checked it at load): only a URL that is safe in an
            # iframe's src and in the page's CSP is ever framed.
            if app is None or not registered or front_channel_url_problem(registered):
                continue
            parts = urlsplit(registered)
            # Entra's request: GET the URL with `sid` added; a registered query is kept.
            extra = urlencode({"sid": sid})
            url = urlunsplit(
                parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra)
            )
            if all(f.url != url for f in frames):
                frames.append(Frame(app.client_id, app.display_name, url))
    return frames


def _signed_out_page(
    frames: list[Frame], *, continue_to: str = "", notice: str = ""
) -> WerkzeugResponse:
    nonce = secrets.token_urlsafe(18)
    response = make_response(
        render_template(
            "signed_out.html",
            frames=frames,
            continue_to=continue_to,
            notice=notice,
            nonce=nonce,
            wait_ms=FRAME_WAIT_MS,
        )
    )
    response.headers["Content-Security-Policy"] = page_policy(frames, nonce)
    return response


def page_policy(frames: list[Frame], nonce: str) -> str:
    """The sign-out page's Content-Security-Policy: it may frame exactly ``frames``, run only
    its own script (by nonce), and be framed by no one."""
    frame_src = " ".join(sorted({frame_source(f.url) for f in frames})) or "'none'"
    return (
        "default-src 'none'; style-src 'unsafe-inline'; "
        f"script-src 'nonce-{nonce}'; frame-src {frame_src}; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


def frame_source(url: str) -> str:
    """The CSP source expression that allows ``url`` in a frame and nothing else on its host.

    Scheme, host, port and path, without the query (a CSP source cannot hold one; it matches
    any). The path is percent-encoded where a CSP would read a character as syntax (`;`, `,`,
    a quote); a path ending in ``/`` allows what is under it, as CSP defines.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = f":{parts.port}" if parts.port is not None else ""
    path = quote(parts.path, safe="/-._~!$&()*+=:@%")
    return f"{parts.scheme.lower()}://{host}{port}{path}"


def _hint_audience(hint: str | None) -> str | None:
    """The audience (client id) of an ID token the emulator signed; None for anything else."""
    if not hint:
        return None
    try:
        header = jwt.get_unverified_header(hint)
        key = current().state.key_by_kid(str(header.get("kid", "")))
        if key is None:
            return None
        claims = jwt.decode(
            hint,
            key.private_key.public_key(),
            algorithms=["RS256"],
            options={"verify_exp": False, "verify_aud": False},
        )
    except jwt.PyJWTError:
        return None
    aud = claims.get("aud")
    return aud if isinstance(aud, str) else None
