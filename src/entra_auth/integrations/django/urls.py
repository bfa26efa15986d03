"""The sign-in routes: ``path("", include("entra_auth.integrations.django.urls"))``.

``/login``, the redirect path (``ENTRA_REDIRECT_PATH``, or the path of
``ENTRA_REDIRECT_URI``; default ``/get_token``), ``/logout`` and ``/logout/front-channel``,
named ``entra_auth:login``, ``entra_auth:callback``, ``entra_auth:logout`` and
``entra_auth:front_channel``. Include them at the root: the redirect path is the one
registered with Entra ID (``manage.py check`` says when the two differ).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import path

from . import views

app_name = "entra_auth"


def callback_route() -> str:
    """The redirect path as the settings give it, read without building the whole
    configuration (a URLconf must load even while other settings are still missing)."""

    def setting(name: str) -> str:
        value = getattr(settings, name, None)
        return str(value if value is not None else os.environ.get(name, "")).strip()

    uri = setting("ENTRA_REDIRECT_URI")
    route = (urlsplit(uri).path if uri else "") or setting("ENTRA_REDIRECT_PATH") or "/get_token"
    return route.lstrip("/")


urlpatterns = [
    path("login", views.login, name="login"),
    path(callback_route(), views.callback_view, name="callback"),
    path("logout", views.logout, name="logout"),
    path("logout/front-channel", views.front_channel, name="front_channel"),
]
