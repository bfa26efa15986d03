"""Plain Starlette: the same protector for routes that are not FastAPI's.

    api = ApiProtector()

    @api.require_token(scopes=["access_as_user"])
    async def secure_data(request):
        return JSONResponse({"hello": request.user.principal.name})

    @api.require_token(scopes=["access_as_user"])
    async def feed(websocket):
        await websocket.accept()          # only reached with a token carrying the scope
        ...

    app = Starlette(routes=[Route("/secure-data", secure_data), WebSocketRoute("/feed", feed)],
                    lifespan=api.lifespan)

``BearerAuthenticationMiddleware`` authenticates every request that carries a token (a refused
token is answered there; no token lets the request through as ``UnauthenticatedUser``), so that
``request.user`` is known everywhere; ``require_token`` then only authorizes.

WebSocket endpoints are authenticated by the ``Authorization`` header of the handshake (never a
query parameter). A refused handshake gets the HTTP answer a request gets (401/403/503, with
``WWW-Authenticate`` and the JSON body) when the server can send one (the ASGI denial-response
extension: uvicorn, hypercorn, Starlette's TestClient); otherwise it is closed before it is
accepted with code 1008 (1013 while the keys are unavailable) and the reason, which the server
sends as HTTP 403.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
    UnauthenticatedUser,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from ...bearer import Challenge
from ...tokens import Principal, auth_context_names
from .api import BearerRefused, WebSocketBearerRefused, _names, respond

if TYPE_CHECKING:
    from .api import ApiProtector

F = TypeVar("F", bound=Callable[..., Any])


class PrincipalUser(BaseUser):
    """``request.user`` of a request with a valid token; ``principal`` is what it speaks for,
    and ``protector`` the ``ApiProtector`` that validated the token (its audiences)."""

    def __init__(self, principal: Principal, protector: ApiProtector | None = None):
        self.principal = principal
        self.protector = protector

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.name or self.principal.username or ""

    @property
    def identity(self) -> str:
        """``oid@tid``: the stable identity (never the email or UPN)."""
        return "@".join(self.principal.key)


def require_token(
    api: ApiProtector,
    scopes: Iterable[str] = (),
    roles: Iterable[str] = (),
    *,
    optional: bool = False,
    app_only: bool = False,
    auth_context: str | Iterable[str] = (),
) -> Callable[[F], F]:
    """A Starlette endpoint (a function or an ``HTTPEndpoint`` method taking the request, or a
    WebSocket endpoint) that needs a valid token with these scopes/roles (both: delegated tokens
    are checked for the scopes, app-only tokens for the roles; ``app_only=True``: app
    permissions only). ``request.user`` is then a ``PrincipalUser``; ``optional=True`` lets a
    request without a token in (``UnauthenticatedUser``); ``auth_context="c1"``: a user's token
    must carry that authentication context (``acrs``), else a 401 claims challenge. In FastAPI,
    use ``Security(api, scopes=[...])`` instead."""
    need_scopes, need_roles = _names(scopes, "scopes"), _names(roles, "roles")
    contexts = auth_context_names(auth_context)

    def decorate(endpoint: F) -> F:
        @functools.wraps(endpoint)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            connection = _connection_in(args, kwargs, endpoint)
            try:
                principal = _authenticated(connection, api)
                if principal is None:
                    principal = await api.principal_of(connection)
                principal = api.authorize(
                    connection, principal, need_scopes, need_roles, optional, app_only, contexts
                )
            except (BearerRefused, WebSocketBearerRefused) as refusal:
                return await _refuse(connection, refusal.challenge)
            _set_user(connection.scope, principal, api)
            if inspect.iscoroutinefunction(endpoint):
                return await endpoint(*args, **kwargs)
            result = await run_in_threadpool(endpoint, *args, **kwargs)  # a sync endpoint
            return await result if inspect.isawaitable(result) else result

        return cast(F, wrapper)

    return decorate


class BearerAuthenticationError(AuthenticationError):
    """A refused token, for Starlette's ``AuthenticationMiddleware``; ``challenge`` is its
    RFC 6750 answer."""

    def __init__(self, answer: Challenge):
        super().__init__(answer.body.get("error_description", "refused"))
        self.challenge = answer


class EntraAuthBackend(AuthenticationBackend):
    """Starlette's authentication backend for bearer tokens: ``PrincipalUser`` and the credential
    ``authenticated`` for a valid token, nothing without one, ``BearerAuthenticationError`` for a
    refused one. ``BearerAuthenticationMiddleware`` uses it and answers as RFC 6750 says.

    Authorize with ``api.require_token(scopes=..., roles=...)``: Starlette's ``requires()``
    answers 403 without ``WWW-Authenticate`` and knows nothing of app-only tokens.
    """

    def __init__(self, api: ApiProtector):
        self.api = api

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        try:
            principal = await self.api.principal_of(conn)
        except (BearerRefused, WebSocketBearerRefused) as refusal:
            raise BearerAuthenticationError(refusal.challenge) from refusal
        if principal is None:
            return None
        return AuthCredentials(["authenticated"]), PrincipalUser(principal, self.api)


class BearerAuthenticationMiddleware:
    """Every request and WebSocket handshake that carries a token is authenticated: a valid one
    sets ``request.user`` (``PrincipalUser``), a refused one is answered here (RFC 6750, as
    ``require_token`` answers), none goes on as ``UnauthenticatedUser``.

        Starlette(middleware=[Middleware(BearerAuthenticationMiddleware, api=api)], ...)

    (Starlette's own ``AuthenticationMiddleware`` closes a refused WebSocket with 1000 and has a
    synchronous ``on_error``; this one answers a handshake as ``require_token`` does.)
    """

    def __init__(self, app: ASGIApp, api: ApiProtector):
        self.app = app
        self.backend = EntraAuthBackend(api)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        connection: Request | WebSocket = (
            Request(scope, receive, send)
            if scope["type"] == "http"
            else WebSocket(scope, receive, send)
        )
        try:
            result = await self.backend.authenticate(connection)
        except BearerAuthenticationError as refusal:
            response = await respond(connection, refusal.challenge)
            if response is not None:
                await response(scope, receive, send)
            return
        scope["auth"], scope["user"] = result or (AuthCredentials(), UnauthenticatedUser())
        await self.app(scope, receive, send)


# -- internals ----------------------------------------------------------------------------------
def _connection_in(
    args: tuple[Any, ...], kwargs: dict[str, Any], endpoint: object
) -> HTTPConnection:
    for value in (*args, *kwargs.values()):
        if isinstance(value, HTTPConnection):
            return value
    raise RuntimeError(  # fail closed: never run the endpoint without having checked a token
        f"require_token decorates Starlette endpoints, which take the request or the WebSocket; "
        f"{getattr(endpoint, '__qualname__', endpoint)!s} was called without one. In FastAPI, "
        "use Security(api, scopes=[...]) or Depends(api.require(...))."
    )


def _authenticated(connection: HTTPConnection, api: ApiProtector) -> Principal | None:
    """The principal ``BearerAuthenticationMiddleware`` already validated with this protector
    (another protector's validated the token for other audiences: not reused)."""
    user = connection.scope.get("user")
    if isinstance(user, PrincipalUser) and user.protector is api:
        return user.principal
    return None


def _set_user(scope: Scope, principal: Principal | None, api: ApiProtector) -> None:
    if principal is None:
        scope.setdefault("auth", AuthCredentials())
        scope.setdefault("user", UnauthenticatedUser())
    else:
        scope["auth"] = AuthCredentials(["authenticated"])
        scope["user"] = PrincipalUser(principal, api)


async def _refuse(connection: HTTPConnection, answer: Challenge) -> Response | None:
    """A request's refusal is the endpoint's response; a handshake's is sent (or closed) here."""
    response = await respond(connection, answer)
    if isinstance(connection, WebSocket):
        if response is not None:
            await connection.send_denial_response(response)
        return None
    return response


__all__ = [
    "BearerAuthenticationError",
    "BearerAuthenticationMiddleware",
    "EntraAuthBackend",
    "PrincipalUser",
    "require_token",
]
