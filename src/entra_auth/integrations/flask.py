"""entra-auth for Flask: sign users in with ``EntraAuth`` (the shape of Flask-Login) and protect
an API with ``@require_token`` (the shape of Authlib's ``ResourceProtector``), configured from
``app.config`` and the environment.

    api = ApiProtector(app)

    @app.get("/secure-data")
    @api.require_token(scopes=["access_as_user"])
    def secure_data():
        return {"hello": g.principal.name}

Only translation lives here; validation is ``entra_auth.tokens`` and RFC 6750 is
``entra_auth.bearer``.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import msal
import redis
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template_string,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import InternalServerError
from werkzeug.local import LocalProxy
from werkzeug.wrappers import Response as WerkzeugResponse

from .. import aadsts
from ..bearer import bearer_token, challenge
from ..config import EntraConfig
from ..errors import (
    EntraAuthError,
    InsufficientScopeError,
    InteractionRequired,
    KeySetUnavailableError,
    SessionStoreUnavailable,
    SignInError,
)
from ..graph import GraphClient
from ..jwks import JwksCache
from ..logs import redact_logger
from ..signin import SignedIn, SignInFlow, safe_return_path
from ..token_cache import (
    MappingTokenCacheStore,
    RedisTokenCacheStore,
    TokenCacheCipher,
    TokenCacheStore,
    user_token_cache,
)
from ..tokens import AccessTokenValidator, Principal
from .flask_sessions import configure_sessions

log = logging.getLogger("entra_auth.flask")
F = TypeVar("F", bound=Callable[..., Any])
_EXTENSION = "entra_auth.api"

current_principal: Principal | None = cast(
    "Principal | None", LocalProxy(lambda: g.get("principal"))
)


def config_from_app(app: Flask, **overrides: Any) -> EntraConfig:
    """``ENTRA_*`` keys of ``app.config`` over the environment's."""
    keys = {k: str(v) for k, v in app.config.items() if k.startswith("ENTRA_") and v is not None}
    return EntraConfig.from_env({**os.environ, **keys}, **overrides)


class ApiProtector:
    """Validates bearer tokens for a Flask app's API endpoints."""

    def __init__(
        self,
        app: Flask | None = None,
        *,
        config: EntraConfig | None = None,
        validator: AccessTokenValidator | None = None,
        realm: str = "api",
    ):
        self._config = config
        self._validator = validator
        self.realm = realm
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        validator = self._validator
        if validator is None:
            config = self._config or config_from_app(app)
            validator = AccessTokenValidator(config, JwksCache(config))
        app.extensions[_EXTENSION] = validator

    @staticmethod
    def validator(app: Flask | None = None) -> AccessTokenValidator:
        target = app or current_app
        try:
            return cast(AccessTokenValidator, target.extensions[_EXTENSION])
        except KeyError:
            raise RuntimeError(
                "ApiProtector is not set up on this app: call ApiProtector(app) or init_app(app)."
            ) from None

    def require_token(
        self, scopes: Iterable[str] = (), roles: Iterable[str] = ()
    ) -> Callable[[F], F]:
        return require_token(scopes=scopes, roles=roles, realm=self.realm)

    def protect_blueprint(
        self, blueprint: Blueprint, scopes: Iterable[str] = (), roles: Iterable[str] = ()
    ) -> None:
        """Every view of ``blueprint`` requires a valid token (and these scopes/roles)."""
        need_scopes, need_roles = tuple(scopes), tuple(roles)

        @blueprint.before_request
        def check() -> Response | None:
            return _check(need_scopes, need_roles, self.realm)


def require_token(
    scopes: Iterable[str] = (), roles: Iterable[str] = (), *, realm: str = "api"
) -> Callable[[F], F]:
    """The view needs a valid bearer token with these scopes/roles; ``g.principal`` is set."""
    need_scopes, need_roles = tuple(scopes), tuple(roles)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            refused = _check(need_scopes, need_roles, realm)
            if refused is not None:
                return refused
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def _check(scopes: tuple[str, ...], roles: tuple[str, ...], realm: str) -> Response | None:
    validator = ApiProtector.validator()
    try:
        token = bearer_token(request.headers.getlist("Authorization"))
        if token is None:
            return _answer(None, realm)
        g.principal = validator.validate(token, scopes=scopes, roles=roles)
    except EntraAuthError as error:
        level = logging.WARNING if isinstance(error, KeySetUnavailableError) else logging.INFO
        reason = getattr(error, "reason", error.code)
        log.log(level, "Bearer token refused on %s %s: %s", request.method, request.path, reason)
        if isinstance(error, InsufficientScopeError):
            g.principal = None
        return _answer(error, realm)
    return None


def _answer(error: EntraAuthError | None, realm: str) -> Response:
    answer = challenge(error, realm=realm)
    response = jsonify(answer.body)
    response.status_code = answer.status
    response.headers.update(answer.headers)
    return response


# -- web sign-in --------------------------------------------------------------------------------
_USER, _ACCOUNT, _FLOWS, _USED = "entra_user", "entra_account", "entra_flows", "entra_used_states"
_PENDING, _FRESH = "entra_pending", "entra_fresh_sign_in"
_CACHE_ID = "entra_cache_id"
_MAX_FLOWS = 5
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
{% endif %}<p><a href="{{ home }}">Back to the app</a></p></body></html>"""


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
        callback = urlsplit(config.callback_url)
        self._redis = configure_sessions(app, secure=callback.scheme == "https")
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
            if _session_user() is None:
                session[_PENDING] = {"return_to": _here()}
                return redirect(url_for("entra_auth.login"))
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
            cache_id = session[_CACHE_ID] = secrets.token_urlsafe(24)
        return RedisTokenCacheStore(
            self._redis, f"entra:tokens:{cache_id}", self._cipher, ttl=self._cache_ttl
        )

    def graph(self) -> GraphClient:
        """Microsoft Graph as the signed-in user (``User.Read``)."""
        return GraphClient(
            lambda: self.get_token(["User.Read"]),
            base_url=self.graph_url,
            session=self.sign_in._http,
        )

    @property
    def graph_url(self) -> str:
        if self.config.graph_url:
            return self.config.graph_url
        host = self.sign_in.jwks.metadata.raw.get("msgraph_host")
        return (
            f"https://{host}" if isinstance(host, str) and host else "https://graph.microsoft.com"
        )

    # -- routes ---------------------------------------------------------------------------------
    def _login(self) -> WerkzeugResponse:
        pending = session.pop(_PENDING, None) or {}
        scopes = pending.get("scopes") or list(self.config.scopes)
        return_to = safe_return_path(request.args.get("next") or pending.get("return_to"))
        prompt = request.args.get("prompt")
        flow = self.sign_in.begin(
            redirect_uri=self.config.callback_url,
            scopes=scopes,
            prompt=prompt if prompt in ("login", "select_account", "consent") else None,
        )
        flows = dict(session.get(_FLOWS) or {})
        flows[flow["state"]] = {
            "flow": flow,
            "return_to": return_to,
            "interaction": bool(pending.get("interaction")),
        }
        session[_FLOWS] = dict(list(flows.items())[-_MAX_FLOWS:])  # several tabs may sign in
        return _no_referrer(redirect(flow["auth_uri"]))

    def _callback(self) -> WerkzeugResponse | tuple[str, int]:
        args = request.args
        if any(len(args.getlist(k)) > 1 for k in args) or len(request.query_string) > 16384:
            return self._page(
                400, "The sign-in response is malformed.", "Start the sign-in again from this app."
            )
        state = args.get("state")
        flows = dict(session.get(_FLOWS) or {})
        if state and state in (session.get(_USED) or []):
            entry = aadsts.lookup(54005)
            assert entry is not None
            return self._page(
                400, "This sign-in response was already used.", entry.fix, code=entry.name
            )
        pending = flows.pop(state, None) if state else None
        if pending is None:
            if not flows:  # the session (and its flow) expired: start again, no error page
                return _no_referrer(redirect(url_for("entra_auth.login")))
            return self._page(
                400,
                "This sign-in response does not belong to a sign-in this browser started.",
                "Start the sign-in again from this app.",
            )
        session[_FLOWS] = flows
        session[_USED] = [*(session.get(_USED) or [])[-9:], state]
        cache = msal.SerializableTokenCache()
        try:
            signed_in = self.sign_in.complete(pending["flow"], args.to_dict(), cache)
        except SignInError as exc:
            log.info("Sign-in refused: %s", exc.code)
            code = f"AADSTS{exc.aadsts}" if exc.aadsts else None
            title = "Sign-in was cancelled." if exc.code == "access_denied" else "Sign-in failed."
            return self._page(400, title, exc.remedy, code=code, message=exc.message)
        self._start_session(
            signed_in,
            cache,
            pending["flow"].get("scope", []),
            after_interaction=bool(pending.get("interaction")),
        )
        return _no_referrer(redirect(safe_return_path(pending.get("return_to"))))

    def _start_session(
        self,
        signed_in: SignedIn,
        cache: msal.SerializableTokenCache,
        scopes: list[str],
        *,
        after_interaction: bool,
    ) -> None:
        keep = {k: session[k] for k in (_FLOWS, _USED) if k in session}  # other tabs' sign-ins
        regenerate = getattr(current_app.session_interface, "regenerate", None)
        if regenerate is not None and session:  # a new id at sign-in: no session fixation
            regenerate(session)
        session.clear()
        session.update(keep)
        claims = dict(signed_in.user.claims)
        session[_USER] = {k: claims[k] for k in _SIGNED_IN_KEEP if k in claims}
        session[_ACCOUNT] = signed_in.account_id
        self._token_store().save(cache.serialize())
        if after_interaction:  # remembered to stop a loop if the same need comes straight back
            session[_FRESH] = {"scopes": list(scopes), "at": time.time()}

    def _end_session(self) -> None:
        self._token_store().clear()
        session.clear()

    def _logout(self) -> WerkzeugResponse | tuple[str, int]:
        if request.method != "POST":  # a GET (link, image) must not sign anyone out
            return self._page(200, "Sign out?", None, form=url_for("entra_auth.logout"))
        self._end_session()
        return _no_referrer(redirect(self.sign_in.sign_out_url(self.config.after_logout_url)))

    def _interaction_required(
        self, error: InteractionRequired
    ) -> WerkzeugResponse | tuple[str, int]:
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
        session[_PENDING] = {
            "scopes": list(error.scopes),
            "return_to": _here(),
            "interaction": True,
        }
        return _no_referrer(redirect(url_for("entra_auth.login")))

    def _page(
        self,
        status: int,
        title: str,
        remedy: str | None,
        *,
        code: str | None = None,
        message: str | None = None,
        form: str | None = None,
    ) -> tuple[str, int]:
        html = render_template_string(
            _PAGE,
            title=title,
            message=message or "",
            remedy=remedy,
            code=code,
            form=form,
            home=safe_return_path("/"),
        )
        return html, status


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
    if isinstance(original, (redis.RedisError, SessionStoreUnavailable)):
        return _store_unavailable(original)
    return error


def _private_when_signed_in(response: WerkzeugResponse) -> WerkzeugResponse:
    """Pages seen by a signed-in user are theirs alone: no shared or back-button caching."""
    if session.get(_USER) is not None or session.modified:
        response.headers["Cache-Control"] = "no-store"
        response.vary.add("Cookie")
    return response


def _here() -> str:
    path = request.full_path
    return safe_return_path(path[:-1] if path.endswith("?") else path)


def _no_referrer(response: WerkzeugResponse) -> WerkzeugResponse:
    return _auth_headers(response)
