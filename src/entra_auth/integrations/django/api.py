"""Protect Django views with ``@require_token`` (the Flask and FastAPI adapters' answers).

    from entra_auth.integrations.django.api import require_token

    @require_token(scopes=["access_as_user"])
    def secure_data(request):
        return JsonResponse({"hello": request.principal.name})

    @require_token(roles=["Data.Read.All"], app_only=True)
    async def export(request):        # an async view (ASGI): validated without blocking the loop
        ...

Settings are the ``ENTRA_*`` names of ``settings.py`` over the environment's, read on first use
and again whenever they change (``override_settings``, pytest-django's ``settings`` fixture:
Django's ``setting_changed``, or another settings object in place). Django REST framework
views use ``drf.EntraTokenAuthentication``.

Only translation lives here: validation is ``entra_auth.tokens``, the answers (status,
``WWW-Authenticate``, JSON body, ``Cache-Control: no-store``) are ``entra_auth.bearer``'s.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.signals import setting_changed
from django.http import JsonResponse

from ...bearer import (
    CALLER_ERRORS,
    Challenge,
    bearer_token,
    challenge,
    check_token_syntax,
    log_caller_error,
    log_refusal,
)
from ...config import ENVIRONMENT, EntraConfig
from ...errors import (
    EntraAuthError,
)
from ...keys import JwksCache, KeySource
from ...tokens import AccessTokenValidator, Principal
from ...tokens import auth_context_names as _contexts
from .conf import SETTINGS_PY, entra_settings

log = logging.getLogger("entra_auth.django")
V = TypeVar("V", bound=Callable[..., Any])
# What a protected view may raise that its caller can act on (a claims challenge, consent) or
# wait out (a downstream API unavailable): answered as the refusals are, never as a 500.
_CALLER_ERRORS = CALLER_ERRORS  # answered as the refusals are, never as a 500


def _config_from_settings(*, require: Iterable[str] = (), **overrides: Any) -> EntraConfig:
    """``ENTRA_*`` of ``django.conf.settings`` (native values or strings) over the environment's,
    read as the sign-in app reads them (``conf.entra_settings``).

    Private on purpose: the sign-in app builds its own ``EntraConfig`` from the same settings
    (requiring a client credential, which an API that only validates tokens does not need);
    the two are meant to become one reader."""
    return EntraConfig.from_mapping(
        entra_settings(), sources=(SETTINGS_PY, ENVIRONMENT), require=require, **overrides
    )


class _Refused(Exception):
    """A refused request; ``challenge`` is its RFC 6750 answer (internal: each entry point
    turns it into its own response)."""

    def __init__(self, answer: Challenge):
        super().__init__(answer.body.get("error", "refused"))
        self.challenge = answer


@dataclass(frozen=True)
class _Need:
    """What an endpoint requires of a token (the core's ``validate`` arguments)."""

    scopes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    app_only: bool = False
    auth_contexts: tuple[str, ...] = ()


_ANY_TOKEN = _Need()


class _State:
    """One reading of the settings and the validators made from it: the sync one (``JwksCache``)
    for sync views and DRF, the async one (``AsyncJwksCache``) for async views. Replaced whole
    when the settings change, so a request never mixes two configurations."""

    def __init__(self, config: EntraConfig, source: object):
        self.config, self.source = config, source
        self.sync: AccessTokenValidator | None = None
        self.async_: AccessTokenValidator | None = None


# Every protector that reads the settings, told when they change (weakly: a protector made in
# a test goes away with it).
_PROTECTORS: weakref.WeakSet[ApiProtector] = weakref.WeakSet()


class ApiProtector:
    """Validates bearer tokens for a Django project's API views.

    ``config``: the API's settings; when omitted, the ``ENTRA_*`` settings (then the
    environment), read on first use and again after Django signals a change to one of them.
    Most projects use the module's ``require_token``, whose protector reads the settings; make
    one of your own for a second API (another audience) or another ``realm``.
    """

    def __init__(self, config: EntraConfig | None = None, *, realm: str = "api"):
        self._given = config
        self.realm = realm
        self._state: _State | None = None
        self._lock = threading.Lock()
        if config is None:
            _PROTECTORS.add(self)

    # -- settings and validators ------------------------------------------------------------
    @property
    def config(self) -> EntraConfig:
        """The settings in use (``MissingSettingError`` naming what to set when incomplete: the
        operator's error, never answered as a refusal)."""
        return self._current().config

    @property
    def validator(self) -> AccessTokenValidator:
        """The sync validator (``JwksCache``): sync views and Django REST framework."""
        return self._sync_validator(self._current())

    @property
    def async_validator(self) -> AccessTokenValidator:
        """The async validator (``AsyncJwksCache``): async views, keys fetched without blocking
        the event loop. Without httpx, the sync one (its fetches then run in a thread)."""
        state = self._current()
        if state.async_ is None:
            keys = _async_keys(state.config)
            validator = (
                AccessTokenValidator(state.config, keys)
                if keys is not None
                else self._sync_validator(state)
            )
            with self._lock:
                if state.async_ is None:
                    state.async_ = validator
        return state.async_

    def _sync_validator(self, state: _State) -> AccessTokenValidator:
        if state.sync is None:
            with self._lock:
                if state.sync is None:
                    state.sync = AccessTokenValidator(state.config, JwksCache(state.config))
        return state.sync

    def reset(self) -> None:
        """Forget the settings and validators: the next request reads the settings again and
        fetches the keys anew. Done on Django's ``setting_changed`` for ``ENTRA_*``."""
        self._state = None

    def _current(self) -> _State:
        # The settings object Django reads now: override_settings (and pytest-django's
        # ``settings`` fixture, whose ``del settings.X`` and undoing send no setting_changed)
        # put another in place; in production it never changes. One identity check a request.
        source = None if self._given is not None else _settings_in_use()
        state = self._state
        if state is None or state.source is not source:
            with self._lock:
                state = self._state
                if state is None or state.source is not source:
                    config = self._given or _config_from_settings(require=("api_audiences",))
                    state = self._state = _State(config, source)
        return state

    # -- the decorator ----------------------------------------------------------------------
    def require_token(
        self,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        *,
        app_only: bool = False,
        auth_context: str | Iterable[str] = (),
    ) -> Callable[[V], V]:
        """The view needs a valid bearer token with these scopes/roles; ``request.principal``
        is its ``Principal``. See the module's ``require_token``."""
        need = _Need(
            _names(scopes, "scopes"), _names(roles, "roles"), app_only, _contexts(auth_context)
        )

        def decorate(view: V) -> V:
            if iscoroutinefunction(view):

                @functools.wraps(view)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    request = _request_in(args, view)
                    try:
                        request.principal = await self._principal_async(request, need)
                    except _Refused as refusal:
                        return _respond(refusal.challenge)
                    try:
                        return await view(*args, **kwargs)
                    except _CALLER_ERRORS as error:
                        return self._answer_view(request, error)

                wrapper: Any = async_wrapper
            else:

                @functools.wraps(view)
                def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                    request = _request_in(args, view)
                    try:
                        request.principal = self._principal(request, need)
                    except _Refused as refusal:
                        return _respond(refusal.challenge)
                    try:
                        return view(*args, **kwargs)
                    except _CALLER_ERRORS as error:
                        return self._answer_view(request, error)

                wrapper = sync_wrapper
            # No CSRF check: only a request carrying a valid bearer token reaches the view, and a
            # browser never adds an Authorization header to a cross-site request on its own (DRF
            # exempts its views alike; its SessionAuthentication is what checks CSRF).
            wrapper.csrf_exempt = True
            return cast(V, wrapper)

        return decorate

    # -- the token of a request (shared with drf.py) ----------------------------------------
    def _principal(self, request: Any, need: _Need | None = _ANY_TOKEN) -> Principal:
        """The principal of the request's token carrying ``need``; ``_Refused`` otherwise (no
        token included). A token that validates without ``need`` still meets the core's rule:
        an app-only token without an app role of this API is refused. ``need=None``: the token
        authenticated only, its authorization left to the caller (DRF's permissions)."""
        validator = self.validator  # outside the try: missing settings are no refusal
        token = self._token(request)
        try:
            try:
                if need is None:
                    return validator.authenticate(token)
                return validator.validate(
                    token,
                    scopes=need.scopes,
                    roles=need.roles,
                    app_only=need.app_only,
                    auth_contexts=need.auth_contexts,
                )
            except EntraAuthError:
                check_token_syntax(token)  # not even a b64token: the request's fault
                raise
        except EntraAuthError as error:
            raise self._refusal(request, error) from error

    async def _principal_async(self, request: Any, need: _Need = _ANY_TOKEN) -> Principal:
        """``_principal`` for async views: the key looked up without blocking the loop."""
        validator = self.async_validator
        token = self._token(request)
        try:
            try:
                return await validator.validate_async(
                    token,
                    scopes=need.scopes,
                    roles=need.roles,
                    app_only=need.app_only,
                    auth_contexts=need.auth_contexts,
                )
            except EntraAuthError:
                check_token_syntax(token)
                raise
        except EntraAuthError as error:
            raise self._refusal(request, error) from error

    def _token(self, request: Any) -> str:
        """The request's bearer token (syntax checked only if it is refused, as the other
        adapters do); ``_Refused`` without one (401, no error code) or for a bad header."""
        try:
            token = bearer_token(_authorization(request.META), check_syntax=False)
        except EntraAuthError as error:
            raise self._refusal(request, error) from error
        if token is None:
            raise _Refused(challenge(None, realm=self.realm))
        return token

    def _refusal(self, request: Any, error: EntraAuthError) -> _Refused:
        # the path is the client's: logged inert, one record per refusal, never the token
        log_refusal(log, error, method=request.method or "", path=request.path)
        return _Refused(challenge(error, realm=self.realm))

    def _answer_view(self, request: Any, error: EntraAuthError) -> JsonResponse:
        """A protected view's failure its caller can act on (``bearer.CALLER_ERRORS``)."""
        return _respond(self._caller_challenge(request, error))

    def _caller_challenge(self, request: Any, error: EntraAuthError) -> Challenge:
        # for the operator: why (an AADSTS code, a host down), never the token or the claims
        log_caller_error(log, error, method=request.method or "", path=request.path)
        return challenge(error, realm=self.realm)

    def _settings_changed(self) -> None:
        if self._given is None:
            self.reset()


_DEFAULT = ApiProtector()


def require_token(
    scopes: Iterable[str] = (),
    roles: Iterable[str] = (),
    *,
    app_only: bool = False,
    auth_context: str | Iterable[str] = (),
) -> Callable[[V], V]:
    """The view (sync, or async under ASGI) needs a valid bearer token with these scopes and/or
    app roles; ``request.principal`` is then its ``Principal`` (``request.user`` is left to
    Django's authentication: a token's caller is no ``User``).

    Both given: delegated tokens are checked for the scopes, app-only tokens for the roles.
    ``app_only=True``: app permissions only (a daemon's token), a user's token is refused.
    ``auth_context="c1"``: a user's token whose ``acrs`` holds that authentication context,
    else a 401 claims challenge. Refusals are RFC 6750 answers (401/403, ``WWW-Authenticate``,
    a JSON body); so are the view's own ``OnBehalfOfError``, ``InsufficientClaimsError`` and
    ``ProviderUnavailableError`` (a downstream API's, Entra's). For a class-based view:
    ``@method_decorator(require_token(...), name="dispatch")``."""
    return _DEFAULT.require_token(scopes, roles, app_only=app_only, auth_context=auth_context)


# -- internals ----------------------------------------------------------------------------------
def _settings_changed(sender: Any = None, setting: str = "", **kwargs: Any) -> None:
    """Django's ``setting_changed``: a protector reading the settings reads them again."""
    if setting.startswith("ENTRA_"):
        for protector in list(_PROTECTORS):
            protector._settings_changed()


setting_changed.connect(_settings_changed, dispatch_uid="entra_auth.django.api")


def _settings_in_use() -> object:
    """The object behind ``django.conf.settings`` (``None`` before it is set up)."""
    return vars(settings).get("_wrapped")


def _async_keys(config: EntraConfig) -> KeySource | Any | None:
    """An ``AsyncJwksCache`` for the async views; None without httpx (not in the ``django``
    extra), when the sync key set serves them from a thread."""
    try:
        from ...keys import AsyncJwksCache
    except ImportError:
        return None
    return AsyncJwksCache(config)


def _authorization(meta: Mapping[str, Any]) -> list[str]:
    """The Authorization header's values. Django has at most one: a WSGI server and Django's
    ASGI handler fold repeated headers into one, comma-joined, which is no single b64token and
    so refused as ``invalid_request``, as the other adapters refuse two headers."""
    value = meta.get("HTTP_AUTHORIZATION")
    return [] if value is None else [str(value)]


def _request_in(args: tuple[Any, ...], view: object) -> Any:
    """The view's request: its first argument, or the second of a method (``self``)."""
    for value in args[:2]:
        if isinstance(getattr(value, "META", None), dict):
            return value
    raise TypeError(  # fail closed: never run the view without having checked a token
        f"require_token decorates Django views, which take the request; "
        f"{getattr(view, '__qualname__', view)!s} was called without one. For a class-based "
        "view use @method_decorator(require_token(...), name='dispatch')."
    )


def _respond(answer: Challenge) -> JsonResponse:
    return JsonResponse(answer.body, status=answer.status, headers=answer.headers)


def _names(values: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str):  # scopes="a b" would require the scopes "a", " ", "b"...
        raise TypeError(f"{what}= takes a list of names, such as {what}=[{values!r}].")
    return tuple(values)


__all__ = ["ApiProtector", "require_token"]
