"""The Jinja environment of the demo's pages (``examples/demo/templates``, written for Flask):
their ``url_for`` for the routes they name, as the FastAPI demo shims it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import jinja2
from django.templatetags.static import static
from django.urls import reverse

ROUTES = {"entra_auth.login": "entra_auth:login", "entra_auth.logout": "entra_auth:logout"}


def url_for(name: str, **values: Any) -> str:
    """Flask's ``url_for`` for the names the templates use: ``static`` and the sign-in routes."""
    if name == "static":
        return static(values["filename"])
    path = reverse(ROUTES[name])
    return f"{path}?{urlencode(values, safe='/')}" if values else path


def environment(**options: Any) -> jinja2.Environment:
    env = jinja2.Environment(**options)  # noqa: S701 - Django passes autoescape=True
    env.globals["url_for"] = url_for
    return env
