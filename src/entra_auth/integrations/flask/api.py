"""Protect a Flask API with ``@require_token`` (the shape of Authlib's ``ResourceProtector``).

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
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.local import LocalProxy

from ...bearer import (
    CALLER_ERRORS,
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
)
from ...keys import JwksCache
from ...tokens import AccessTokenValidator, Principal
from ...tokens import auth_context_names as _contexts
from ._config import config_from_app

log = logging.getLogger("entra_auth.flask")
F = TypeVar("F", bound=Callable[..., Any])
_EXTENSION = "entra_auth.api"  # app.extensions[_EXTENSION]: {ApiProtector: its validator}
_CALLER_ERRORS = CALLER_ERRORS  # answered as the refusals are, never as a 500

current_principal: Principal | None = cast(
    "Principal | None", LocalProxy(lambda: g.get("principal"))
)


class ApiProtector:
    """Validates bearer tokens for a Flask app's API endpoints.

    Each protector keeps its own validator per app in ``app.extensions``: two protectors on one
    app (two APIs, two audiences) never share configuration, and one protector can serve
    several apps.
    """

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
        app.extensions.setdefault(_EXTENSION, {})[self] = validator

    def validator_for(self, app: Flask | None = None) -> AccessTokenValidator:
        """This protector's validator on ``app`` (the current app by default)."""
        protectors = _protectors(app)
        if self not in protectors:
            raise RuntimeError(
                "This ApiProtector is not set up on this app: call ApiProtector(app) or "
                "init_app(app)."
            )
        return protectors[self]

    @staticmethod
    def validator(app: Flask | None = None) -> AccessTokenValidator:
        """The validator of the app's only ``ApiProtector``."""
        return _only_protector(app)[1]

    def require_token(
        self,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        *,
        app_only: bool = False,
        auth_context: str | Iterable[str] = (),
    ) -> Callable[[F], F]:
        """The view needs a valid bearer token with these scopes/roles (``app_only=True``: app
        permissions only, a user's token is refused; ``auth_context="c1"``: a user's token
        whose ``acrs`` holds that authentication context, else a 401 claims challenge);
        ``g.principal`` is set."""
        contexts = _contexts(auth_context)
        return _require(self, tuple(scopes), tuple(roles), self.realm, app_only, contexts)

    def protect_blueprint(
        self,
        blueprint: Blueprint,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
        *,
        app_only: bool = False,
        auth_context: str | Iterable[str] = (),
    ) -> None:
        """Every view of ``blueprint`` requires a valid token (and these scopes/roles)."""
        need_scopes, need_roles = tuple(scopes), tuple(roles)
        contexts = _contexts(auth_context)

        @blueprint.before_request
        def check() -> Response | None:
            return _check(
                self.validator_for(), need_scopes, need_roles, self.realm, app_only, contexts
            )

        for kind in _CALLER_ERRORS:
            blueprint.register_error_handler(kind, lambda error: _answer_view(error, self.realm))


def _protectors(app: Flask | None) -> dict[ApiProtector, AccessTokenValidator]:
    target = app or current_app
    return cast("dict[ApiProtector, AccessTokenValidator]", target.extensions.get(_EXTENSION, {}))


def _only_protector(app: Flask | None) -> tuple[ApiProtector, AccessTokenValidator]:
    protectors = _protectors(app)
    if len(protectors) != 1:
        raise RuntimeError(
            "ApiProtector is not set up on this app: call ApiProtector(app) or init_app(app)."
            if not protectors
            else "Several ApiProtectors are set up on this app: use protector.require_token() "
            "and protector.validator_for(app) of the one you mean."
        )
    return next(iter(protectors.items()))


def require_token(
    scopes: Iterable[str] = (),
    roles: Iterable[str] = (),
    *,
    realm: str = "api",
    app_only: bool = False,
    auth_context: str | Iterable[str] = (),
) -> Callable[[F], F]:
    """The view needs a valid bearer token with these scopes/roles; ``g.principal`` is set.
    Uses the app's only ``ApiProtector``; with several, use ``protector.require_token``."""
    return _require(None, tuple(scopes), tuple(roles), realm, app_only, _contexts(auth_context))


def _require(
    protector: ApiProtector | None,
    scopes: tuple[str, ...],
    roles: tuple[str, ...],
    realm: str,
    app_only: bool,
    auth_contexts: tuple[str, ...] = (),
) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            validator = (
                protector.validator_for() if protector is not None else _only_protector(None)[1]
            )
            refused = _check(validator, scopes, roles, realm, app_only, auth_contexts)
            if refused is not None:
                return refused
            try:
                return view(*args, **kwargs)
            except _CALLER_ERRORS as error:
                return _answer_view(error, realm)

        return cast(F, wrapper)

    return decorate


def _answer_view(error: EntraAuthError, realm: str) -> Response:
    """A protected view's failure its caller can act on (see ``_CALLER_ERRORS``)."""
    log_caller_error(log, error, method=request.method, path=request.path)
    return _answer(error, realm)


def _check(
    validator: AccessTokenValidator,
    scopes: tuple[str, ...],
    roles: tuple[str, ...],
    realm: str,
    app_only: bool = False,
    auth_contexts: tuple[str, ...] = (),
) -> Response | None:
    try:
        token = bearer_token(request.headers.getlist("Authorization"), check_syntax=False)
        if token is None:
            return _answer(None, realm)
        try:
            g.principal = validator.validate(
                token, scopes=scopes, roles=roles, app_only=app_only, auth_contexts=auth_contexts
            )
        except EntraAuthError:
            check_token_syntax(token)  # not even a b64token: the request's fault (400)
            raise
    except EntraAuthError as error:
        # the path is the client's: logged inert, one record per refusal (HX07)
        log_refusal(log, error, method=request.method, path=request.path)
        if isinstance(error, (InsufficientScopeError, InsufficientClaimsError)):
            g.principal = None
        return _answer(error, realm)
    return None


def _answer(error: EntraAuthError | None, realm: str) -> Response:
    answer = challenge(error, realm=realm)
    response = jsonify(answer.body)
    response.status_code = answer.status
    response.headers.update(answer.headers)
    return response
