"""Sign users in to a Flask app with ``EntraAuth`` (the shape of Flask-Login).

    auth = EntraAuth(app)

    @app.get("/profile")
    @auth.login_required
    def profile():
        return auth.graph().me()

Only translation lives here: the flow is ``entra_auth.client.signin``, sign-ins under way are
``entra_auth.pending``, sessions are ``.sessions``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import msal
import requests
from flask import (
    Blueprint,
    Flask,
    current_app,
    jsonify,
    redirect,
    render_template_string,
    request,
    session,
    url_for,
)
from flask.globals import request_ctx
from werkzeug.exceptions import InternalServerError
from werkzeug.local import LocalProxy
from werkzeug.wrappers import Response as WerkzeugResponse

from ... import aadsts
from ...client.graph import GraphClient
from ...client.signin import SignedIn, SignInFlow, safe_return_path
from ...client.token_cache import (
    MappingTokenCacheStore,
    TokenCacheCipher,
    TokenCacheStore,
    user_token_cache,
)
from ...config import EntraConfig
from ...derive import derive_key
from ...errors import (
    InteractionRequired,
    KeySetUnavailableError,
    ProviderUnavailableError,
    SessionStoreUnavailable,
    SignInError,
)
from ...logs import inert, redact_logger
from ...pending import PendingSignInCookie, PendingSignIns
from ...tokens import Principal
from ._config import config_from_app
from .sessions import configure_sessions, store_errors

log = logging.getLogger("entra_auth.flask")
F = TypeVar("F", bound=Callable[..., Any])


# -- web sign-in --------------------------------------------------------------------------------
# The server-side session holds only a signed-in user; sign-ins under way live in the browser's
# own short-lived cookie (``entra_auth.pending``), so anonymous requests store nothing (HX04).
_USER, _ACCOUNT, _FRESH = "entra_user", "entra_account", "entra_fresh_sign_in"
_CACHE_ID = "entra_cache_id"
# Who the session is signed in as, sealed to the session id with a key Redis never holds: a
# Redis (or session-file) writer can delete or roll back sessions, not change whom they speak for.
_SEAL = "entra_seal"
_SIGNED_IN_KEEP = (
    "oid",
    "tid",
    "sub",
    "name",
    "preferred_username",
    "email",
    "roles",
    "idp",
    "iss",
    "aud",
    "ver",
    "iat",
    "exp",
    "sid",
)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;
color:#1b1b1b}h1{font-size:1.5rem}.fix{background:#f3f6fb;padding:.8rem 1rem;border-left:4px solid
#0067b8}code{background:#f3f3f3;padding:0 .2rem}</style></head>
<body><h1>{{ title }}</h1><p id="message">{{ message }}</p>
{% if remedy %}<p class="fix" id="remedy"><strong>What to do:</strong> {{ remedy }}</p>{% endif %}
{% if code %}<p>Error code: <code id="code">{{ code }}</code> (<code>entra-auth explain {{ code
}}</code> says more)</p>{% endif %}
{% if form %}<form method="post" action="{{ form }}"><button type="submit">Sign out</button></form>
{% endif %}
{% if retry %}<p><a id="retry" href="{{ retry }}">Try again</a></p>{% endif %}
<p><a href="{{ home }}">Back to the app</a></p></body></html>"""


class SignedInUser:
    """The signed-in user, from the verified ID token (claims for display; key on ``key``)."""

    def __init__(self, data: dict[str, Any]):
        self.claims: dict[str, Any] = dict(data)
        self.oid: str = data["oid"]
        self.tid: str = data["tid"]
        self.sub: str = data["sub"]
        self.name: str | None = data.get("name")
        self.username: str | None = data.get("preferred_username")

    @property
    def key(self) -> tuple[str, str]:
        return (self.oid, self.tid)

    def principal(self) -> Principal:
        return Principal(
            oid=self.oid, tid=self.tid, sub=self.sub, name=self.name, claims=self.claims
        )


def _session_user() -> SignedInUser | None:
    data = session.get(_USER)
    if not isinstance(data, dict):
        return None
    extension = current_app.extensions.get("entra_auth")
    if not isinstance(extension, EntraAuth) or not extension._sealed():
        return None
    try:
        return SignedInUser(data)
    except KeyError:
        return None


current_user: SignedInUser | None = cast("SignedInUser | None", LocalProxy(_session_user))


def _auth_headers(response: WerkzeugResponse) -> WerkzeugResponse:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


class EntraAuth:
    """Sign users in with Entra ID (the shape of Flask-Login).

        auth = EntraAuth(app)          # ENTRA_* from app.config, then the environment

        @app.get("/profile")
        @auth.login_required
        def profile():
            me = auth.graph().me()
            ...

    Routes: ``/login``, the redirect path (``/get_token``), ``/logout`` (POST). Needs
    ``ENTRA_CLIENT_ID``, ``ENTRA_CLIENT_SECRET``, the authority, and a Flask ``SECRET_KEY``.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        config: EntraConfig | None = None,
        login_path: str = "/login",
        logout_path: str = "/logout",
    ):
        self._config = config
        self.login_path, self.logout_path = login_path, logout_path
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        config = self._config or config_from_app(app)
        config.require("client_id", "client_secret")
        self.config = config
        self.sign_in = SignInFlow(config)
        # Graph answers its own errors (GraphClient reads them): a plain session, not MSAL's.
        self._graph_http = requests.Session()
        if config.ca_bundle:
            self._graph_http.verify = config.ca_bundle
            self._graph_http.trust_env = False
        callback = urlsplit(config.callback_url)
        secure = callback.scheme == "https"
        self._redis = configure_sessions(app, secure=secure)
        # __Host-: over https no sibling domain or plain-http page can plant it (HX05).
        self._pending_cookie = "__Host-entra_signin" if secure else "entra_signin"
        self._secure = secure
        self._seal_key = derive_key(cast("str | bytes", app.secret_key), "entra-auth session seal")
        self._pending = PendingSignInCookie(
            cast("str | bytes", app.secret_key),
            max_age=int(app.config.get("ENTRA_SIGN_IN_MAX_AGE", 600)),
        )
        # With Redis, each session's token cache is an encrypted entry of its own: fail at start
        # without a key rather than ever store tokens in the clear.
        self._cipher = TokenCacheCipher(config.token_cache_keys) if self._redis else None
        self._cache_ttl = int(min(app.permanent_session_lifetime.total_seconds(), 90 * 86400))
        bp = Blueprint("entra_auth", __name__)
        bp.add_url_rule(self.login_path, "login", self._login)
        bp.add_url_rule(callback.path or "/", "callback", self._callback)
        bp.add_url_rule(self.logout_path, "logout", self._logout, methods=["GET", "POST"])
        bp.after_request(_auth_headers)
        app.register_blueprint(bp)
        app.register_error_handler(InteractionRequired, self._interaction_required)
        # One answer for the provider being down, slow or answering nonsense, wherever it
        # surfaces (sign-in start, a view's get_token, Graph): 503 + Retry-After, or 502.
        app.register_error_handler(ProviderUnavailableError, self._provider_unavailable)
        app.register_error_handler(SessionStoreUnavailable, _store_unavailable)
        app.register_error_handler(InternalServerError, _store_unavailable_or_500)
        app.extensions["entra_auth"] = self
        app.context_processor(lambda: {"current_user": _session_user()})
        app.after_request(_private_when_signed_in)
        redact_logger("werkzeug")  # request lines carry ?code=…&state=…

    # -- for views ------------------------------------------------------------------------------
    def login_required(self, view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if _session_user() is None:  # nothing stored: the page to return to rides along
                return redirect(url_for("entra_auth.login", next=_here()))
            return view(*args, **kwargs)

        return cast(F, wrapper)

    def get_token(self, scopes: Iterable[str]) -> str:
        """An access token for the signed-in user; ``InteractionRequired`` sends them through
        the sign-in page (consent, a revoked grant) and back to this page."""
        wanted = tuple(scopes)
        user = _session_user()
        account = session.get(_ACCOUNT)
        if user is None or not isinstance(account, str):
            raise InteractionRequired("Nobody is signed in.", scopes=wanted)
        store = self._token_store()
        try:
            with user_token_cache(store) as cache:
                return self.sign_in.acquire_token(cache, account, wanted, user=user.principal())
        except SignInError as exc:  # a refresh spoke for someone else: end this session
            log.warning("Session ended: %s", exc.code)
            self._end_session()
            raise InteractionRequired(exc.message, scopes=wanted) from None

    def _token_store(self) -> TokenCacheStore:
        """This session's token cache: its own encrypted Redis entry, or inside the session."""
        if self._redis is None or self._cipher is None:
            return MappingTokenCacheStore(session)
        cache_id = session.get(_CACHE_ID)
        if not isinstance(cache_id, str):
            # Re-seal only a session that was sealed: never bless an identity someone planted.
            was_sealed = session.get(_USER) is not None and self._sealed()
            cache_id = session[_CACHE_ID] = secrets.token_urlsafe(24)
            if was_sealed:
                session[_SEAL] = self._seal()
        from ...client.redis_cache import RedisTokenCacheStore  # configured: redis is there

        return RedisTokenCacheStore(
            self._redis, f"entra:tokens:{cache_id}", self._cipher, ttl=self._cache_ttl
        )

    def graph(self) -> GraphClient:
        """Microsoft Graph as the signed-in user (``User.Read``), waits bounded for a page:
        a throttled Graph is reported ("try again in N seconds"), not slept through."""
        timeout = self.config.http_timeout
        return GraphClient(
            lambda: self.get_token(["User.Read"]),
            base_url=self.graph_url,
            session=self._graph_http,
            timeout=timeout,
            max_retries=1,
            max_wait=timeout,
        )

    @property
    def graph_url(self) -> str:
        return self.config.graph_url or self.sign_in.discovery.metadata.graph_url

    # -- routes ---------------------------------------------------------------------------------
    def _login(self) -> WerkzeugResponse:
        prompt = request.args.get("prompt")
        return self._send_to_sign_in(
            list(self.config.scopes),
            return_to=safe_return_path(request.args.get("next")),
            interaction=False,
            prompt=prompt if prompt in ("login", "select_account", "consent") else None,
        )

    def _send_to_sign_in(
        self,
        scopes: list[str],
        *,
        return_to: str,
        interaction: bool,
        prompt: str | None = None,
    ) -> WerkzeugResponse:
        """To the identity provider, the flow kept in this browser's pending-sign-in cookie."""
        flow = self.sign_in.begin(
            redirect_uri=self.config.callback_url, scopes=scopes, prompt=prompt
        )
        pending = self._pending.open(request.cookies.get(self._pending_cookie))
        pending.add(flow, return_to=return_to, interaction=interaction, now=time.time())
        return self._with_pending(_no_referrer(redirect(flow["auth_uri"])), pending)

    def _with_pending(
        self, response: WerkzeugResponse, pending: PendingSignIns
    ) -> WerkzeugResponse:
        if not pending:
            response.delete_cookie(
                self._pending_cookie, path="/", secure=self._secure, httponly=True, samesite="Lax"
            )
            return response
        response.set_cookie(
            self._pending_cookie,
            self._pending.seal(pending),
            max_age=self._pending.max_age,
            path="/",
            secure=self._secure,
            httponly=True,
            samesite="Lax",  # sent on the IdP's top-level redirect back, not on cross-site POSTs
        )
        return response

    def _callback(self) -> WerkzeugResponse:
        args = request.args
        if any(len(args.getlist(k)) > 1 for k in args) or len(request.query_string) > 16384:
            return self._page(
                400, "The sign-in response is malformed.", "Start the sign-in again from this app."
            )
        state = args.get("state")
        pending = self._pending.open(request.cookies.get(self._pending_cookie))
        if state and pending.was_used(state):
            entry = aadsts.lookup(54005)
            assert entry is not None
            return self._page(
                400, "This sign-in response was already used.", entry.fix, code=entry.name
            )
        flow = pending.take(state) if state else None
        if flow is None:
            if not pending.flows:  # the flow expired (or never was): start again, no error page
                return _no_referrer(redirect(url_for("entra_auth.login")))
            return self._page(
                400,
                "This sign-in response does not belong to a sign-in this browser started.",
                "Start the sign-in again from this app.",
            )
        cache = msal.SerializableTokenCache()
        try:
            signed_in = self.sign_in.complete(flow.flow, args.to_dict(), cache)
        except ProviderUnavailableError as exc:
            # The code is single-use: the way on is a new sign-in once the provider is back,
            # returning to the page the user was going to. Nobody was signed out.
            again = url_for("entra_auth.login", next=safe_return_path(flow.return_to))
            return self._with_pending(self._provider_unavailable(exc, retry=again), pending)
        except SignInError as exc:
            log.info("Sign-in refused: %s", inert(exc.code, 64))
            code = f"AADSTS{exc.aadsts}" if exc.aadsts else None
            title = "Sign-in was cancelled." if exc.code == "access_denied" else "Sign-in failed."
            page = self._page(400, title, exc.remedy, code=code, message=exc.message)
            return self._with_pending(page, pending)
        self._start_session(
            signed_in, cache, flow.flow.get("scope", []), after_interaction=flow.interaction
        )
        done = _no_referrer(redirect(safe_return_path(flow.return_to)))
        return self._with_pending(done, pending)

    def _start_session(
        self,
        signed_in: SignedIn,
        cache: msal.SerializableTokenCache,
        scopes: list[str],
        *,
        after_interaction: bool,
    ) -> None:
        if isinstance(session.get(_CACHE_ID), str):  # a previous user's tokens go with them
            self._token_store().clear()
        regenerate = getattr(current_app.session_interface, "regenerate", None)
        if regenerate is not None and session:  # a new id at sign-in: no session fixation
            regenerate(session)  # (an id with nothing stored is replaced by Flask-Session)
        session.clear()
        claims = dict(signed_in.user.claims)
        session[_USER] = {k: claims[k] for k in _SIGNED_IN_KEEP if k in claims}
        session[_ACCOUNT] = signed_in.account_id
        self._token_store().save(cache.serialize())
        session[_SEAL] = self._seal()
        if after_interaction:  # remembered to stop a loop if the same need comes straight back
            session[_FRESH] = {"scopes": list(scopes), "at": time.time()}

    def _seal(self) -> str:
        """HMAC of the session's id and identity (user, MSAL account, token-cache id)."""
        identity = json.dumps(
            [
                str(getattr(session, "sid", "")),
                session.get(_USER),
                session.get(_ACCOUNT),
                session.get(_CACHE_ID),
            ],
            sort_keys=True,
            separators=(",", ":"),
        )
        return hmac.new(self._seal_key, identity.encode(), hashlib.sha256).hexdigest()

    def _sealed(self) -> bool:
        given = session.get(_SEAL)
        if not isinstance(given, str) or not getattr(session, "sid", None):
            return False
        return hmac.compare_digest(given, self._seal())

    def _end_session(self) -> None:
        self._token_store().clear()
        session.clear()

    def _logout(self) -> WerkzeugResponse:
        if request.method != "POST":  # a GET (link, image) must not sign anyone out
            return self._page(200, "Sign out?", None, form=url_for("entra_auth.logout"))
        self._end_session()
        return _no_referrer(redirect(self.sign_in.sign_out_url(self.config.after_logout_url)))

    def _provider_unavailable(
        self, error: ProviderUnavailableError, *, retry: str | None = None
    ) -> WerkzeugResponse:
        """503 with ``Retry-After`` (502 for nonsense): a page, or JSON for API-style requests.

        Touches neither the session nor the token cache: nothing is lost, and the next
        request after the provider is back works without a restart."""
        status = error.http_status
        wait = error.retry_after if error.retry_after else 5
        message, remedy = error.message, error.remedy
        if isinstance(error, KeySetUnavailableError):
            # Raised by discovery/keys with the URL and cause in its message: those are for the
            # log; the user reads words.
            message = (
                "The sign-in service (Microsoft Entra ID) is not available right now. "
                "Nothing was lost."
            )
            remedy = "Try again in a few seconds."
        log.warning(
            "Identity provider %s: host=%s step=%s cause=%s (%s)",
            "answered nonsense" if status == 502 else "unavailable",
            inert(error.host or str(self.config.authority), 200),
            inert(error.step or request.endpoint or "", 40),
            inert(error.cause or error.code, 200),
            inert(error.message, 400),
        )
        if _wants_json():
            response: WerkzeugResponse = jsonify(
                {
                    "error": "temporarily_unavailable" if status == 503 else "bad_gateway",
                    "error_description": message,
                    "code": error.code,
                    "retry_after": wait if status == 503 else None,
                }
            )
            response.status_code = status
            response = _auth_headers(response)
        else:
            service = "Microsoft Graph" if error.step == "Graph" else "The sign-in service"
            title = (
                f"{service} is unavailable" if status == 503 else f"{service} answered unexpectedly"
            )
            if retry is None and request.method == "GET":
                retry = _here()  # the page the user was going to, to reload once it is back
            response = self._page(status, title, remedy, message=message, retry=retry)
        if status == 503:
            response.headers["Retry-After"] = str(wait)
        return response

    def _interaction_required(self, error: InteractionRequired) -> WerkzeugResponse:
        fresh = session.get(_FRESH) or {}
        just_signed_in = time.time() - float(fresh.get("at", 0)) < 60
        if just_signed_in and set(error.scopes) <= set(fresh.get("scopes", [])):
            # The user just signed in for these scopes and there is still no token: sending
            # them back to the IdP would loop. Say so instead.
            return self._page(
                403,
                "You are signed in, but the app could not get a token for this page.",
                error.remedy,
                message=error.message,
            )
        try:
            return self._send_to_sign_in(
                list(error.scopes) or list(self.config.scopes), return_to=_here(), interaction=True
            )
        except ProviderUnavailableError as down:  # raised in an error handler: answer it here
            return self._provider_unavailable(down)

    def _page(
        self,
        status: int,
        title: str,
        remedy: str | None,
        *,
        code: str | None = None,
        message: str | None = None,
        form: str | None = None,
        retry: str | None = None,
    ) -> WerkzeugResponse:
        html = render_template_string(
            _PAGE,
            title=title,
            message=message or "",
            remedy=remedy,
            code=code,
            form=form,
            retry=retry,
            home=safe_return_path("/"),
        )
        return _auth_headers(WerkzeugResponse(html, status, mimetype="text/html"))


_STORE_DOWN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Temporarily unavailable</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto">
<h1>Temporarily unavailable</h1><p id="message">The session store is unavailable, so this
page cannot be shown right now. Nothing was lost: try again in a moment.</p></body></html>"""


def _store_unavailable(error: Exception) -> WerkzeugResponse:
    # A plain page: the session itself may be what failed, so nothing here touches it.
    log.error("Session store unavailable: %s", getattr(error, "message", type(error).__name__))
    response = WerkzeugResponse(_STORE_DOWN, 503, mimetype="text/html")
    response.headers["Retry-After"] = "5"
    return _auth_headers(response)


def _store_unavailable_or_500(error: InternalServerError) -> WerkzeugResponse | InternalServerError:
    """Flask-Session fails outside any view (opening or saving the session): same 503."""
    original = error.original_exception
    if isinstance(original, store_errors()):
        return _store_unavailable(original)
    return error


def _private_when_signed_in(response: WerkzeugResponse) -> WerkzeugResponse:
    """Pages seen by a signed-in user are theirs alone: no shared or back-button caching."""
    if request_ctx.session is None:  # the store failed while opening it: the 503 page is private
        response.headers["Cache-Control"] = "no-store"
        return response
    if session.get(_USER) is not None or session.modified:
        response.headers["Cache-Control"] = "no-store"
        response.vary.add("Cookie")
    return response


def _wants_json() -> bool:
    """API-style requests (``Accept: application/json`` over HTML, or a JSON body) get JSON."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" or bool(request.is_json)


def _here() -> str:
    path = request.full_path
    return safe_return_path(path[:-1] if path.endswith("?") else path)


def _no_referrer(response: WerkzeugResponse) -> WerkzeugResponse:
    return _auth_headers(response)
