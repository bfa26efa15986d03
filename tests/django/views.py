"""The test project's views: what an app writes with the integration."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import View

from entra_auth.integrations.django import (
    EntraLoginRequiredMixin,
    aget_token,
    entra_login_required,
    get_token,
    graph,
)

API_SCOPE = "api://a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c/access_as_user"


def who(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    return {
        "authenticated": user.is_authenticated,
        "username": user.get_username() if user.is_authenticated else None,
        "entra": request.entra.user.name if request.entra else None,  # type: ignore[attr-defined]
    }


def home(request: HttpRequest) -> JsonResponse:
    return JsonResponse(who(request))


def html(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<!doctype html><p>A page</p>")


@entra_login_required
def page(request: HttpRequest) -> JsonResponse:
    return JsonResponse(who(request))


@entra_login_required
async def async_page(request: HttpRequest) -> JsonResponse:
    user = await request.auser()  # type: ignore[attr-defined]
    return JsonResponse(
        {"username": user.get_username(), "token": len(await aget_token(request, ["User.Read"]))}
    )


@entra_login_required(roles=["Admin"])
def admin_role(request: HttpRequest) -> HttpResponse:
    return HttpResponse("admin page")


@entra_login_required(roles=["Admin"])
async def async_admin_role(request: HttpRequest) -> HttpResponse:
    return HttpResponse("async admin page")


@entra_login_required(scopes=[API_SCOPE])
def needs_scope(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"length": len(get_token(request, [API_SCOPE]))})


@entra_login_required
def token(request: HttpRequest) -> JsonResponse:
    scope = request.GET.get("scope", "User.Read")
    return JsonResponse({"token": get_token(request, [scope])})


@entra_login_required
def graph_me(request: HttpRequest) -> JsonResponse:
    return JsonResponse(graph(request).me())


class Page(EntraLoginRequiredMixin, View):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse(who(request))


class AdminPage(EntraLoginRequiredMixin, View):
    entra_roles = ("Admin",)

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("cbv admin")


class AsyncPage(EntraLoginRequiredMixin, View):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("cbv async")
