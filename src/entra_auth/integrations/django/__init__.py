"""entra-auth for Django: sign-in that makes a real Django ``User`` (``request.user``, the admin,
groups and permissions), over the same core as the Flask and FastAPI adapters.

Needs the ``django`` extra: ``pip install 'entra-auth[django]'``. In ``settings.py``::

    INSTALLED_APPS = [..., "entra_auth.integrations.django"]
    MIDDLEWARE = [..., "django.contrib.sessions.middleware.SessionMiddleware", ...,
                  "django.contrib.auth.middleware.AuthenticationMiddleware",
                  "entra_auth.integrations.django.middleware.EntraAuthMiddleware", ...]
    AUTHENTICATION_BACKENDS = ["entra_auth.integrations.django.backend.EntraBackend",
                               "django.contrib.auth.backends.ModelBackend"]
    ENTRA_CLIENT_ID = ...  # every ENTRA_* setting, in settings.py or the environment

and ``path("", include("entra_auth.integrations.django.urls"))`` in the URLconf: ``/login``,
the redirect path (``/get_token``), ``/logout``, ``/logout/front-channel``.

The public names load on first use (PEP 562): this package is the Django app itself, whose
``__init__`` Django imports before the app registry is ready, so it imports no model here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

try:
    import django  # noqa: F401
    import jinja2  # noqa: F401
except ImportError as exc:  # pragma: no cover - shown by tests/test_packaging.py
    raise ImportError(
        f"entra_auth.integrations.django needs Django and Jinja2 ({exc.name} is missing): "
        "pip install 'entra-auth[django]'"
    ) from exc

if TYPE_CHECKING:
    from ...client.session import AnonymousUser, SignedInUser
    from .backend import EntraBackend
    from .decorators import EntraLoginRequiredMixin, entra_login_required
    from .web import EntraRequest, aget_token, get_token, graph, signed_in_user

_EXPORTS = {
    "AnonymousUser": "...client.session",
    "SignedInUser": "...client.session",
    "EntraBackend": ".backend",
    "EntraLoginRequiredMixin": ".decorators",
    "entra_login_required": ".decorators",
    "EntraRequest": ".web",
    "aget_token": ".web",
    "get_token": ".web",
    "graph": ".web",
    "signed_in_user": ".web",
}

__all__ = [
    "AnonymousUser",
    "EntraBackend",
    "EntraLoginRequiredMixin",
    "EntraRequest",
    "SignedInUser",
    "aget_token",
    "entra_login_required",
    "get_token",
    "graph",
    "signed_in_user",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
