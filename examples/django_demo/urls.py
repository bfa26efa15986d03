"""The demo's routes, the other demos' (``/login``, ``/get_token``, ``/logout``, ``/profile``,
``/claims``, ``/call-api``, ``/admin``, ``/secure-data``)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from entra_auth.integrations.django.api import require_token
from entra_auth.integrations.django.views import admin_login

from . import views

handler404 = "examples.django_demo.views.not_found"

urlpatterns = [
    path("", views.home, name="home"),
    path("", include("entra_auth.integrations.django.urls")),  # /login, /get_token, /logout
    path("profile", views.profile, name="profile"),
    path("claims", views.claims, name="claims"),
    path("call-api", views.call_api, name="call_api"),
    # -- the protected API (entra_auth.integrations.django.api) ----------------------------
    # /secure-data requires the scope the web app asks for (access_as_user, or DEMO_API_SCOPE's).
    path(
        "secure-data",
        require_token(scopes=[views.api_scope_name()])(views.secure_data),
        name="secure_data",
    ),
    # -- the admin: signed in through Entra ID, open to staff (ENTRA_STAFF_ROLES) -----------
    path("admin", RedirectView.as_view(url="/admin/"), name="admin"),
    path("admin/login/", admin_login),
    path("admin/", admin.site.urls),
    path("favicon.ico", RedirectView.as_view(url="/static/favicon.svg")),
]
