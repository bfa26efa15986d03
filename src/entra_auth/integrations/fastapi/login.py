"""Sign users in to a FastAPI or Starlette app (the Flask side's ``EntraAuth``, async).

    auth = EntraAuth()                    # ENTRA_* and SECRET_KEY from the environment
    app = FastAPI()
    auth.init_app(app)                    # sessions, /login, /get_token, /logout, the pages

    @app.get("/profile")
    async def profile(user: SignedInUser = Depends(auth.login_required())):
        me = await auth.graph_get(request, "/v1.0/me")   # Microsoft Graph as the user
        ...

Only translation lives here: the flow is ``entra_auth.client.signin`` (MSAL), sign-ins under way
are ``entra_auth.pending`` (the browser's own sealed cookie: anonymous visitors store nothing),
what a session holds and when it is trusted is ``entra_auth.client.session``, the sessions are
``.sessions`` (starsessions: files for one process, Redis with ``REDIS_URL``).

MSAL is synchronous: every call that may reach the identity provider (the code redemption, a
silent refresh) runs in a worker thread (anyio), so the event loop serves other requests while
the provider is slow. With Redis, each session's token cache is an encrypted entry of its own
whose lock (held from load to save) keeps one refresh in flight per user across instances.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

import anyio.to_thread
import jinja2
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starsessions import SessionAutoloadMiddleware
from starsessions.session import get_session_handler
from starsessions.stores import SessionStore

from ..._redis import redis_client
from ...client import callback, pages
from ...client import session as websession
from ...client.downstream import DownstreamApi
from ...client.session import ANONYMOUS, AnonymousUser, SignedInUser
from ...client.signin import SignInFlow, safe_return_path
from ...client.signins import SignInIndex, framing_origins
from ...client.token_cache import (
    MappingTokenCacheStore,
    TokenCacheCipher,
    TokenCacheStore,
    user_token_cache,
)
from ...config import EntraConfig
from ...derive import derive_key
from ...errors import (
    ConfigurationError,
    GraphError,
    InteractionRequired,
    ProviderUnavailableError,
    SessionStoreUnavailable,
    SignInError,
)
from ...logs import inert, redact_logger
from ...pending import PendingSignInCookie, PendingSignIns
from ...templates import TEMPLATES
from .api import PROTECTED_BY
from .sessions import (
    FileStore,
    JsonFileCache,
    RedisSessionStore,
    SessionMiddleware,
    SignedIdStore,
    session_middleware_options,
)

log = logging.getLogger("entra_auth.fastapi")
_USER_STATE = "entra_auth_user"  # request.state: the signed-in user, worked out once a request


class SignInRequired(Exception):
    """Raised by ``login_required`` for an anonymous visitor: answered with a redirect to the
    sign-in page, which comes back to ``next``."""

    def __init__(self, next_path: str):
        super().__init__("Sign-in required.")
        self.next_path = next_path


class PageResponse(Exception):
    """A page the library answers with from inside a dependency (a 403 for a missing role)."""

    def __init__(self, response: Response):
        super().__init__("A page answers this request.")
        self.response = response


class EntraAuth:
    """Sign users in with Entra ID: the auth code flow with PKCE through MSAL, server-side
    sessions, the user's token cache, silent refresh, sign-out.

    ``config``: the app's settings, ``EntraConfig.from_env()`` when omitted (read at
    ``init_app``). ``secret_key``: the app's secret (from ``SECRET_KEY`` when omitted), from
    which the cookie's, the pending sign-ins' and the session seal's keys are derived.
    ``templates``: a directory whose ``entra_auth/*.html`` replace the library's pages.
    Sessions live in Redis at ``redis_url`` (``REDIS_URL``), else in files under
    ``session_dir`` (``ENTRA_SESSION_DIR``, default ``./.entra_sessions``).
    """

    def __init__(
        self,
        config: EntraConfig | None = None,
        *,
        secret_key: str | None = None,
        login_path: str = "/login",
        logout_path: str = "/logout",
        front_channel_logout_path: str = "/logout/front-channel",
        templates: str | os.PathLike[str] | None = None,
        session_lifetime: int = 8 * 3600,
        redis_url: str | None = None,
        session_dir: str | os.PathLike[str] | None = None,
    ):
        self._redis_url, self._session_dir = redis_url, session_dir
        self._config = config
        self._secret = secret_key
        self.login_path, self.logout_path = login_path, logout_path
        self.front_channel_logout_path = front_channel_logout_path
        self._templates_dir = templates
        self.session_lifetime = session_lifetime
        self._user_loader: Callable[[SignedInUser], Any] | None = None

    # -- setup ----------------------------------------------------------------------------------
    def init_app(self, app: Starlette, settings: Mapping[str, str] | None = None) -> None:
        """Sessions (middleware), the sign-in routes and the answers. Settings are read now
        (a missing one stops the app from starting): ``settings`` (``ENTRA_*``, ``SECRET_KEY``,
        ``REDIS_URL``, ``ENTRA_SESSION_DIR``) over the environment's."""
        environ = {**os.environ, **(settings or {})}
        needed = ("client_id", "credential")
        config = self._config or EntraConfig.from_env(environ, require=needed)
        config.require(*needed)
        self.config = config
        secret = self._secret or environ.get("SECRET_KEY")
        if not secret or len(secret) < 16:
            raise ConfigurationError(
                "The app has no SECRET_KEY (or one shorter than 16 characters).",
                remedy="Set SECRET_KEY to a long random value (python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'), the same for every instance, or pass "
                "EntraAuth(secret_key=...).",
            )
        self.sign_in = SignInFlow(config)
        self._graph: DownstreamApi | None = None  # Graph as the signed-in user, made on first use
        callback = urlsplit(config.callback_url)
        self.callback_path = callback.path or "/"
        self._secure = callback.scheme == "https"
        self._pending_cookie = "__Host-entra_signin" if self._secure else "entra_signin"
        self._pending = PendingSignInCookie(
            secret, max_age=int(environ.get("ENTRA_SIGN_IN_MAX_AGE", 600))
        )
        self._seal_key = derive_key(secret, "entra-auth session seal")
        self._redis_sync: Any = None
        self._cipher: TokenCacheCipher | None = None
        redis_url = self._redis_url or environ.get("REDIS_URL")
        if redis_url:
            inner: SessionStore = RedisSessionStore(redis_url)
            self._redis_sync = redis_client(redis_url)
            self._cipher = TokenCacheCipher(config.token_cache_keys)
        else:
            directory = (
                self._session_dir
                or environ.get("ENTRA_SESSION_DIR")
                or os.path.join(os.getcwd(), ".entra_sessions")
            )
            inner = FileStore(directory, limit=websession.session_file_limit(environ))
        self.store = SignedIdStore(inner, derive_key(secret, "entra-auth session id"))
        # Front-channel sign-out finds sessions by the IdP's sid: beside them, in Redis or files.
        if self._redis_sync is not None:
            redis_sync = self._redis_sync
            self._sign_ins = SignInIndex(
                delete_session=lambda bare: redis_sync.delete(f"entra:session:{bare}"),
                ttl=self.session_lifetime,
                redis=redis_sync,
            )
        else:
            files = cast(FileStore, inner)
            self._sign_ins = SignInIndex(
                delete_session=lambda bare: files._path(bare).unlink(missing_ok=True),
                ttl=self.session_lifetime,
                cache=JsonFileCache(files.directory / "sign-ins", limit=2 * files.limit),
            )
        loader = jinja2.ChoiceLoader(
            [
                *([jinja2.FileSystemLoader(self._templates_dir)] if self._templates_dir else []),
                jinja2.FileSystemLoader(str(TEMPLATES)),
            ]
        )
        # Public: an app adds the globals its own templates use (``auth.jinja.globals``).
        self.jinja = jinja2.Environment(loader=loader, autoescape=True)
        # Outermost first: the session middleware wraps the autoload (add_middleware prepends).
        app.add_middleware(SessionAutoloadMiddleware)
        app.add_middleware(
            SessionMiddleware,
            **session_middleware_options(
                self.store, secure=self._secure, lifetime=self.session_lifetime
            ),
        )
        app.add_route(self.login_path, self._login, ["GET"])
        app.add_route(self.callback_path, self._callback, ["GET"])
        app.add_route(self.logout_path, self._logout, ["GET", "POST"])
        app.add_route(self.front_channel_logout_path, self._front_channel, ["GET"])
        # Outside the session middleware: every page a signed-in user sees is private, and a
        # session store that fails while the session is read or saved (outside the app's
        # exception handlers) is answered 503 here.
        app.add_middleware(PrivateWhenSignedIn)
        app.add_middleware(SignedOutNoticeOnce, sign_out_path=self.logout_path)
        app.add_middleware(StoreUnavailableAnswers, answer=self._store_unavailable)
        app.add_exception_handler(SessionStoreUnavailable, self._answer_store_unavailable)
        app.add_exception_handler(SignInRequired, self._answer_sign_in_required)
        app.add_exception_handler(PageResponse, _answer_page)
        app.add_exception_handler(InteractionRequired, self._answer_interaction_required)
        app.add_exception_handler(ProviderUnavailableError, self._answer_provider_unavailable)
        app.state.entra_auth = self
        redact_logger("uvicorn.access")  # request lines carry ?code=…&state=…

    def user_loader(self, loader: Callable[[SignedInUser], Any]) -> Callable[[SignedInUser], Any]:
        """Register ``loader(user) -> your user record | None``: called after each verified
        sign-in (None refuses it: a 403 page, no session) and when ``user.record`` is read."""
        self._user_loader = websession.checked_loader(loader)
        return loader

    # -- for endpoints --------------------------------------------------------------------------
    async def current_user(self, request: Request) -> SignedInUser | AnonymousUser:
        """``Depends(auth.current_user)``: the signed-in user, or the anonymous user (falsy)."""
        return await self.user(request) or ANONYMOUS

    def login_required(
        self, roles: Iterable[str] = ()
    ) -> Callable[[Request], Awaitable[SignedInUser]]:
        """``Depends(auth.login_required(roles=[...]))``: the signed-in user with every app role
        of ``roles``; anonymous visitors go to sign in (and come back), others get a 403 page."""
        need = tuple(roles)

        async def signed_in_user(request: Request) -> SignedInUser:
            user = await self.user(request)
            if user is None:
                raise SignInRequired(_here(request))
            if self._user_loader is not None and user.record is None:
                await self._end_session(request)
                raise PageResponse(self._no_account())
            if need and not user.has_roles(*need):
                raise PageResponse(self._missing_roles(request, user, need))
            return user

        return signed_in_user

    def signed_out(self, request: HTTPConnection) -> bool:
        """Whether the IdP just sent this browser back from signing out (for a "you are signed
        out" notice; library pages get it as ``entra_signed_out``). Shown once: the first HTML
        page answered 200 forgets it."""
        session = request.scope.get("session")
        signed_in = isinstance(session, dict) and session.get(websession.USER) is not None
        return bool(request.cookies.get(websession.SIGNED_OUT_COOKIE)) and not signed_in

    async def user(self, request: HTTPConnection) -> SignedInUser | None:
        """The signed-in user of this request (worked out once a request), or None."""
        state = request.state
        if hasattr(state, _USER_STATE):
            return cast("SignedInUser | None", getattr(state, _USER_STATE))
        data = websession.user_data(self._seal_key, self._session_id(request), request.session)
        user = SignedInUser(data, self._user_loader) if data is not None else None
        if user is not None and await self._ended_at_idp(request, data or {}):
            await self._end_session(request)
            user = None
        setattr(state, _USER_STATE, user)
        return user

    async def _ended_at_idp(self, request: HTTPConnection, data: dict[str, Any]) -> bool:
        """The IdP signed this sign-in out (front-channel), here or on another instance."""
        sid = data.get("sid")
        if not isinstance(sid, str) or not sid:
            return False
        ended = await anyio.to_thread.run_sync(self._sign_ins.ended_at, sid)
        return websession.ended_since_sign_in(request.session, ended)

    async def get_token(
        self, request: Request, scopes: Iterable[str], *, claims: str | None = None
    ) -> str:
        """An access token for the signed-in user (MSAL in a worker thread, the refresh done
        once however many requests ask at the same time); ``InteractionRequired`` sends them
        through the sign-in page and back to this page. ``claims``: a resource's claims
        challenge, satisfied silently if Entra can, else through the sign-in page once."""
        wanted = tuple(scopes)
        user = await self.user(request)
        account = request.session.get(websession.ACCOUNT)
        if user is None or not isinstance(account, str):
            raise InteractionRequired("Nobody is signed in.", scopes=wanted, claims=claims)
        store = self._token_store(request)
        principal = user.principal()

        def acquire() -> str:
            with user_token_cache(store) as cache:
                return self.sign_in.acquire_token(
                    cache, account, wanted, user=principal, claims=claims
                )

        try:
            return await anyio.to_thread.run_sync(acquire)
        except SignInError as exc:  # a refresh spoke for someone else: end this session
            log.warning("Session ended: %s", exc.code)
            await self._end_session(request)
            raise InteractionRequired(exc.message, scopes=wanted) from None

    def user_tokens(self, request: Request) -> _UserTokens:
        """The signed-in user's tokens for ``DownstreamApi.for_user`` (its ``*_async`` calls)."""
        return _UserTokens(self, request)

    async def graph_get(
        self, request: Request, path: str, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """``GET`` a Microsoft Graph resource (``/v1.0/me``) as the signed-in user
        (``User.Read``), on the event loop (httpx); a claims challenge (CAE) is met as on Flask,
        a throttled Graph is reported, not slept through."""
        if self._graph is None:
            timeout = self.config.http_timeout
            self._graph = DownstreamApi.graph(
                base_url=self.config.graph_url or self.sign_in.discovery.metadata.graph_url,
                config=self.config,
                timeout=timeout,
                max_retries=1,
                max_wait=timeout,
            )
        body = await self._graph.for_user(self.user_tokens(request)).get_async(path, params=params)
        if not isinstance(body, dict):
            raise GraphError("Microsoft Graph answered with an unexpected body.", status=502)
        return body

    # -- sessions --------------------------------------------------------------------------------
    def _session_id(self, request: HTTPConnection) -> str | None:
        """The bare id of this request's session (the seal binds the identity to it)."""
        return self.store.unsigned(get_session_handler(request).session_id)

    def _token_store(self, request: HTTPConnection) -> TokenCacheStore:
        """This session's token cache: its own encrypted Redis entry, or inside the session."""
        if self._redis_sync is None or self._cipher is None:
            return MappingTokenCacheStore(request.session)
        from ...client.redis_cache import RedisTokenCacheStore

        cache_id = request.session.get(websession.CACHE_ID)
        assert isinstance(cache_id, str)  # made at sign-in, sealed with the session
        return RedisTokenCacheStore(
            self._redis_sync,
            f"entra:tokens:{cache_id}",
            self._cipher,
            ttl=self.session_lifetime,
        )

    async def _start_session(self, request: Request, signed_in: Any, cache: Any, flow: Any) -> None:
        session = request.session
        if self._redis_sync is not None and isinstance(session.get(websession.CACHE_ID), str):
            store = self._token_store(request)  # a previous user's tokens go with them
            await anyio.to_thread.run_sync(store.clear)
        old = get_session_handler(request).session_id
        if self.store.unsigned(old) is not None:
            await self.store.remove(cast(str, old))  # a new id at sign-in: no session fixation
        get_session_handler(request).session_id = self.store.new_id()
        session.clear()
        websession.start_after(session, signed_in, flow)
        if self._redis_sync is not None:
            session[websession.CACHE_ID] = os.urandom(18).hex()
            store = self._token_store(request)
            await anyio.to_thread.run_sync(store.save, cache.serialize())
        else:
            MappingTokenCacheStore(session).save(cache.serialize())
        bare = cast(str, self._session_id(request))
        session[websession.SEAL] = websession.seal(self._seal_key, bare, session)
        sid = signed_in.user.claims.get("sid")
        if isinstance(sid, str) and sid:
            cache_id = session.get(websession.CACHE_ID)
            await anyio.to_thread.run_sync(
                lambda: self._sign_ins.record(
                    sid,
                    session_id=bare,
                    cache_key=f"entra:tokens:{cache_id}" if isinstance(cache_id, str) else None,
                    issuer=str(signed_in.user.claims.get("iss", "")),
                )
            )
        request.state.entra_auth_user = None  # worked out again from the new session

    async def _end_session(self, request: HTTPConnection) -> None:
        if self._redis_sync is not None and isinstance(
            request.session.get(websession.CACHE_ID), str
        ):
            store = self._token_store(request)
            await anyio.to_thread.run_sync(store.clear)
        request.session.clear()
        setattr(request.state, _USER_STATE, None)

    # -- routes ---------------------------------------------------------------------------------
    async def _login(self, request: Request) -> Response:
        prompt = request.query_params.get("prompt")
        return await self._send_to_sign_in(
            request,
            list(self.config.scopes),
            return_to=safe_return_path(request.query_params.get("next")),
            interaction=False,
            prompt=prompt if prompt in ("login", "select_account", "consent") else None,
        )

    async def _send_to_sign_in(
        self,
        request: Request,
        scopes: list[str],
        *,
        return_to: str,
        interaction: bool,
        prompt: str | None = None,
        claims: str | None = None,
    ) -> Response:
        """To the identity provider, the flow kept in this browser's pending-sign-in cookie."""
        flow = await anyio.to_thread.run_sync(
            lambda: self.sign_in.begin(
                redirect_uri=self.config.callback_url, scopes=scopes, prompt=prompt, claims=claims
            )
        )
        pending = self._pending.open(request.cookies.get(self._pending_cookie))
        pending.add(flow, return_to=return_to, interaction=interaction, now=time.time())
        return self._with_pending(_auth_headers(RedirectResponse(flow["auth_uri"], 302)), pending)

    def _with_pending(self, response: Response, pending: PendingSignIns) -> Response:
        attributes = PendingSignInCookie.attributes(secure=self._secure)
        if not pending:
            response.delete_cookie(self._pending_cookie, **attributes)
        else:
            value, max_age = self._pending.seal(pending), self._pending.max_age
            response.set_cookie(self._pending_cookie, value, max_age=max_age, **attributes)
        return response

    async def _callback(self, request: Request) -> Response:
        args = request.query_params
        pending = self._pending.open(request.cookies.get(self._pending_cookie))
        decision = callback.check(
            {k: args.getlist(k) for k in args},
            len(request.url.query),
            signed_in=await self.user(request) is not None,
            session=request.session,
            pending=pending,
            login_path=self.login_path,
        )
        if isinstance(decision, callback.GoTo):
            return _auth_headers(RedirectResponse(decision.location, 302))
        if isinstance(decision, callback.Refuse):
            return self._page(decision.page, request)
        flow = decision
        back = urlencode({"next": safe_return_path(flow.return_to)}, safe="/")
        again = f"{self.login_path}?{back}"
        outcome = await anyio.to_thread.run_sync(
            lambda: callback.redeem(
                self.sign_in,
                flow,
                dict(args),
                user_loader=self._user_loader,
                retry=again,
                log=log,
            )
        )
        if isinstance(outcome, callback.ProviderDown):
            answer = self._provider_unavailable(request, outcome.error, retry=again)
            return self._with_pending(answer, pending)
        if isinstance(outcome, callback.Refuse):
            return self._with_pending(self._page(outcome.page, request), pending)
        await self._start_session(request, outcome.signed_in, outcome.cache, flow)
        done = _auth_headers(RedirectResponse(safe_return_path(flow.return_to), 302))
        return self._with_pending(done, pending)

    async def _logout(self, request: Request) -> Response:
        if request.method != "POST":  # a GET (link, image) must not sign anyone out
            if await self.user(request) is None:
                return _auth_headers(RedirectResponse("/", 302))
            return self._page(pages.sign_out_question(form=self.logout_path), request)
        await self._end_session(request)
        url = await anyio.to_thread.run_sync(
            self.sign_in.sign_out_url, self.config.after_logout_url
        )
        response = _auth_headers(RedirectResponse(url, 302))
        response.set_cookie(**websession.signed_out_cookie(secure=self._secure))
        return response

    async def _front_channel(self, request: Request) -> Response:
        """The IdP, signing the user out of another app of the same sign-in, loads this in a
        hidden frame with ``sid`` (OpenID Connect Front-Channel Logout 1.0; Entra ID sends it
        to the app's front-channel logout URL). Ends every session of that sign-in, on every
        instance, and their token caches. The frame carries no cookie of ours to rely on."""
        sid, issuer = request.query_params.get("sid"), request.query_params.get("iss")
        if not sid or len(sid) > 256 or (issuer is not None and len(issuer) > 512):
            response: Response = Response("sid is required.", 400, media_type="text/plain")
            return self._framable(response)
        ended = await anyio.to_thread.run_sync(
            lambda: self._sign_ins.end(sid, issuer=issuer, now=time.time())
        )
        user = await self.user(request)  # this browser's own session, when the frame carried it
        if user is not None and user.claims.get("sid") == sid:
            await self._end_session(request)
        log.info("Front-channel sign-out: %d session(s) ended.", ended)
        page = "<!doctype html><title>Signed out</title>Signed out."
        return self._framable(HTMLResponse(page, 200))

    def _framable(self, response: Response) -> Response:
        """The front-channel route's headers: framed by the IdP's sign-out page only."""
        framers = framing_origins(str(self.config.authority), self.sign_in.discovery.known)
        response.headers.update(pages.headers(framers))
        return response

    # -- answers --------------------------------------------------------------------------------
    async def _answer_sign_in_required(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        target = f"{self.login_path}?{urlencode({'next': exc.next_path}, safe='/')}"
        return _auth_headers(RedirectResponse(target, 302))

    async def _answer_interaction_required(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InteractionRequired)
        if websession.just_consented(request.session, exc.scopes, claims=exc.claims):
            return self._page(pages.no_token_after_consent(exc), request)
        try:
            return await self._send_to_sign_in(
                request,
                list(exc.scopes) or list(self.config.scopes),
                return_to=_here(request),
                interaction=True,
                claims=exc.claims,
            )
        except ProviderUnavailableError as down:
            return self._provider_unavailable(request, down)

    async def _answer_store_unavailable(self, request: Request, exc: Exception) -> Response:
        return self._store_unavailable(request)

    def _store_unavailable(self, request: HTTPConnection) -> Response:
        """503 while the session store is down: the app's own page when it renders without
        the store, else a plain one; nothing is lost, the next request after it is back works."""
        log.error("Session store unavailable.")
        retry = _here(request) if request.scope.get("method") == "GET" else None
        try:
            response = self._page(pages.store_unavailable(retry=retry))
        except Exception:  # a replaced template that needed more than it was given
            response = _auth_headers(HTMLResponse(pages.STORE_DOWN_HTML, 503))
        response.headers["Retry-After"] = "5"
        return response

    async def _answer_provider_unavailable(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProviderUnavailableError)
        protector = request.scope.get(PROTECTED_BY)
        if protector is not None:  # an API endpoint's call: its protector's JSON answer
            return cast(Response, await protector._answer_caller_error(request, exc))
        return self._provider_unavailable(request, exc)

    def _provider_unavailable(
        self, request: Request, error: ProviderUnavailableError, *, retry: str | None = None
    ) -> Response:
        """503 with ``Retry-After`` (502 for nonsense); nothing lost, no restart needed."""
        status = error.http_status
        wait = error.retry_after if error.retry_after else 5
        log.warning(
            "Identity provider %s: host=%s step=%s cause=%s",
            "answered nonsense" if status == 502 else "unavailable",
            inert(error.host or str(self.config.authority), 200),
            inert(error.step or "", 40),
            inert(error.cause or error.code, 200),
        )
        if _wants_json(request):
            body = pages.provider_unavailable_json(error)
            response: Response = _auth_headers(JSONResponse(body, status))
        else:
            retry = retry or (_here(request) if request.method == "GET" else None)
            response = self._page(pages.provider_unavailable(error, retry=retry), request)
        if status == 503:
            response.headers["Retry-After"] = str(wait)
        return response

    def _missing_roles(
        self, request: Request, user: SignedInUser, roles: tuple[str, ...]
    ) -> Response:
        missing = sorted(set(roles) - user.roles)
        log.info("Page refused: the signed-in user lacks app role(s) %s.", inert(missing, 200))
        if _wants_json(request):
            return _auth_headers(JSONResponse(pages.missing_roles_json(missing), 403))
        query = urlencode({"prompt": "select_account", "next": _here(request)}, safe="/")
        page = pages.missing_roles(user, missing, retry=f"{self.login_path}?{query}")
        return self._page(page, request)

    def _no_account(self) -> Response:
        return self._page(pages.no_account())

    def _page(self, page: pages.Page, request: Request | None = None) -> Response:
        return self._render(page.template, page.status, request, **page.context)

    def _render(
        self, template: str, status: int, request: Request | None = None, **context: Any
    ) -> Response:
        """A library page; with the request, its templates (and an app's replacements) also
        get ``request`` and ``current_user``."""
        context.setdefault("home", "/")
        if request is not None:
            context.setdefault("request", request)
            user = getattr(request.state, _USER_STATE, None)
            context.setdefault("current_user", user or ANONYMOUS)
            context.setdefault("entra_signed_out", self.signed_out(request))
        html = self.jinja.get_template(template).render(**context)
        return _auth_headers(HTMLResponse(html, status))


class PrivateWhenSignedIn:
    """ASGI middleware outside the session middleware: a response to a request whose session
    holds a signed-in user is ``Cache-Control: no-store`` and ``Vary: Cookie`` (no shared or
    back-button caching of a user's pages, the app's own included), as on Flask."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def private(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])  # ASGI lets a start message omit them
                session = scope.get("session")
                if isinstance(session, dict) and session.get(websession.USER) is not None:
                    headers = MutableHeaders(scope=message)
                    headers["Cache-Control"] = "no-store"
                    headers.add_vary_header("Cookie")
            await send(message)

        await self.app(scope, receive, private)


_SIGNED_OUT_NAME = websession.SIGNED_OUT_COOKIE.encode("ascii")


class SignedOutNoticeOnce:
    """ASGI middleware: the signed-out notice's cookie goes with the first page that shows it
    (``auth.signed_out``), as on Flask."""

    def __init__(self, app: ASGIApp, sign_out_path: str):
        self.app, self.sign_out_path = app, sign_out_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Every request passes here: a bytes scan of the Cookie header first, the parse only
        # when the name is in it (the first page after a sign-out).
        if (
            scope["type"] != "http"
            or not any(
                name == b"cookie" and _SIGNED_OUT_NAME in value for name, value in scope["headers"]
            )
            or websession.SIGNED_OUT_COOKIE not in HTTPConnection(scope).cookies
        ):
            await self.app(scope, receive, send)
            return

        async def forget(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])  # ASGI lets a start message omit them
                headers = MutableHeaders(scope=message)
                if websession.signed_out_notice_seen(
                    has_cookie=True,
                    status=message["status"],
                    content_type=headers.get("content-type", ""),
                    sign_out_page=scope["path"] == self.sign_out_path,
                ):
                    gone = Response()
                    gone.delete_cookie(
                        websession.SIGNED_OUT_COOKIE, path="/", httponly=True, samesite="lax"
                    )
                    headers.append("set-cookie", gone.headers["set-cookie"])
            await send(message)

        await self.app(scope, receive, forget)


class StoreUnavailableAnswers:
    """ASGI middleware outside the session middleware: a ``SessionStoreUnavailable`` raised
    before the response started (the session read, or saved as the answer starts) becomes the
    503 page instead of a 500."""

    def __init__(self, app: ASGIApp, answer: Callable[[HTTPConnection], Response]):
        self.app, self.answer = app, answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except SessionStoreUnavailable:
            if started:
                raise
            await self.answer(HTTPConnection(scope))(scope, receive, send)


async def _answer_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageResponse)
    return exc.response


def _auth_headers(response: Response) -> Response:
    response.headers.update(pages.headers())
    return response


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _here(request: HTTPConnection) -> str:
    query = request.url.query
    return safe_return_path(request.url.path + (f"?{query}" if query else ""))


__all__ = ["EntraAuth", "PageResponse", "SignInRequired"]


class _UserTokens:
    """``AsyncUserTokens`` for one request: ``EntraAuth.get_token`` bound to it."""

    def __init__(self, auth: EntraAuth, request: Request):
        self.auth, self.request = auth, request

    async def get_token_async(self, scopes: Sequence[str], *, claims: str | None = None) -> str:
        return await self.auth.get_token(self.request, scopes, claims=claims)
