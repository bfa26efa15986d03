"""Sign users in to a Flask app with ``EntraAuth`` (the shape of Flask-Login).

    auth = EntraAuth()                      # module level; auth.init_app(app) in create_app

    @app.get("/profile")
    @auth.login_required
    def profile():
        return auth.graph().me()

    @app.get("/admin")
    @auth.login_required(roles=["Admin"])   # app roles from the ID token; else a 403 page
    def admin(): ...

    @auth.user_loader                       # after each verified sign-in, and once a request
    def load_user(user): return User.for_entra(user.tid, user.oid)

Only translation lives here: the flow is ``entra_auth.client.signin``, sign-ins under way are
``entra_auth.pending``, what a session holds is ``entra_auth.client.session``, sessions are
``.sessions``. The pages the library shows itself are templates under
``entra_auth/templates/entra_auth/`` (shared by the web adapters) that an app replaces by
shipping its own of the same name (``layout.html`` for the look of all of them).
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast, overload
from urllib.parse import urlsplit

import msal
import requests
from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.globals import request_ctx
from werkzeug.exceptions import InternalServerError
from werkzeug.local import LocalProxy
from werkzeug.wrappers import Response as WerkzeugResponse

from ...client import callback, pages
from ...client import session as websession
from ...client.graph import GraphClient
from ...client.session import ANONYMOUS, AnonymousUser, SignedInUser
from ...client.signin import SignedIn, SignInFlow, safe_return_path
from ...client.signins import framing_origins
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
    ProviderUnavailableError,
    SessionStoreUnavailable,
    SignInError,
)
from ...logs import inert, redact_logger
from ...pending import PendingFlow, PendingSignInCookie, PendingSignIns
from ...templates import TEMPLATES
from ._config import config_from_app
from .sessions import SignInSessions, configure_sessions, store_errors

log = logging.getLogger("entra_auth.flask")
F = TypeVar("F", bound=Callable[..., Any])


# -- web sign-in --------------------------------------------------------------------------------
# What the session holds and how it is trusted is ``entra_auth.client.session``'s (one
# definition for every adapter); sign-ins under way live in the browser's own short-lived
# cookie (``entra_auth.pending``), so anonymous requests store nothing (HX04).
_FRONT_CHANNEL_DONE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Signed out</title></head><body>Signed out.</body></html>"""


def _session_user() -> SignedInUser | None:
    """The signed-in user of this request (worked out once a request), or None."""
    if "entra_user" in g:
        return cast("SignedInUser | None", g.entra_user)
    user = _load_session_user()
    g.entra_user = user
    return user


def _load_session_user() -> SignedInUser | None:
    if request_ctx.session is None:  # the session store failed while opening it
        return None
    extension = current_app.extensions.get("entra_auth")
    if not isinstance(extension, EntraAuth):
        return None
    data = websession.user_data(extension._seal_key, _session_id(), session)
    if data is None:
        return None
    user = SignedInUser(data, extension._user_loader)
    if extension._ended_at_idp(data):
        extension._end_session()
        return None
    return user


def _current_user() -> SignedInUser | AnonymousUser:
    return _session_user() or ANONYMOUS


def _session_id() -> str:
    """Flask-Session's id of this session (the seal binds the identity to it)."""
    return str(getattr(session, "sid", "") or "")


current_user: SignedInUser | AnonymousUser = cast(
    "SignedInUser | AnonymousUser", LocalProxy(_current_user)
)


def _auth_headers(response: WerkzeugResponse) -> WerkzeugResponse:
    # The front-channel sign-out route sets its framers (the IdP's page frames it).
    response.headers.update(pages.headers(g.get("entra_frame_ancestors")))
    if g.get("entra_frame_ancestors"):
        response.headers.pop("X-Frame-Options", None)
    return response


class EntraAuth:
    """Sign users in with Entra ID (the shape of Flask-Login).

        auth = EntraAuth()             # at module level: nothing is read until init_app

        def create_app(settings=None):
            app = Flask(__name__)
            app.config.update(settings or {})
            auth.init_app(app)         # ENTRA_* from app.config, then the environment
            return app

    Routes: ``/login``, the redirect path (``/get_token``), ``/logout`` (POST), and the
    front-channel sign-out route (``/logout/front-channel``) the IdP loads when the user signs
    out of another app of the same sign-in. Needs ``ENTRA_CLIENT_ID``, ``ENTRA_CLIENT_SECRET``,
    the authority, and a Flask ``SECRET_KEY``.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        config: EntraConfig | None = None,
        login_path: str = "/login",
        logout_path: str = "/logout",
        front_channel_logout_path: str = "/logout/front-channel",
    ):
        self._config = config
        self.login_path, self.logout_path = login_path, logout_path
        self.front_channel_logout_path = front_channel_logout_path
        self._user_loader: Callable[[SignedInUser], Any] | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        needed = ("client_id", "credential")
        config = self._config or config_from_app(app, require=needed)
        config.require(*needed)
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
        lifetime = app.permanent_session_lifetime.total_seconds()
        self._cache_ttl = int(min(lifetime, 90 * 86400))
        # Front-channel sign-out needs to find sessions by the IdP's sid: in Redis or the files.
        self._sign_ins = (
            SignInSessions(app, self._redis, int(lifetime))
            if self._redis is not None or hasattr(app.session_interface, "cache")
            else None
        )
        bp = Blueprint("entra_auth", __name__, template_folder=str(TEMPLATES))
        bp.add_url_rule(self.login_path, "login", self._login)
        bp.add_url_rule(callback.path or "/", "callback", self._callback)
        bp.add_url_rule(self.logout_path, "logout", self._logout, methods=["GET", "POST"])
        bp.add_url_rule(self.front_channel_logout_path, "front_channel_logout", self._front_channel)
        bp.after_request(_auth_headers)
        app.register_blueprint(bp)
        app.register_error_handler(InteractionRequired, self._interaction_required)
        # One answer for the provider being down, slow or answering nonsense, wherever it
        # surfaces (sign-in start, a view's get_token, Graph): 503 + Retry-After, or 502.
        app.register_error_handler(ProviderUnavailableError, self._provider_unavailable)
        app.register_error_handler(SessionStoreUnavailable, _store_unavailable)
        app.register_error_handler(InternalServerError, _store_unavailable_or_500)
        app.extensions["entra_auth"] = self
        app.context_processor(_template_context)
        app.after_request(_private_when_signed_in)
        app.after_request(_forget_signed_out)
        redact_logger("werkzeug")  # request lines carry ?code=…&state=…

    # -- for views ------------------------------------------------------------------------------
    @overload
    def login_required(self, view: F) -> F: ...
    @overload
    def login_required(self, *, roles: Iterable[str] = ()) -> Callable[[F], F]: ...
    def login_required(
        self, view: F | None = None, *, roles: Iterable[str] = ()
    ) -> F | Callable[[F], F]:
        """The view needs a signed-in user (else to ``/login?next=…``) with every app role of
        ``roles`` in their ID token (else a 403 page), and a record from ``user_loader``."""
        need = tuple(roles)

        def decorate(view: F) -> F:
            @functools.wraps(view)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                user = _session_user()
                if user is None:  # nothing stored: the page to return to rides along
                    return redirect(url_for("entra_auth.login", next=_here()))
                if self._user_loader is not None and user.record is None:
                    self._end_session()  # the app no longer knows this user
                    return self._no_account()
                if need and not user.has_roles(*need):
                    return self._missing_roles(user, need)
                return view(*args, **kwargs)

            return cast(F, wrapper)

        return decorate(view) if view is not None else decorate

    def user_loader(self, loader: Callable[[SignedInUser], Any]) -> Callable[[SignedInUser], Any]:
        """Register ``loader(user) -> your user record | None`` (Flask-Login's shape).

        Called after each verified sign-in (create or update the record there: key it on
        ``user.key``, the ``(oid, tid)`` pair) and at most once a request when
        ``current_user.record`` is read or a ``login_required`` view runs. None refuses: at
        sign-in the user gets a 403 page and no session; later, the session ends."""
        self._user_loader = websession.checked_loader(loader)
        return loader

    def get_token(self, scopes: Iterable[str], *, claims: str | None = None) -> str:
        """An access token for the signed-in user; ``InteractionRequired`` sends them through
        the sign-in page (consent, a revoked grant) and back to this page.

        ``claims``: a resource's claims challenge (``entra_auth.challenges``): a new token
        with those claims, silently if Entra can, else through the sign-in page once."""
        wanted = tuple(scopes)
        user = _session_user()
        account = session.get(websession.ACCOUNT)
        if user is None or not isinstance(account, str):
            raise InteractionRequired("Nobody is signed in.", scopes=wanted, claims=claims)
        store = self._token_store()
        try:
            with user_token_cache(store) as cache:
                return self.sign_in.acquire_token(
                    cache, account, wanted, user=user.principal(), claims=claims
                )
        except SignInError as exc:  # a refresh spoke for someone else: end this session
            log.warning("Session ended: %s", exc.code)
            self._end_session()
            raise InteractionRequired(exc.message, scopes=wanted) from None

    def _token_store(self) -> TokenCacheStore:
        """This session's token cache: its own encrypted Redis entry, or inside the session."""
        if self._redis is None or self._cipher is None:
            return MappingTokenCacheStore(session)
        from ...client.redis_cache import RedisTokenCacheStore  # configured: redis is there

        return RedisTokenCacheStore(
            self._redis, self._cache_key(), self._cipher, ttl=self._cache_ttl
        )

    def _cache_key(self) -> str:
        cache_id = session.get(websession.CACHE_ID)
        if not isinstance(cache_id, str):
            # Re-seal only a session that was sealed: never bless an identity someone planted.
            was_sealed = session.get(websession.USER) is not None and self._sealed()
            cache_id = session[websession.CACHE_ID] = secrets.token_urlsafe(24)
            if was_sealed:
                session[websession.SEAL] = self._seal()
        return f"entra:tokens:{cache_id}"

    def graph(self) -> GraphClient:
        """Microsoft Graph as the signed-in user (``User.Read``), waits bounded for a page:
        a throttled Graph is reported ("try again in N seconds"), not slept through."""
        timeout = self.config.http_timeout
        return GraphClient(
            self,  # the user's token; a claims challenge (CAE) met silently or by a sign-in
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
        claims: str | None = None,
    ) -> WerkzeugResponse:
        """To the identity provider, the flow kept in this browser's pending-sign-in cookie."""
        flow = self.sign_in.begin(
            redirect_uri=self.config.callback_url, scopes=scopes, prompt=prompt, claims=claims
        )
        pending = self._pending.open(request.cookies.get(self._pending_cookie))
        pending.add(flow, return_to=return_to, interaction=interaction, now=time.time())
        return self._with_pending(_no_referrer(redirect(flow["auth_uri"])), pending)

    def _with_pending(
        self, response: WerkzeugResponse, pending: PendingSignIns
    ) -> WerkzeugResponse:
        attributes = PendingSignInCookie.attributes(secure=self._secure)
        if not pending:
            response.delete_cookie(self._pending_cookie, **attributes)
        else:
            value, max_age = self._pending.seal(pending), self._pending.max_age
            response.set_cookie(self._pending_cookie, value, max_age=max_age, **attributes)
        return response

    def _callback(self) -> WerkzeugResponse:
        args = request.args
        pending = self._pending.open(request.cookies.get(self._pending_cookie))
        decision = callback.check(
            {k: args.getlist(k) for k in args},
            len(request.query_string),
            signed_in=_session_user() is not None,
            session=session,
            pending=pending,
            login_path=url_for("entra_auth.login"),
        )
        if isinstance(decision, callback.GoTo):
            return _no_referrer(redirect(decision.location))
        if isinstance(decision, callback.Refuse):
            return self._page(decision.page)
        flow = decision
        again = url_for("entra_auth.login", next=safe_return_path(flow.return_to))
        outcome = callback.redeem(
            self.sign_in, flow, args.to_dict(), user_loader=self._user_loader, retry=again, log=log
        )
        if isinstance(outcome, callback.ProviderDown):
            return self._with_pending(
                self._provider_unavailable(outcome.error, retry=again), pending
            )
        if isinstance(outcome, callback.Refuse):
            return self._with_pending(self._page(outcome.page), pending)
        self._start_session(outcome.signed_in, outcome.cache, flow)
        done = _no_referrer(redirect(safe_return_path(flow.return_to)))
        return self._with_pending(done, pending)

    def _start_session(
        self,
        signed_in: SignedIn,
        cache: msal.SerializableTokenCache,
        flow: PendingFlow,
    ) -> None:
        if isinstance(session.get(websession.CACHE_ID), str):  # a previous user's tokens go too
            self._token_store().clear()
        regenerate = getattr(current_app.session_interface, "regenerate", None)
        if regenerate is not None and session:  # a new id at sign-in: no session fixation
            regenerate(session)  # (an id with nothing stored is replaced by Flask-Session)
        session.clear()
        g.pop("entra_user", None)
        websession.start_after(session, signed_in, flow)
        self._token_store().save(cache.serialize())
        session[websession.SEAL] = self._seal()
        claims = signed_in.user.claims
        sid = claims.get("sid")
        session_id = getattr(session, "sid", None)
        if self._sign_ins is not None and isinstance(sid, str) and sid and session_id:
            self._sign_ins.record(
                sid,
                session_id=str(session_id),
                cache_key=self._cache_key() if self._redis is not None else None,
                issuer=str(claims.get("iss", "")),
            )

    def _seal(self) -> str:
        return websession.seal(self._seal_key, _session_id(), session)

    def _sealed(self) -> bool:
        return websession.is_sealed(self._seal_key, _session_id(), session)

    def _ended_at_idp(self, user: dict[str, Any]) -> bool:
        """The IdP signed this sign-in out (front-channel), here or on another instance."""
        sid = user.get("sid")
        if self._sign_ins is None or not isinstance(sid, str) or not sid:
            return False
        return websession.ended_since_sign_in(session, self._sign_ins.ended_at(sid))

    def _end_session(self) -> None:
        self._token_store().clear()
        session.clear()
        g.entra_user = None

    def _logout(self) -> WerkzeugResponse:
        if request.method != "POST":  # a GET (link, image) must not sign anyone out
            if _session_user() is None:  # nobody to sign out: nothing to ask
                return _no_referrer(redirect(safe_return_path("/")))
            return self._page(pages.sign_out_question(form=url_for("entra_auth.logout")))
        self._end_session()
        response = _no_referrer(redirect(self.sign_in.sign_out_url(self.config.after_logout_url)))
        response.set_cookie(**websession.signed_out_cookie(secure=self._secure))
        return response

    def _front_channel(self) -> WerkzeugResponse:
        """The IdP, signing the user out of another app of the same sign-in, loads this in a
        hidden frame with ``sid`` (OpenID Connect Front-Channel Logout 1.0; Entra ID sends it
        to the app's front-channel logout URL). Ends every session of that sign-in, on every
        instance, and their token caches. The frame carries no cookie of ours to rely on."""
        g.entra_frame_ancestors = self._idp_origins()
        sid, issuer = request.args.get("sid"), request.args.get("iss")
        if not sid or len(sid) > 256 or (issuer is not None and len(issuer) > 512):
            return _auth_headers(WerkzeugResponse("sid is required.", 400, mimetype="text/plain"))
        ended = 0
        if self._sign_ins is not None:
            ended = self._sign_ins.end(sid, issuer=issuer, now=time.time())
        else:
            log.warning(
                "Front-channel sign-out cannot end other sessions with SESSION_TYPE=%s: use "
                "Redis or the file store.",
                inert(str(current_app.config.get("SESSION_TYPE")), 40),
            )
        user = _session_user()  # this browser's own session, when the frame did carry it
        if user is not None and user.claims.get("sid") == sid:
            self._end_session()
        log.info("Front-channel sign-out: %d session(s) ended.", ended)
        return _auth_headers(WerkzeugResponse(_FRONT_CHANNEL_DONE, 200, mimetype="text/html"))

    def _idp_origins(self) -> str:
        return framing_origins(str(self.config.authority), self.sign_in.discovery.known)

    def _provider_unavailable(
        self, error: ProviderUnavailableError, *, retry: str | None = None
    ) -> WerkzeugResponse:
        """503 with ``Retry-After`` (502 for nonsense): a page, or JSON for API-style requests.

        Touches neither the session nor the token cache: nothing is lost, and the next
        request after the provider is back works without a restart."""
        status = error.http_status
        wait = error.retry_after if error.retry_after else 5
        log.warning(
            "Identity provider %s: host=%s step=%s cause=%s (%s)",
            "answered nonsense" if status == 502 else "unavailable",
            inert(error.host or str(self.config.authority), 200),
            inert(error.step or request.endpoint or "", 40),
            inert(error.cause or error.code, 200),
            inert(error.message, 400),
        )
        if _wants_json():
            response: WerkzeugResponse = _auth_headers(
                _json(pages.provider_unavailable_json(error), status)
            )
        else:
            if retry is None and request.method == "GET":
                retry = _here()  # the page the user was going to, to reload once it is back
            response = self._page(pages.provider_unavailable(error, retry=retry))
        if status == 503:
            response.headers["Retry-After"] = str(wait)
        return response

    def _interaction_required(self, error: InteractionRequired) -> WerkzeugResponse:
        if websession.just_consented(session, error.scopes, claims=error.claims):
            # The user just signed in for these scopes and there is still no token: sending
            # them back to the IdP would loop. Say so instead.
            return self._page(pages.no_token_after_consent(error))
        try:
            return self._send_to_sign_in(
                list(error.scopes) or list(self.config.scopes),
                return_to=_here(),
                interaction=True,
                claims=error.claims,
            )
        except ProviderUnavailableError as down:  # raised in an error handler: answer it here
            return self._provider_unavailable(down)

    def _missing_roles(self, user: SignedInUser, roles: tuple[str, ...]) -> WerkzeugResponse:
        missing = sorted(set(roles) - user.roles)
        log.info("Page refused: the signed-in user lacks app role(s) %s.", inert(missing, 200))
        if _wants_json():
            return _auth_headers(_json(pages.missing_roles_json(missing), 403))
        retry = url_for("entra_auth.login", prompt="select_account", next=_here())
        return self._page(pages.missing_roles(user, missing, retry=retry))

    def _no_account(self) -> WerkzeugResponse:
        return self._page(pages.no_account())

    def _page(self, page: pages.Page) -> WerkzeugResponse:
        return self._render(page.template, page.status, **page.context)

    def _render(self, template: str, status: int, **context: Any) -> WerkzeugResponse:
        context.setdefault("home", safe_return_path("/"))
        html = render_template(template, **context)
        return _auth_headers(WerkzeugResponse(html, status, mimetype="text/html"))


def _template_context() -> dict[str, Any]:
    return {
        "current_user": _current_user(),
        "entra_signed_out": bool(request.cookies.get(websession.SIGNED_OUT_COOKIE))
        and _session_user() is None,
    }


def _forget_signed_out(response: WerkzeugResponse) -> WerkzeugResponse:
    """The signed-out notice is shown once: the first page after the IdP sent the user back."""
    if websession.signed_out_notice_seen(
        has_cookie=bool(request.cookies.get(websession.SIGNED_OUT_COOKIE)),
        status=response.status_code,
        content_type=response.mimetype or "",
        sign_out_page=request.endpoint == "entra_auth.logout",
    ):
        response.delete_cookie(
            websession.SIGNED_OUT_COOKIE, path="/", httponly=True, samesite="Lax"
        )
    return response


def _json(body: dict[str, Any], status: int) -> WerkzeugResponse:
    response: WerkzeugResponse = jsonify(body)
    response.status_code = status
    return response


def _store_unavailable(error: Exception) -> WerkzeugResponse:
    """503 while the session store is down; the app's own template when it renders without
    the store, else a plain page (the session itself may be what failed)."""
    log.error("Session store unavailable: %s", getattr(error, "message", type(error).__name__))
    page = pages.store_unavailable(retry=_here() if request.method == "GET" else None)
    try:
        html = render_template(page.template, home="/", **page.context)
    except Exception:  # a template or context processor that needed the store: the plain page
        html = pages.STORE_DOWN_HTML
    response = WerkzeugResponse(html, 503, mimetype="text/html")
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
    if session.get(websession.USER) is not None or session.modified:
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
