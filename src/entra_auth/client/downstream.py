"""Downstream APIs: a named API (base URL, scopes) called as the user or as the app.

    graph = DownstreamApi.graph()                                  # Microsoft Graph, User.Read
    orders = DownstreamApi("https://orders.contoso.example", scopes=["api://orders/Read"],
                           config=EntraConfig.from_env())

    graph.for_user(auth).get("/me")             # a web app: the signed-in user's token
    graph.for_user(g.principal).get("/me")      # an API: on behalf of its caller (OBO)
    await orders.for_user(principal).get_async("/orders")
    orders.for_app().get("/orders")             # the app itself (client credentials)

What every call gets (Microsoft.Identity.Web's ``IDownstreamApi``, in Python):

- **the token for the call's identity**: ``for_user(principal)`` exchanges the validated caller's
  token (``OnBehalfOfProvider``: cached per caller's token); ``for_user(tokens)`` asks a web
  adapter for the signed-in user's (``EntraAuth``; FastAPI: ``auth.user_tokens(request)``);
  ``for_app()`` uses ``AppTokenProvider`` for ``<resource>/.default``;
- **claims challenges handled** (CAE, authentication contexts): a 401 with
  ``error="insufficient_claims"`` and ``claims`` is answered by one new token with those claims
  and one retry. When no token can be had silently the challenge goes where it can be met: a
  web app's ``InteractionRequired`` (one trip through the sign-in page, back to the page), an
  API's ``OnBehalfOfError`` (a 401 with the claims for its caller);
- **bounded waits**: a timeout on every request; ``Retry-After`` on 429/503 honoured within a
  retry budget, then ``DownstreamApiUnavailableError`` (503, "try again in N seconds");
- **errors in the family**: ``DownstreamApiError`` with the status and the API's error code
  (Graph's ``{"error": {"code"}}``, OAuth's ``{"error"}``), never its message text; Graph's are
  ``GraphError``/``GraphAuthError``/``GraphForbiddenError``;
- **the token stays with its API**: only URLs under the base URL's origin get it (a paging
  link to another host is refused), redirects are not followed, nothing logs a token.

Policy without I/O (``_plan``: what an answer means) is shared by the sync transport
(``requests``, a core dependency) and the async one (``httpx``, the ``fastapi`` extra).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

import requests

from .._http import cause_of, retry_after_seconds
from ..challenges import claims_challenge
from ..config import EntraConfig
from ..errors import (
    ConfigurationError,
    DownstreamApiError,
    DownstreamApiUnavailableError,
    GraphAuthError,
    GraphError,
    GraphForbiddenError,
    GraphUnavailableError,
    InteractionRequired,
    OnBehalfOfError,
)
from ..tokens import Principal
from .per_loop import PerLoop

if TYPE_CHECKING:
    import httpx

    from .app_tokens import AppTokenProvider
    from .on_behalf_of import OnBehalfOfProvider

GRAPH_V1 = "https://graph.microsoft.com/v1.0"
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
GRAPH = "Microsoft Graph"


@runtime_checkable
class UserTokens(Protocol):
    """A web app's source of the signed-in user's tokens (``EntraAuth`` is one)."""

    def get_token(self, scopes: Sequence[str], *, claims: str | None = None) -> str: ...


@runtime_checkable
class AsyncUserTokens(Protocol):
    """The async kind (``auth.user_tokens(request)`` of the FastAPI adapter)."""

    async def get_token_async(self, scopes: Sequence[str], *, claims: str | None = None) -> str: ...


class _Identity(Protocol):
    """Who a call is made as: how its token is had, and what a challenge it cannot meet
    silently becomes."""

    def token(self, claims: str | None) -> str: ...

    async def token_async(self, claims: str | None) -> str: ...

    def unmet(self, claims: str) -> Exception: ...


@dataclass(frozen=True)
class _Caller:
    """On behalf of an API's caller: OBO for the validated ``principal``."""

    provider: OnBehalfOfProvider
    principal: Principal
    scopes: tuple[str, ...]

    def token(self, claims: str | None) -> str:
        return self.provider.get_token(self.principal, self.scopes, claims=claims)

    async def token_async(self, claims: str | None) -> str:
        return await self.provider.get_token_async(self.principal, self.scopes, claims=claims)

    def unmet(self, claims: str) -> Exception:
        return OnBehalfOfError(
            "The downstream API still asks for claims the token cannot carry without the "
            "user signing in again.",
            status=401,
            scopes=self.scopes,
            claims=claims,
            code="insufficient_claims",
        )


@dataclass(frozen=True)
class _SignedInUser:
    """A web app's signed-in user: their own token, from the web adapter."""

    source: UserTokens | AsyncUserTokens
    scopes: tuple[str, ...]

    def token(self, claims: str | None) -> str:
        if not isinstance(self.source, UserTokens):
            raise ConfigurationError(
                "This user's tokens are had asynchronously: use the *_async methods."
            )
        return self.source.get_token(self.scopes, claims=claims)

    async def token_async(self, claims: str | None) -> str:
        if isinstance(self.source, AsyncUserTokens):
            return await self.source.get_token_async(self.scopes, claims=claims)
        return await asyncio.to_thread(self.token, claims)

    def unmet(self, claims: str) -> Exception:
        return InteractionRequired(
            "The API asks for a stronger or newer sign-in.", scopes=self.scopes, claims=claims
        )


def signed_in_user(source: UserTokens | AsyncUserTokens, scopes: Sequence[str]) -> _Identity:
    """The identity of a web app's signed-in user, for ``DownstreamCall`` (``GraphClient``)."""
    if (
        isinstance(source, UserTokens)
        and not isinstance(source, AsyncUserTokens)
        and inspect.iscoroutinefunction(source.get_token)
    ):
        raise ConfigurationError(
            f"A {type(source).__name__} was given as the user's tokens: its get_token is a "
            "coroutine that needs the request.",
            remedy="Pass auth.user_tokens(request) (the FastAPI adapter), not auth.",
        )
    return _SignedInUser(source, tuple(scopes))


@dataclass(frozen=True)
class _App:
    """The app itself: client credentials (or a managed identity) for ``<resource>/.default``."""

    provider: AppTokenProvider
    scope: str
    api: str

    def token(self, claims: str | None) -> str:
        return self.provider.get_token(self.scope)

    async def token_async(self, claims: str | None) -> str:
        return await self.provider.get_token_async(self.scope)

    def unmet(self, claims: str) -> Exception:
        return DownstreamApiError(
            f"{self.api} asks the app for claims an app's token cannot carry.",
            status=401,
            api=self.api,
            error_code="insufficient_claims",
            remedy="Check the API's Conditional Access policies for workload identities.",
        )


class DownstreamApi:
    """One downstream API: where it is, the delegated ``scopes`` a user's token needs, and how
    calls wait. ``config`` is this app's (for on-behalf-of and app tokens; from the
    environment when needed and omitted); ``app_scope`` the ``/.default`` scope of ``for_app``
    (by default the resource of ``scopes``)."""

    def __init__(
        self,
        base_url: str,
        *,
        scopes: Sequence[str],
        name: str | None = None,
        config: EntraConfig | None = None,
        app_scope: str | None = None,
        on_behalf_of: OnBehalfOfProvider | None = None,
        app_tokens: AppTokenProvider | None = None,
        timeout: float = 10.0,
        max_retries: int = 2,
        max_wait: float = 10.0,
        session: requests.Session | None = None,
        async_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        errors: Literal["api", "graph"] = "api",
    ):
        parts = urlsplit(base_url)
        loopback = parts.hostname in _LOOPBACK
        if not parts.netloc or not (
            parts.scheme == "https" or (parts.scheme == "http" and loopback)
        ):
            raise ConfigurationError(
                f"A downstream API's base URL must be https (plain http on loopback only: the "
                f"token would travel in the clear), not {base_url[:80]!r}.",
                remedy="Give https://host[/path], e.g. https://graph.microsoft.com/v1.0.",
            )
        self.base_url = base_url.rstrip("/")
        self.scopes = tuple(scopes)
        self.name = name or parts.netloc
        self.timeout, self.max_retries, self.max_wait = timeout, max_retries, max_wait
        self._config = config
        self._app_scope = app_scope
        self._obo, self._app_tokens = on_behalf_of, app_tokens
        self._session = session
        self._async_client = async_client
        self._loop_clients: PerLoop[httpx.AsyncClient] = PerLoop(self._new_async_client)
        self._sleep, self._async_sleep = sleep, async_sleep
        self._graph_errors = errors == "graph"

    @classmethod
    def graph(
        cls,
        *,
        base_url: str = GRAPH_V1,
        scopes: Sequence[str] = ("User.Read",),
        **options: Any,
    ) -> DownstreamApi:
        """Microsoft Graph (``base_url``: the national cloud's, or the local Entra ID's
        ``…/graph/v1.0``), its errors as ``GraphError`` and subclasses."""
        return cls(base_url, scopes=scopes, name=GRAPH, errors="graph", **options)

    # -- identities -----------------------------------------------------------------------------
    def for_user(self, user: Principal | UserTokens | AsyncUserTokens) -> DownstreamCall:
        """Calls as a user: ``Principal`` (an API's validated caller: on-behalf-of), or a web
        adapter's signed-in user (``EntraAuth``; FastAPI's ``auth.user_tokens(request)``)."""
        if isinstance(user, Principal):
            return DownstreamCall(self, _Caller(self._on_behalf_of(), user, self._user_scopes()))
        if isinstance(user, (UserTokens, AsyncUserTokens)):
            return DownstreamCall(self, signed_in_user(user, self._user_scopes()))
        raise ConfigurationError(
            f"for_user was given a {type(user).__name__}.",
            remedy="Pass the Principal the API validated, or the web adapter (EntraAuth, "
            "auth.user_tokens(request)).",
        )

    def for_app(self) -> DownstreamCall:
        """Calls as the app itself (client credentials, a managed identity)."""
        scope = self._app_scope or f"{_resource(self.scopes[0]) if self.scopes else ''}/.default"
        return DownstreamCall(self, _App(self._app_provider(), scope, self.name))

    def _user_scopes(self) -> tuple[str, ...]:
        if not self.scopes:
            raise ConfigurationError(
                f"The downstream API {self.name} names no delegated scope for users' calls.",
                remedy="Give DownstreamApi(..., scopes=[...]) the scopes its users' tokens need.",
            )
        return self.scopes

    def _on_behalf_of(self) -> OnBehalfOfProvider:
        if self._obo is None:
            from .on_behalf_of import OnBehalfOfProvider

            self._obo = OnBehalfOfProvider(self._config)
        return self._obo

    def _app_provider(self) -> AppTokenProvider:
        if self._app_tokens is None:
            from .app_tokens import AppTokenProvider

            self._app_tokens = AppTokenProvider(self._config)
        return self._app_tokens

    # -- transports -----------------------------------------------------------------------------
    def _http(self) -> requests.Session:
        if self._session is None:
            self._session = requests.Session()
            ca = self._config.ca_bundle if self._config is not None else None
            if ca:
                self._session.verify, self._session.trust_env = ca, False
        return self._session

    def _async_http(self) -> httpx.AsyncClient:
        if self._async_client is not None:
            return self._async_client
        # One client per event loop: an httpx client's connections belong to the loop that
        # opened them (a test's asyncio.run, a worker's loop).
        return self._loop_clients.get()

    def _new_async_client(self) -> httpx.AsyncClient:
        import httpx

        from .._async_http import _trust

        trust = _trust(self._config) if self._config is not None else True
        return httpx.AsyncClient(verify=trust, trust_env=trust is True)

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (relative to the base URL, or absolute under it):
        ``ConfigurationError`` for anything elsewhere, which would receive the token."""
        if path.startswith(("https://", "http://")):
            url = path
        else:
            url = f"{self.base_url}/{path.lstrip('/')}"
        base, target = urlsplit(self.base_url), urlsplit(url)
        same_origin = (target.scheme, target.netloc.lower()) == (base.scheme, base.netloc.lower())
        if not same_origin or "\\" in url or any(ord(c) < 0x21 for c in url):
            message = f"Refusing to send the token to a host other than {self.name}'s."
            remedy = "Call paths of the API, or follow links it returned for its own host."
            if self._graph_errors:
                raise GraphError(message, status=0, remedy=remedy)
            raise DownstreamApiError(message, status=0, api=self.name, remedy=remedy)
        return url


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    challenges: list[str]
    body: bytes


@dataclass(frozen=True)
class _Plan:
    """What to do with an answer: return its body, wait and retry, meet a claims challenge,
    or raise."""

    kind: Literal["done", "wait", "claims", "fail"]
    wait: float = 0.0
    claims: str | None = None
    error: Exception | None = None
    value: Any = None


@dataclass
class _Attempts:
    """Where one call stands: the claims its next token must carry, the retries made and the
    seconds waited so far, and whether a claims challenge was met already (once only)."""

    claims: str | None = None
    retries: int = 0
    waited: float = 0.0
    challenged: bool = False


class DownstreamCall:
    """A downstream API bound to one identity: ``get``/``post``/``put``/``patch``/``delete``
    and ``request`` (sync), the same with ``_async`` (httpx). Each returns the JSON body (None
    for an empty one)."""

    def __init__(self, api: DownstreamApi, identity: _Identity):
        self.api, self._identity = api, identity

    def get(self, path: str, *, params: Mapping[str, str] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, *, json: Any = None) -> Any:
        return self.request("POST", path, json=json)

    def put(self, path: str, *, json: Any = None) -> Any:
        return self.request("PUT", path, json=json)

    def patch(self, path: str, *, json: Any = None) -> Any:
        return self.request("PATCH", path, json=json)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    async def get_async(self, path: str, *, params: Mapping[str, str] | None = None) -> Any:
        return await self.request_async("GET", path, params=params)

    async def post_async(self, path: str, *, json: Any = None) -> Any:
        return await self.request_async("POST", path, json=json)

    async def put_async(self, path: str, *, json: Any = None) -> Any:
        return await self.request_async("PUT", path, json=json)

    async def patch_async(self, path: str, *, json: Any = None) -> Any:
        return await self.request_async("PATCH", path, json=json)

    async def delete_async(self, path: str) -> Any:
        return await self.request_async("DELETE", path)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Any:
        url, attempts = self.api.url(path), _Attempts()
        while True:
            token = self._identity.token(attempts.claims)
            try:
                response = self.api._http().request(
                    method,
                    url,
                    params=params,
                    json=json,
                    headers=_headers(token),
                    timeout=self.api.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                raise self._unreachable(url, cause_of(exc, self.api.timeout)) from None
            answer = _Answer(
                response.status_code,
                response.headers,
                _header_values(response.raw, "WWW-Authenticate")
                or [response.headers.get("WWW-Authenticate", "")],
                response.content,
            )
            done, value = self._step(attempts, answer, url)
            if done:
                return value
            if value:
                self.api._sleep(value)

    async def request_async(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Any:
        import httpx

        url, attempts = self.api.url(path), _Attempts()
        while True:
            token = await self._identity.token_async(attempts.claims)
            try:
                response = await self.api._async_http().request(
                    method,
                    url,
                    params=dict(params) if params else None,
                    json=json,
                    headers=_headers(token),
                    timeout=self.api.timeout,
                    follow_redirects=False,
                )
            except httpx.HTTPError as exc:
                raise self._unreachable(url, type(exc).__name__) from None
            answer = _Answer(
                response.status_code,
                response.headers,
                response.headers.get_list("WWW-Authenticate"),
                response.content,
            )
            done, value = self._step(attempts, answer, url)
            if done:
                return value
            if value:
                await self.api._async_sleep(value)

    # -- policy, shared by both -----------------------------------------------------------------
    def _step(self, attempts: _Attempts, answer: _Answer, url: str) -> tuple[bool, Any]:
        """After an answer: ``(True, body)`` when the call is done; ``(False, seconds)`` to try
        again after that wait (0: at once, with a new token for the challenge's claims);
        raises what the call ends with."""
        plan = self._plan(
            answer,
            url,
            retries=attempts.retries,
            waited=attempts.waited,
            challenged=attempts.challenged,
        )
        if plan.kind == "done":
            return True, plan.value
        if plan.kind == "fail":
            raise plan.error or AssertionError("a failed plan carries its error")
        if plan.kind == "wait":
            attempts.waited += plan.wait
            attempts.retries += 1
            return False, plan.wait
        attempts.claims, attempts.challenged = plan.claims, True
        return False, 0.0

    def _plan(
        self, answer: _Answer, url: str, *, retries: int, waited: float, challenged: bool
    ) -> _Plan:
        api, status = self.api, answer.status
        if status == 401:
            claims = claims_challenge(answer.challenges)
            if claims is not None:
                if challenged:  # a token with the claims was refused too: the user must act
                    return _Plan("fail", error=self._identity.unmet(claims))
                return _Plan("claims", claims=claims)
        if status in (429, 503) and retries < api.max_retries:
            wait = _retry_after(answer.headers.get("Retry-After"), retries)
            if waited + wait <= api.max_wait:
                return _Plan("wait", wait=wait)
        if status == 429 or status >= 500:
            return _Plan("fail", error=self._busy(answer, url))
        if 300 <= status < 400:
            return _Plan(
                "fail",
                error=self._error(
                    f"{api.name} answered with a redirect (HTTP {status}), not followed.", answer
                ),
            )
        if status >= 400:
            return _Plan("fail", error=self._refusal(answer))
        if not answer.body.strip():
            return _Plan("done", value=None)
        try:
            return _Plan("done", value=json.loads(answer.body))
        except (ValueError, RecursionError):
            return _Plan(
                "fail",
                error=self._error(f"{api.name} answered with something that is not JSON.", answer),
            )

    def _refusal(self, answer: _Answer) -> DownstreamApiError:
        api, status, code = self.api, answer.status, _error_code(answer.body)
        said = f": {code}" if code else ""
        if api._graph_errors:
            if status == 401:
                return GraphAuthError(
                    f"Microsoft Graph refused the token{said}.", status=401, graph_code=code
                )
            if status == 403:
                return GraphForbiddenError(
                    f"Microsoft Graph denied the call{said}.", status=403, graph_code=code
                )
            return GraphError(
                f"Microsoft Graph answered HTTP {status}{said}.", status=status, graph_code=code
            )
        remedy = {
            401: f"Check the scopes asked for {api.name} (its App ID URI) and its audience.",
            403: f"Grant the permission {api.name} requires (scope or app role) and consent.",
        }.get(status)
        return DownstreamApiError(
            f"{api.name} answered HTTP {status}{said}.",
            status=status,
            api=api.name,
            error_code=code,
            remedy=remedy,
            body=_json_or_none(answer.body),
        )

    def _error(self, message: str, answer: _Answer) -> DownstreamApiError:
        if self.api._graph_errors:
            return GraphError(message, status=502)
        return DownstreamApiError(message, status=502, api=self.api.name)

    def _busy(self, answer: _Answer, url: str) -> DownstreamApiUnavailableError:
        wait = retry_after_seconds(answer.headers.get("Retry-After"))
        again = f"Try again in {wait} seconds" if wait else "Try again in a moment"
        said = f", Retry-After {wait} s" if wait is not None else ""
        return self._down(
            f"{self.api.name} is not available right now (busy). Nothing was lost. {again}.",
            url,
            status=answer.status,
            retry_after=wait,
            cause=f"HTTP {answer.status}{said}",
        )

    def _unreachable(self, url: str, cause: str) -> DownstreamApiUnavailableError:
        return self._down(
            f"{self.api.name} is not available right now (it could not be reached). Nothing "
            "was lost. Try again in a moment.",
            url,
            cause=cause,
        )

    def _down(
        self,
        message: str,
        url: str,
        *,
        status: int = 0,
        retry_after: int | None = None,
        cause: str,
    ) -> DownstreamApiUnavailableError:
        host = urlsplit(url).netloc
        if self.api._graph_errors:
            return _GraphDown(
                message, status=status, retry_after=retry_after, host=host, cause=cause
            )
        return DownstreamApiUnavailableError(
            message,
            status=status,
            api=self.api.name,
            retry_after=retry_after,
            host=host,
            cause=cause,
        )


class _GraphDown(GraphUnavailableError, DownstreamApiUnavailableError):
    """Graph unavailable: both a ``GraphUnavailableError`` and a downstream API's."""


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def _header_values(raw: Any, name: str) -> list[str]:
    """Every value of a repeated header (urllib3 keeps them; ``requests`` joins them)."""
    headers = getattr(raw, "headers", None)
    getlist = getattr(headers, "getlist", None)
    if callable(getlist):
        values = getlist(name)
        if isinstance(values, list) and all(isinstance(v, str) for v in values):
            return values
    return []


def _retry_after(value: str | None, attempt: int) -> float:
    seconds = retry_after_seconds(value)
    return float(seconds) if seconds is not None else float(2**attempt)


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body[:65536]) if body.strip() else None
    except (ValueError, RecursionError):
        return None


def _error_code(body: bytes) -> str:
    """The error code of a JSON error body: ``{"error": {"code": …}}`` (Graph, Azure) or
    ``{"error": "…"}`` (OAuth); printable, bounded, else empty."""
    try:
        parsed = json.loads(body[:65536])
    except (ValueError, RecursionError):
        return ""
    error = parsed.get("error") if isinstance(parsed, dict) else None
    code = error.get("code") if isinstance(error, dict) else error
    if not isinstance(code, str):
        return ""
    return "".join(c for c in code[:80] if c.isascii() and c.isprintable())


def _resource(scope: str) -> str:
    """The resource of a scope: ``api://x/read`` → ``api://x``; ``User.Read`` → Graph."""
    return scope.rpartition("/")[0] if "/" in scope else "https://graph.microsoft.com"


__all__ = ["AsyncUserTokens", "DownstreamApi", "DownstreamCall", "UserTokens"]
