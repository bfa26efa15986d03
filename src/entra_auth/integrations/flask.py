"""entra-auth for Flask: protect an API with ``@require_token`` (the shape of Authlib's
``ResourceProtector``), configured from ``app.config`` and the environment.

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
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.local import LocalProxy

from ..bearer import bearer_token, challenge
from ..config import EntraConfig
from ..errors import EntraAuthError, InsufficientScopeError, KeySetUnavailableError
from ..jwks import JwksCache
from ..tokens import AccessTokenValidator, Principal

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
