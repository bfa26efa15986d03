"""Django REST framework: bearer tokens as DRF authentication and permissions.

    # settings.py
    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "entra_auth.integrations.django.drf.EntraTokenAuthentication",
        ],
        "DEFAULT_PERMISSION_CLASSES": ["entra_auth.integrations.django.drf.TokenRequired"],
        "EXCEPTION_HANDLER": "entra_auth.integrations.django.drf.exception_handler",
    }

    class SecureData(APIView):
        permission_classes = [RequireToken(scopes=["access_as_user"])]

        def get(self, request):
            return Response({"hello": request.auth.name})    # request.auth: the Principal

The answers are the other adapters' (``entra_auth.bearer``): the refusal's status,
``WWW-Authenticate`` and RFC 6750 JSON body come through DRF's own exception handler too;
``exception_handler`` adds ``Cache-Control: no-store`` and answers what a view raises that its
caller can act on (``OnBehalfOfError``…), which DRF's would turn into a 500. Validation is the
core's, with the ``ENTRA_*`` settings ``api.require_token`` reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException, NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from ...bearer import Challenge, challenge
from ...errors import EntraAuthError, InsufficientClaimsError, InsufficientScopeError
from ...tokens import AccessTokenValidator, Principal
from ...tokens import auth_context_names as _contexts
from .api import _CALLER_ERRORS, _DEFAULT, ApiProtector, _names, _Refused


class BearerRefused(APIException):  # type: ignore[misc]
    """A refused request as DRF knows it; ``challenge`` is its RFC 6750 answer.

    A plain ``APIException`` with the challenge's status, ``auth_header`` and ``wait``, not an
    ``AuthenticationFailed``: DRF would replace that one's ``WWW-Authenticate`` with the first
    authentication class's (or turn the 401 into a 403 when that class has none)."""

    def __init__(self, answer: Challenge):
        super().__init__(detail=answer.body, code=answer.body.get("error"))
        self.challenge = answer
        self.status_code = answer.status
        self.auth_header = answer.headers.get("WWW-Authenticate")
        retry_after = answer.headers.get("Retry-After")
        self.wait = int(retry_after) if retry_after else None


class PrincipalUser:
    """``request.user`` of a request authenticated by a token: what the token speaks for, not a
    Django ``User`` (``EntraTokenAuthentication.user_for`` may return one).

    ``pk`` is the stable ``oid@tid`` (never the email or UPN), so that DRF's per-user throttles
    count each caller apart; no Django permission is granted (``has_perm`` is False)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, principal: Principal):
        self.principal = principal

    @property
    def pk(self) -> str:
        return "@".join(self.principal.key)

    id = pk

    @property
    def username(self) -> str:
        """For display only (mutable and reassignable: never authorize on it)."""
        return self.principal.username or self.pk

    def get_username(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return False

    def has_perms(self, perm_list: Iterable[str], obj: object = None) -> bool:
        return False

    def has_module_perms(self, app_label: str) -> bool:
        return False

    def get_all_permissions(self, obj: object = None) -> set[str]:
        return set()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PrincipalUser) and other.principal.key == self.principal.key

    def __hash__(self) -> int:
        return hash(self.principal.key)

    def __str__(self) -> str:
        return self.principal.name or self.username


class EntraTokenAuthentication(BaseAuthentication):  # type: ignore[misc]
    """DRF authentication by ``Authorization: Bearer``: ``(PrincipalUser, Principal)`` for a
    valid token (``request.auth`` is the ``Principal``, also ``request.principal``), ``None``
    without one (another class may authenticate, or the request is anonymous), the RFC 6750
    refusal for a refused one. Whatever the view's permissions, the core's rule holds: an
    app-only token without an app role of this API is refused (403), by the view's
    ``TokenRequired`` with its scopes and roles, else here.

    ``protector``: a subclass's own ``ApiProtector`` (another audience or realm); by default
    the one ``api.require_token`` uses."""

    protector: ApiProtector | None = None

    def api(self) -> ApiProtector:
        return self.protector or _DEFAULT

    def authenticate(self, request: Any) -> tuple[Any, Principal] | None:
        """``None`` without an ``Authorization: Bearer`` header: another scheme (Basic, DRF's
        ``Token``) is another class's to read, as DRF's own classes leave each other's alone;
        a view that needs a token then answers 401 with the bearer challenge. Anything else
        wrong with a bearer header (two of them, a malformed value) is ``invalid_request``."""
        protector = self.api()
        value = request.META.get("HTTP_AUTHORIZATION")
        if value is None or str(value).strip().partition(" ")[0].lower() != "bearer":
            return None
        try:
            principal = protector._principal(request, None)
        except _Refused as refusal:
            raise BearerRefused(refusal.challenge) from refusal
        if not _authorizes_tokens(request):
            # No TokenRequired to apply the core's rule with the view's requirements: applied
            # here, so that IsAuthenticated alone never admits a role-less app-only token.
            _authorize(request, protector, principal)
        request._request.principal = principal  # as require_token sets it
        return self.user_for(principal), principal

    def user_for(self, principal: Principal) -> Any:
        """``request.user`` for this principal: a ``PrincipalUser``. Override to return the
        Django ``User`` linked to its ``(tid, oid)``, never one matched by email or UPN."""
        return PrincipalUser(principal)

    def authenticate_header(self, request: Any) -> str:
        """RFC 6750's challenge, so that DRF answers a request without credentials 401, not 403."""
        return challenge(None, realm=self.api().realm).headers["WWW-Authenticate"]


class TokenRequired(BasePermission):  # type: ignore[misc]
    """A request authenticated by a bearer token (``request.auth`` a ``Principal``) carrying
    ``scopes``/``roles`` (both: delegated tokens are checked for the scopes, app-only tokens
    for the roles), app permissions only with ``app_only``, and the ``auth_contexts``. Use it as
    is (any valid token), subclass it, or make one with ``RequireToken(...)``.

    Refusals are RFC 6750's: 401 without a token (a session's user is not enough), 403
    ``insufficient_scope``, 401 ``insufficient_claims`` for a missing authentication context."""

    scopes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    app_only: bool = False
    auth_contexts: tuple[str, ...] = ()

    def has_permission(self, request: Any, view: Any) -> bool:
        protector = _protector_of(request)
        principal = request.auth
        if not isinstance(principal, Principal):
            raise BearerRefused(challenge(None, realm=protector.realm))
        _authorize(
            request,
            protector,
            principal,
            scopes=self.scopes,
            roles=self.roles,
            app_only=self.app_only,
            auth_contexts=self.auth_contexts,
        )
        return True


def RequireToken(  # a class's name: it makes one, for DRF's permission_classes
    scopes: Iterable[str] = (),
    roles: Iterable[str] = (),
    *,
    app_only: bool = False,
    auth_context: str | Iterable[str] = (),
) -> type[TokenRequired]:
    """A ``TokenRequired`` permission class with these requirements (DRF's
    ``permission_classes`` take classes): ``permission_classes = [RequireToken(roles=[...])]``."""
    need = {
        "scopes": _names(scopes, "scopes"),
        "roles": _names(roles, "roles"),
        "app_only": app_only,
        "auth_contexts": _contexts(auth_context),
        "__module__": __name__,
        "__qualname__": "RequireToken",
    }
    # type() picks the bases' metaclass (DRF's, which composes permissions with & | ~).
    return cast("type[TokenRequired]", type("RequireToken", (TokenRequired,), need))


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """``REST_FRAMEWORK["EXCEPTION_HANDLER"]``: refusals answered exactly as the other adapters
    answer them (with ``Cache-Control: no-store``); a view's ``OnBehalfOfError``,
    ``InsufficientClaimsError`` and ``ProviderUnavailableError`` (a downstream API's, Entra's)
    answered as its caller can act on them (claims challenge, consent, ``Retry-After``) rather
    than as a 500; a request without credentials on a view authenticated by tokens answered
    with RFC 6750's challenge. Everything else is DRF's."""
    request = context["request"]  # DRF's context: the view, its args, the request
    answer: Challenge | None = None
    if isinstance(exc, BearerRefused):
        answer = exc.challenge
    elif isinstance(exc, _CALLER_ERRORS) and isinstance(exc, EntraAuthError):
        answer = _protector_of(request)._caller_challenge(request, exc)
    elif isinstance(exc, NotAuthenticated) and _token_authenticator(request) is not None:
        answer = challenge(None, realm=_protector_of(request).realm)
    if answer is None:
        return drf_exception_handler(exc, context)
    set_rollback()  # as DRF does for its own answers (ATOMIC_REQUESTS)
    return Response(answer.body, status=answer.status, headers=answer.headers)


def _authorize(request: Any, protector: ApiProtector, principal: Principal, **need: Any) -> None:
    """The core's authorization (``BearerRefused`` 403 ``insufficient_scope``, or 401
    ``insufficient_claims``); with no ``need``, its one rule for every token: an app-only token
    carries an app role of this API."""
    try:
        AccessTokenValidator.authorize(
            principal, apps_without_roles=protector.config.allow_apps_without_roles, **need
        )
    except (InsufficientScopeError, InsufficientClaimsError) as error:
        raise BearerRefused(protector._refusal(request, error).challenge) from error


def _authorizes_tokens(request: Any) -> bool:
    """Whether the permissions the view applies to this request (``get_permissions()``: a
    ViewSet may choose them per action) include a ``TokenRequired``, which authorizes the token
    with the view's own scopes and roles (its refusal then names them, as the other adapters'
    do). Composed permissions (``A & B``) are not looked into: the rule is applied by the
    authentication class then, which is never less strict; so it is when anything fails."""
    view = (getattr(request, "parser_context", None) or {}).get("view")
    get_permissions = getattr(view, "get_permissions", None)
    if not callable(get_permissions):
        return False
    try:
        permissions = list(get_permissions())
    except Exception:  # an app's own get_permissions failing: fail closed
        return False
    return any(isinstance(permission, TokenRequired) for permission in permissions)


def _token_authenticator(request: Any) -> EntraTokenAuthentication | None:
    for authenticator in getattr(request, "authenticators", None) or ():
        if isinstance(authenticator, EntraTokenAuthentication):
            return authenticator
    return None


def _protector_of(request: Any) -> ApiProtector:
    """The protector of the class that authenticated the request (its realm and settings), or
    of the view's first ``EntraTokenAuthentication``, else the default one."""
    authenticator = getattr(request, "successful_authenticator", None)
    if not isinstance(authenticator, EntraTokenAuthentication):
        authenticator = _token_authenticator(request)
    return authenticator.api() if authenticator is not None else _DEFAULT


__all__ = [
    "BearerRefused",
    "EntraTokenAuthentication",
    "PrincipalUser",
    "RequireToken",
    "TokenRequired",
    "exception_handler",
]
