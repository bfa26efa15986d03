"""The URLconf of the Django API tests (``ROOT_URLCONF = "tests.django.api_urls"``).

The security catalogue's API (tests/security/conftest.py ``make_api``: /any, /scoped GET+POST,
/role, /either, /daemons, /user-read, each answering ``who()``) three times: sync views with
``require_token`` at the root, async views under ``async/``, Django REST framework views under
``drf/``. Then views that raise what a caller can act on (``raise/<kind>``), one that calls on
the caller's behalf (``obo``), one that requires an authentication context (``sensitive``),
and a class-based view (``cbv``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.utils.decorators import method_decorator
from django.views import View
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import APISettings
from rest_framework.views import APIView

from entra_auth import OnBehalfOfProvider
from entra_auth.errors import (
    DownstreamApiUnavailableError,
    EntraAuthError,
    InsufficientClaimsError,
    OnBehalfOfError,
    ProviderUnavailableError,
)
from entra_auth.integrations.django.api import _config_from_settings, require_token
from entra_auth.integrations.django.drf import RequireToken, TokenRequired

from ..fastapi_support import who
from ..helpers import LEGACY_URI

# What the README tells a DRF project to write in settings.py. The tests set it with the ENTRA_*
# settings; the authentication and permission classes are resolved from it here as DRF resolves
# its defaults (DRF reads those once, when its views module is imported).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "entra_auth.integrations.django.drf.EntraTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["entra_auth.integrations.django.drf.TokenRequired"],
    "EXCEPTION_HANDLER": "entra_auth.integrations.django.drf.exception_handler",
}
_DRF = APISettings(REST_FRAMEWORK)
AUTHENTICATION = _DRF.DEFAULT_AUTHENTICATION_CLASSES
DEFAULT_PERMISSIONS = _DRF.DEFAULT_PERMISSION_CLASSES

LEGACY_READ = [f"{LEGACY_URI}/Legacy.Read"]


def _scp(token: str) -> Any:
    return jwt.decode(token, options={"verify_signature": False})["scp"]


# What a view raises, by the name its URL gives (the same errors the Flask twin raises).
RAISED: dict[str, Callable[[], EntraAuthError]] = {
    "claims": lambda: OnBehalfOfError(
        "Graph asks for a newer sign-in.",
        status=401,
        claims='{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}',
        aadsts=50173,
    ),
    "consent": lambda: OnBehalfOfError(
        "The user has not consented to Legacy.Read.",
        status=403,
        scopes=(f"{LEGACY_URI}/Legacy.Read",),
        consent_uri="https://login.example/consent?client_id=x",
        aadsts=65001,
        code="consent_required",
    ),
    "misconfigured": lambda: OnBehalfOfError(
        "The API's own credential is wrong.", status=500, aadsts=7000215
    ),
    "context": lambda: InsufficientClaimsError(
        "This needs c2.", claims='{"access_token":{"acrs":{"essential":true,"value":"c2"}}}'
    ),
    "unavailable": lambda: DownstreamApiUnavailableError(
        "Orders is down.", status=503, api="Orders", retry_after=7, host="orders.example"
    ),
    # Entra itself unreachable during the exchange on the caller's behalf.
    "entra-down": lambda: ProviderUnavailableError(
        "Entra ID is not available.", retry_after=9, host="login.example", step="on-behalf-of"
    ),
}


# -- sync views ---------------------------------------------------------------------------------
def _who(request: HttpRequest) -> JsonResponse:
    return JsonResponse(who(request.principal))  # type: ignore[attr-defined]


any_token = require_token()(_who)
scoped = require_token(scopes=["access_as_user"])(_who)
role = require_token(roles=["Data.Read.All"])(_who)
either = require_token(scopes=["access_as_user"], roles=["Data.Read.All"])(_who)
daemons = require_token(roles=["Data.Read.All"], app_only=True)(_who)
user_read = require_token(scopes=["User.Read"])(_who)


@require_token(scopes=["access_as_user"])
def raising(request: HttpRequest, kind: str) -> JsonResponse:
    raise RAISED[kind]()


def _obo() -> OnBehalfOfProvider:
    return OnBehalfOfProvider(_config_from_settings(require=("client_secret",)))


@require_token(scopes=["access_as_user"])
def on_behalf_of(request: HttpRequest) -> JsonResponse:
    """Calls the legacy API as the caller: consent the caller may not have given (403)."""
    token = _obo().get_token(request.principal, LEGACY_READ)  # type: ignore[attr-defined]
    return JsonResponse({"scp": _scp(token)})


@require_token(scopes=["access_as_user"], auth_context="c1")
def sensitive(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"acrs": request.principal.claims.get("acrs")})  # type: ignore[attr-defined]


@method_decorator(require_token(scopes=["access_as_user"]), name="dispatch")
class Orders(View):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse(who(request.principal))  # type: ignore[attr-defined]

    def post(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"created": True, **who(request.principal)})  # type: ignore[attr-defined]


# -- async views --------------------------------------------------------------------------------
def _async(scopes: tuple[str, ...] = (), roles: tuple[str, ...] = (), **kw: Any) -> Any:
    @require_token(scopes=scopes, roles=roles, **kw)
    async def view(request: HttpRequest) -> JsonResponse:
        return JsonResponse(who(request.principal))  # type: ignore[attr-defined]

    return view


@require_token(scopes=["access_as_user"])
async def async_raising(request: HttpRequest, kind: str) -> JsonResponse:
    raise RAISED[kind]()


@require_token(scopes=["access_as_user"])
async def async_on_behalf_of(request: HttpRequest) -> JsonResponse:
    token = await _obo().get_token_async(request.principal, LEGACY_READ)  # type: ignore[attr-defined]
    return JsonResponse({"scp": _scp(token)})


@require_token(scopes=["access_as_user"], auth_context="c1")
async def async_sensitive(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"acrs": request.principal.claims.get("acrs")})  # type: ignore[attr-defined]


# -- Django REST framework views ----------------------------------------------------------------
def _drf(*permissions: Any, methods: tuple[str, ...] = ("GET",)) -> Any:
    @api_view(list(methods))
    @authentication_classes(AUTHENTICATION)
    @permission_classes(list(permissions) or DEFAULT_PERMISSIONS)
    def view(request: Request) -> Response:
        assert request.user.principal is request.auth  # PrincipalUser, and the Principal
        return Response(who(request.auth))

    return view


@api_view(["GET"])
@authentication_classes(AUTHENTICATION)
@permission_classes([RequireToken(scopes=["access_as_user"])])
def drf_raising(request: Request, kind: str) -> Response:
    raise RAISED[kind]()


@api_view(["GET"])
@authentication_classes(AUTHENTICATION)
@permission_classes([RequireToken(scopes=["access_as_user"])])
def drf_on_behalf_of(request: Request) -> Response:
    return Response({"scp": _scp(_obo().get_token(request.auth, LEGACY_READ))})


class PerAction(APIView):  # type: ignore[misc]
    """A view whose class names TokenRequired but whose get_permissions() (as a ViewSet's per
    action) applies only IsAuthenticated to this request: the core's rule must still hold."""

    authentication_classes = AUTHENTICATION
    permission_classes = (TokenRequired,)

    def get_permissions(self) -> list[Any]:
        return [IsAuthenticated()]

    def get(self, request: Request) -> Response:
        return Response(who(request.auth))


@api_view(["GET"])
@authentication_classes(AUTHENTICATION)
@permission_classes([IsAuthenticated])
def drf_me(request: Request) -> Response:
    """DRF's own IsAuthenticated: the authentication class alone stands for the token."""
    user = request.user
    return Response(
        {
            "pk": user.pk,
            "username": user.get_username(),
            "str": str(user),
            "is_authenticated": user.is_authenticated,
            "has_perm": user.has_perm("auth.view_user"),
            "principal": request._request.principal is request.auth,
            **who(request.auth),
        }
    )


@api_view(["GET"])
@authentication_classes(AUTHENTICATION)
@permission_classes([RequireToken(scopes=["access_as_user"], auth_context="c1")])
def drf_sensitive(request: Request) -> Response:
    return Response({"acrs": request.auth.claims.get("acrs")})


urlpatterns = [
    path("any", any_token),
    path("scoped", scoped),
    path("role", role),
    path("either", either),
    path("daemons", daemons),
    path("user-read", user_read),
    path("raise/<str:kind>", raising),
    path("obo", on_behalf_of),
    path("async/obo", async_on_behalf_of),
    path("drf/obo", drf_on_behalf_of),
    path("drf/me", drf_me),
    path("drf/per-action", PerAction.as_view()),
    path("sensitive", sensitive),
    path("cbv", Orders.as_view()),
    path("async/any", _async()),
    path("async/scoped", _async(("access_as_user",))),
    path("async/role", _async(roles=("Data.Read.All",))),
    path("async/either", _async(("access_as_user",), ("Data.Read.All",))),
    path("async/daemons", _async(roles=("Data.Read.All",), app_only=True)),
    path("async/user-read", _async(("User.Read",))),
    path("async/raise/<str:kind>", async_raising),
    path("async/sensitive", async_sensitive),
    path("drf/any", _drf()),
    path("drf/scoped", _drf(RequireToken(scopes=["access_as_user"]), methods=("GET", "POST"))),
    path("drf/role", _drf(RequireToken(roles=["Data.Read.All"]))),
    path("drf/either", _drf(RequireToken(scopes=["access_as_user"], roles=["Data.Read.All"]))),
    path("drf/daemons", _drf(RequireToken(roles=["Data.Read.All"], app_only=True))),
    path("drf/user-read", _drf(RequireToken(scopes=["User.Read"]))),
    path("drf/raise/<str:kind>", drf_raising),
    path("drf/sensitive", drf_sensitive),
]
