"""Protect a FastAPI API: an ``ApiProtector`` is a FastAPI security dependency.

    api = ApiProtector()              # ENTRA_* from the environment, read at startup
    app = FastAPI()
    api.init_app(app)                 # the RFC 6750 answers, and the keys loaded at startup

    @app.get("/secure-data")
    async def secure_data(principal: Principal = Security(api, scopes=["access_as_user"])):
        return {"hello": principal.name}

The scopes are FastAPI's ``SecurityScopes``: those of nested ``Security(...)`` dependencies
accumulate. ``api.require(scopes=..., roles=...)`` is the dependency of an endpoint that takes
delegated and app-only tokens; ``optional=True`` lets a request without a token in (``None``).

Only translation lives here: validation is ``entra_auth.tokens``, the answers are
``entra_auth.bearer``'s (the Flask adapter's: the same status, headers and JSON body).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.openapi.models import SecurityBase as SecurityBaseModel
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket

from ...bearer import (
    Challenge,
    bearer_token,
    challenge,
    check_token_syntax,
    log_caller_error,
    log_refusal,
)
from ...config import EntraConfig
from ...errors import (
    EntraAuthError,
    InsufficientClaimsError,
    InsufficientScopeError,
    OnBehalfOfError,
    ProviderUnavailableError,
)
from ...keys import AsyncJwksCache, AsyncKeySource, KeySource
from ...logs import inert
from ...tokens import AccessTokenValidator, Principal, auth_context_names

log = logging.getLogger("entra_auth.fastapi")

# RFC 6455 §7.4: 1008 policy violation (a refused token), 1013 try again later (keys unavailable).
WS_REFUSED, WS_TRY_AGAIN_LATER = 1008, 1013
_DENIAL = "websocket.http.response"  # the ASGI extension for an HTTP answer to a handshake
# The ASGI scope key naming the protector that admitted the request (an API call).
PROTECTED_BY = "entra_auth.protected_by"
# An exception handler as FastAPI(exception_handlers=...) types it.
_Handler = Callable[[Request, Any], Coroutine[Any, Any, Response]]


# -- the refusals: RFC 6750 answers as exceptions FastAPI can raise from a dependency -------------
class BearerRefused(HTTPException):
    """A refused request; ``challenge`` is its RFC 6750 answer (status, headers, JSON body).

    The exception handlers ``init_app`` installs answer it exactly as the Flask adapter does.
    On an app without them, FastAPI's own handler still answers the status and headers, with
    the body under ``detail``.
    """

    def __init__(self, answer: Challenge):
        super().__init__(answer.status, detail=answer.body, headers=answer.headers)
        self.challenge = answer


class WebSocketBearerRefused(WebSocketException):
    """A refused WebSocket handshake. The installed handler answers it as an HTTP request is
    answered when the server can (the ASGI denial-response extension: uvicorn, hypercorn,
    Starlette's TestClient); else, and on an app without the handler, the handshake is closed
    with 1008 (1013 while the keys are unavailable) and the reason, which the server sends as
    HTTP 403."""

    def __init__(self, answer: Challenge):
        code, reason = close_for(answer)
        super().__init__(code, reason)
        self.challenge = answer


def close_for(answer: Challenge) -> tuple[int, str]:
    """The WebSocket close code and reason of a refusal: ``invalid_token: expired``…
    (a reason holds at most 123 bytes)."""
    code = WS_TRY_AGAIN_LATER if answer.status >= 500 else WS_REFUSED
    reason = answer.body.get("error", "unauthorized")
    if answer.body.get("reason"):
        reason += f": {answer.body['reason']}"
    return code, reason.encode("ascii", "replace")[:123].decode("ascii")


def refused(
    connection: HTTPConnection, answer: Challenge
) -> BearerRefused | WebSocketBearerRefused:
    """The exception that refuses this connection: a request's or a WebSocket handshake's."""
    if connection.scope["type"] == "websocket":
        return WebSocketBearerRefused(answer)
    return BearerRefused(answer)


async def answer_refusal(connection: HTTPConnection, exc: Exception) -> Response | None:
    """The exception handler of both refusals (``ApiProtector.exception_handlers``)."""
    if not isinstance(exc, (BearerRefused, WebSocketBearerRefused)):  # pragma: no cover
        raise exc
    return await respond(connection, exc.challenge)


async def respond(connection: HTTPConnection, answer: Challenge) -> Response | None:
    """The answer to send: the JSON response for a request, and for a WebSocket handshake when
    the server can send it; otherwise the handshake is closed here and there is none."""
    response = JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)
    if connection.scope["type"] != "websocket" or _DENIAL in connection.scope.get("extensions", {}):
        return response
    if not isinstance(connection, WebSocket):  # pragma: no cover - Starlette passes its own
        raise TypeError("A WebSocket handshake is refused on its WebSocket connection.")
    code, reason = close_for(answer)
    await connection.close(code, reason)
    return None


def _signature_not_read() -> None:
    """The class-level default of a requirement's ``scheme``: reached only if FastAPI stopped
    reading the per-instance signature, and then every request fails (closed)."""
    raise RuntimeError(
        "FastAPI did not read the ApiProtector's dependency signature: no request is let in."
    )


_NOT_READ = Depends(_signature_not_read)


# -- the protector ------------------------------------------------------------------------------
class ApiProtector(SecurityBase):
    """Validates bearer tokens for a FastAPI (or Starlette) app; a security dependency.

    ``config``: the API's settings; when omitted, ``EntraConfig.from_env()`` is read at startup
    (or by the first request), never on import. ``keys``: where the signing keys come from, the
    tenant's published key set (``AsyncJwksCache``) by default, or ``StaticKeys``.

    As a FastAPI security scheme it appears in the OpenAPI document as ``scheme_name`` (an HTTP
    bearer scheme carrying a JWT unless ``model`` is replaced), with each endpoint's scopes.
    """

    model: SecurityBaseModel
    scheme_name: str

    def __init__(
        self,
        config: EntraConfig | None = None,
        *,
        keys: KeySource | AsyncKeySource | None = None,
        realm: str = "api",
        scheme_name: str = "EntraID",
        description: str | None = None,
    ):
        self._config = config
        self._config_given = config is not None
        self._keys = keys
        self.realm = realm
        self.model = HTTPBearerModel(
            bearerFormat="JWT",
            description=description or "An access token for this API from Microsoft Entra ID.",
        )
        self.scheme_name = scheme_name
        self._validator: AccessTokenValidator | None = None
        self._keys_in_use: KeySource | AsyncKeySource | None = None
        self._owned_keys: AsyncJwksCache | None = None  # made here, so closed here
        self._loaded = False
        self._unanswered_warned = False
        self._scheme = _Scheme(self)

    # -- settings, keys, validator ----------------------------------------------------------
    @property
    def config(self) -> EntraConfig:
        """The API's settings: those given, or the environment's (read on first use after each
        start: an app started again, as tests do, reads them again)."""
        if self._config is None:
            self._config = EntraConfig.from_env()
        return self._config

    @property
    def validator(self) -> AccessTokenValidator:
        """The token validator, made on first use (``ConfigurationError`` if settings are
        missing: a configuration error is the operator's, never answered as a refusal)."""
        return self._validator or self._build()

    @property
    def keys(self) -> KeySource | AsyncKeySource:
        """The key source the validator uses: the one given, or the ``AsyncJwksCache`` made."""
        if self._keys_in_use is None:
            self._build()
        assert self._keys_in_use is not None
        return self._keys_in_use

    def _build(self) -> AccessTokenValidator:
        config = self.config
        keys = self._keys
        if keys is None:
            keys = self._owned_keys = AsyncJwksCache(config)
        self._validator = AccessTokenValidator(config, keys)
        self._keys_in_use = keys
        return self._validator

    async def startup(self) -> None:
        """Read the settings and load the signing keys now.

        A missing or invalid setting raises: the app does not start misconfigured. An identity
        provider that cannot be reached does not: the app starts, a warning says why, and
        requests are answered 503 with ``Retry-After`` until the keys can be fetched.
        """
        keys = self.keys  # made now: a missing setting stops the app here
        if self._loaded:
            return
        prefetch = getattr(keys, "prefetch", None)  # AsyncJwksCache: warns, never raises
        if prefetch is not None and inspect.iscoroutinefunction(prefetch):
            self._loaded = bool(await prefetch())
            return
        load = getattr(keys, "load", None)
        if load is not None and inspect.iscoroutinefunction(load):
            try:
                await load()
            except ProviderUnavailableError as error:
                log.warning(
                    "Signing keys not loaded at startup: %s (%s, %s: %s). Requests are answered "
                    "503 until they can be fetched.",
                    error.code,
                    inert(error.host),
                    error.step,
                    inert(error.cause),
                )
                return
        self._loaded = True

    async def aclose(self) -> None:
        """Close the key set this protector made (keys given are the giver's to close). The next
        start or request reads the environment's settings again and makes a new key set: an
        app can be started again, as tests do."""
        owned, self._owned_keys = self._owned_keys, None
        self._loaded = False
        if not self._config_given:
            self._config = None
            self._validator = self._keys_in_use = None
        if owned is not None:
            self._validator = self._keys_in_use = None
            await owned.aclose()

    @asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """``FastAPI(lifespan=api.lifespan)``: ``startup()`` when the app starts, ``aclose()``
        when it stops. Inside your own lifespan: ``async with api.lifespan(app): yield``."""
        await self.startup()
        try:
            yield
        finally:
            await self.aclose()

    @property
    def exception_handlers(self) -> dict[int | type[Exception], _Handler]:
        """``FastAPI(exception_handlers=api.exception_handlers)``: the RFC 6750 answers."""
        handler = cast(_Handler, answer_refusal)  # a refused handshake's answer may be None
        caller = cast(_Handler, self._answer_caller_error)
        return {
            BearerRefused: handler,
            WebSocketBearerRefused: handler,
            OnBehalfOfError: caller,
            InsufficientClaimsError: caller,
        }

    async def _answer_caller_error(self, connection: HTTPConnection, exc: Exception) -> Any:
        """An endpoint's failure its caller can act on: on-behalf-of refused (a claims
        challenge, consent) or an authentication context the endpoint asked for itself."""
        if not isinstance(exc, EntraAuthError):  # pragma: no cover - registered for ours only
            raise exc
        method = connection.scope.get("method", "WEBSOCKET")
        log_caller_error(log, exc, method=method, path=connection.url.path)
        return await respond(connection, challenge(exc, realm=self.realm))

    def init_app(self, app: FastAPI) -> None:
        """Install the RFC 6750 answers and load the keys at the app's startup (its own
        lifespan, if it has one, still runs: the two are merged)."""
        for kind, handler in self.exception_handlers.items():
            app.add_exception_handler(kind, handler)
        # A service an endpoint depends on unavailable (Entra during an on-behalf-of exchange,
        # a downstream API): 503 with Retry-After, unless the app answers it already (the web
        # sign-in's pages do, for browsers and API clients alike).
        if ProviderUnavailableError not in app.exception_handlers:
            app.add_exception_handler(
                ProviderUnavailableError, cast(_Handler, self._answer_caller_error)
            )
        app.include_router(APIRouter(lifespan=self.lifespan))

    # -- dependencies -----------------------------------------------------------------------
    def require(
        self,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        *,
        optional: bool = False,
        app_only: bool = False,
        auth_context: str | Iterable[str] = (),
    ) -> Requirement:
        """A dependency requiring a token with these scopes and/or app roles.

        Both given: delegated tokens are checked for the scopes, app-only tokens for the roles.
        ``app_only=True``: app permissions only (a daemon's token), a user's token is refused.
        ``auth_context="c1"``: a user's token whose ``acrs`` holds that authentication context
        (Conditional Access), else a 401 claims challenge the caller signs in again with.
        ``optional=True``: a request without a token gets ``None``; a token that is refused is
        still refused (401, or 403 when it lacks what is required).
        """
        scopes_, roles_ = _names(scopes, "scopes"), _names(roles, "roles")
        contexts = auth_context_names(auth_context)
        return Requirement(
            self, scopes_, roles_, optional, app_only=app_only, auth_contexts=contexts
        )

    async def __call__(
        self, connection: HTTPConnection, security_scopes: SecurityScopes
    ) -> Principal:
        """``Security(api, scopes=[...])``: a token carrying every scope of ``SecurityScopes``.

        One dependency, not two: FastAPI's resolution of each dependency costs about as much as
        a cached validation (``bench/bench_fastapi.py``), so the token is read here rather than
        in a sub-dependency (``authenticate`` stays the override point, see ``principal``)."""
        principal = await self.principal(connection)
        allowed = self.authorize(connection, principal, security_scopes.scopes, (), False)
        assert allowed is not None  # not optional: a request without a token was refused
        return allowed

    async def principal(self, connection: HTTPConnection) -> Principal | None:
        """The request's principal (``None`` without a token; a refused token is refused):
        ``authenticate``'s, or what a test put in ``app.dependency_overrides[api.authenticate]``
        (a function of no arguments: ``testing.override_principal``)."""
        overrides = getattr(connection.scope.get("app"), "dependency_overrides", None)
        if overrides:
            override = overrides.get(self.authenticate)
            if override is not None:
                given = override()
                return await given if inspect.isawaitable(given) else given  # type: ignore[no-any-return]
        try:  # ``authenticate``, written out: a coroutine level less on every request
            return await self.principal_of(connection)
        except (BearerRefused, WebSocketBearerRefused):
            self._warn_if_unanswered(connection)
            raise

    async def authenticate(self, connection: HTTPConnection) -> Principal | None:
        """The principal of the request's bearer token (``None`` without one), without
        authorization. A refused token is refused here. Tests replace it
        (``testing.override_principal``) to run without tokens."""
        try:
            return await self.principal_of(connection)
        except (BearerRefused, WebSocketBearerRefused):
            self._warn_if_unanswered(connection)
            raise

    async def principal_of(self, connection: HTTPConnection) -> Principal | None:
        """The principal of ``connection``'s ``Authorization: Bearer`` token (the only place a
        token is read), ``None`` without one; raises ``BearerRefused`` (or, for a WebSocket
        handshake, ``WebSocketBearerRefused``) when the token is refused."""
        # Outside the try: settings missing are no refusal.
        validator = self._validator or self._build()
        # The ASGI scope's header names are lower case: read without making Starlette's Headers.
        headers = connection.scope["headers"]
        values = [value.decode("latin-1") for name, value in headers if name == b"authorization"]
        try:
            token = bearer_token(values, check_syntax=False)
            if token is None:
                return None
            try:
                return await validator.authenticate_async(token)
            except EntraAuthError:
                check_token_syntax(token)  # not even a b64token: the request's fault (400)
                raise
        except EntraAuthError as error:
            raise self._refusal(connection, error) from error

    def authorize(
        self,
        connection: HTTPConnection,
        principal: Principal | None,
        scopes: Sequence[str],
        roles: Sequence[str],
        optional: bool,
        app_only: bool = False,
        auth_contexts: Sequence[str] = (),
    ) -> Principal | None:
        """``principal`` when it carries what is required (the core's rule), else the refusal:
        401 without a principal (unless ``optional``), 403 ``insufficient_scope``, 401
        ``insufficient_claims`` for an authentication context it lacks."""
        if principal is None:
            if optional:
                return None
            self._warn_if_unanswered(connection)
            raise refused(connection, challenge(None, realm=self.realm))
        if not isinstance(principal, Principal):  # fail closed: only a validated token's
            raise TypeError(f"Not a Principal: {type(principal).__name__}.")
        try:
            AccessTokenValidator.authorize(
                principal,
                scopes=scopes,
                roles=roles,
                app_only=app_only,
                # Not self.config: a principal a test put in place needs no settings.
                apps_without_roles=self._config is not None
                and self._config.allow_apps_without_roles,
                auth_contexts=auth_contexts,
            )
        except (InsufficientScopeError, InsufficientClaimsError) as error:
            self._warn_if_unanswered(connection)
            raise self._refusal(connection, error) from error
        # The request is an API call from here on: a failure of its endpoint is answered as
        # one (JSON, RFC 6750), even where the web sign-in answers the same error with a page.
        connection.scope[PROTECTED_BY] = self
        return principal

    # -- plain Starlette ----------------------------------------------------------------------
    def require_token(
        self,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        *,
        optional: bool = False,
        app_only: bool = False,
        auth_context: str | Iterable[str] = (),
    ) -> Callable[[Any], Any]:
        """Decorate a Starlette endpoint (HTTP or WebSocket); see ``starlette.require_token``."""
        from .starlette import require_token

        return require_token(
            self, scopes, roles, optional=optional, app_only=app_only, auth_context=auth_context
        )

    # -- internals ----------------------------------------------------------------------------
    def _refusal(
        self, connection: HTTPConnection, error: EntraAuthError
    ) -> BearerRefused | WebSocketBearerRefused:
        method = connection.scope.get("method", "WEBSOCKET")
        log_refusal(log, error, method=method, path=connection.url.path)
        return refused(connection, challenge(error, realm=self.realm))

    def _warn_if_unanswered(self, connection: HTTPConnection) -> None:
        """Once: the app answers refusals with FastAPI's ``{"detail": ...}``, not RFC 6750's."""
        if self._unanswered_warned:
            return
        app = connection.scope.get("app")
        handlers = getattr(app, "exception_handlers", None)
        if isinstance(app, FastAPI) and handlers is not None and BearerRefused not in handlers:
            self._unanswered_warned = True
            log.warning(
                "ApiProtector's answers are not installed on this app: FastAPI's own handlers "
                'answer its refusals (the JSON body under "detail"). Call api.init_app(app), or '
                "pass FastAPI(exception_handlers=api.exception_handlers)."
            )


class Requirement:
    """``api.require(...)``: a FastAPI dependency for one endpoint's scopes and roles.

    In the OpenAPI document the endpoint needs the protector's scheme with these scopes, and
    the roles too (FastAPI has one list for both; ``openapi.entra_openapi`` moves the roles to
    the operation's description).
    """

    __signature__: inspect.Signature  # see _signature

    def __init__(
        self,
        api: ApiProtector,
        scopes: tuple[str, ...],
        roles: tuple[str, ...],
        optional: bool,
        *,
        app_only: bool = False,
        auth_contexts: tuple[str, ...] = (),
    ):
        self.api, self.scopes, self.roles, self.optional = api, scopes, roles, optional
        self.app_only, self.auth_contexts = app_only, auth_contexts
        self.__signature__ = _signature(api, (*scopes, *roles), optional=optional)

    async def __call__(
        self,
        connection: HTTPConnection,
        security_scopes: SecurityScopes,
        scheme: None = _NOT_READ,
    ) -> Principal | None:
        principal = await self.api.principal(connection)
        scopes = tuple(dict.fromkeys((*security_scopes.scopes, *self.scopes)))
        return self.api.authorize(
            connection,
            principal,
            scopes,
            self.roles,
            self.optional,
            self.app_only,
            self.auth_contexts,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(scopes={list(self.scopes)}, roles={list(self.roles)}, "
            f"optional={self.optional})"
        )


class _Scheme(SecurityBase):
    """The protector's scheme as a dependency of its own, answering nothing: how a
    ``Requirement`` lists its scopes and roles in the OpenAPI document."""

    def __init__(self, api: ApiProtector):
        self.api = api

    # The protector's, read when the document is made (``api.model`` may be replaced).
    @property
    def model(self) -> SecurityBaseModel:
        return self.api.model

    @model.setter
    def model(self, value: SecurityBaseModel) -> None:
        self.api.model = value

    @property
    def scheme_name(self) -> str:
        return self.api.scheme_name

    @scheme_name.setter
    def scheme_name(self, value: str) -> None:
        self.api.scheme_name = value

    async def __call__(self) -> None:
        return None


def _signature(api: ApiProtector, listed: tuple[str, ...], *, optional: bool) -> inspect.Signature:
    """The signature FastAPI reads for a requirement: the connection, the ``SecurityScopes`` of
    the chain, and the protector's scheme with the requirement's scopes and roles, there for
    the OpenAPI document only (FastAPI lists a scheme's scopes from a ``Security(...)``
    dependency; a class's ``__call__`` cannot name the instance's own in a default)."""
    p = inspect.Parameter
    parameters = [
        p("connection", p.POSITIONAL_OR_KEYWORD, annotation=HTTPConnection),
        p("security_scopes", p.POSITIONAL_OR_KEYWORD, annotation=SecurityScopes),
        p(
            "scheme",
            p.POSITIONAL_OR_KEYWORD,
            default=Security(api._scheme, scopes=list(listed)),
            annotation=None,
        ),
    ]
    return inspect.Signature(
        parameters, return_annotation=Principal | None if optional else Principal
    )


def _names(values: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str):  # scopes="a b" would require the scopes "a", " ", "b"...
        raise TypeError(f"{what}= takes a list of names, such as {what}=[{values!r}].")
    return tuple(values)


__all__ = [
    "ApiProtector",
    "BearerRefused",
    "Requirement",
    "WebSocketBearerRefused",
    "answer_refusal",
    "close_for",
    "respond",
]
