"""The end-session endpoint: ends the browser's sign-in sessions and returns to the app.

It returns only to an address registered for the app (a redirect or post-logout URI), named by
``client_id`` or by the audience of an ``id_token_hint`` the emulator itself signed.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

import jwt
from flask import Blueprint, redirect, render_template, request, session
from werkzeug.wrappers import Response as WerkzeugResponse

from ..context import current
from ..faults import fault_point
from .common import single

blueprint = Blueprint("logout", __name__)


@blueprint.route("/<tenant>/oauth2/v2.0/logout", methods=["GET", "POST"])
@fault_point("logout")
def logout(tenant: str) -> str | WerkzeugResponse:
    state = current().state
    params = single(request.values, page=True)
    with state.lock:
        for entry in (session.pop("sso", None) or {}).values():
            state.sso_sessions.discard(entry.get("sid"))
    session.pop("txns", None)
    target = params.get("post_logout_redirect_uri")
    client_id = params.get("client_id") or _hint_audience(params.get("id_token_hint"))
    client = state.seed.app(client_id) if client_id else None
    notice = ""
    if target:
        allowed = client is not None and target in (
            *client.redirect_uris,
            *client.post_logout_redirect_uris,
        )
        if allowed:
            parts = urlsplit(target)
            if params.get("state"):
                extra = urlencode({"state": params["state"]})
                parts = parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra)
            return redirect(urlunsplit(parts), 302)
        notice = (
            "The app asked to return to an address that is not registered for it, so you "
            "stay here. Register it as a redirect URI (or post-logout URI) of the app."
        )
    return render_template("signed_out.html", notice=notice)


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
