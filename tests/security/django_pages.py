"""``tests/test_signin_pages.py``'s app on Django (its URLconf), as ``make_app`` builds it on
Flask: a home page showing who is signed in and the signed-out notice, ``/page`` (signed in)
and ``/admin`` (the Admin role), beside the sign-in routes."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.utils.html import escape

from entra_auth.integrations.django import entra_login_required
from entra_auth.integrations.django.web import current_user, signed_out


def home(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    who = f'<span id="who">{escape(user.name)}</span>' if user.is_authenticated else ""
    notice = '<p id="signed-out">You are signed out.</p>' if signed_out(request) else ""
    return HttpResponse(f"{who}{notice}anonymous={user.is_anonymous}")


@entra_login_required
def page(request: HttpRequest) -> JsonResponse:
    user: Any = current_user(request)
    return JsonResponse({"key": list(user.key), "record": user.record})


@entra_login_required(roles=["Admin"])
def admin(request: HttpRequest) -> HttpResponse:
    return HttpResponse("admin page")


urlpatterns = [
    path("", home),
    path("page", page),
    path("admin", admin),
    path("", include("entra_auth.integrations.django.urls")),
]
