"""The demo's pages on Django: the Flask demo's routes and templates (``examples/demo``), with
``@entra_login_required``, ``graph(request)`` and ``DownstreamApi.for_user(request.entra)``.

``/admin`` is Django's own admin here: Adele holds the web app's app role ``Admin``, which
``ENTRA_STAFF_ROLES`` makes staff (and ``ENTRA_ROLE_GROUPS`` the group "Demo admins", which may
view the users); Megan gets the 403 page.
"""

from __future__ import annotations

import functools
import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import get_template

from entra_auth import DownstreamApi
from entra_auth.errors import (
    DownstreamApiError,
    DownstreamApiUnavailableError,
    GraphError,
    GraphUnavailableError,
)
from entra_auth.integrations.django import entra_login_required, graph
from entra_auth.integrations.django.conf import get_auth
from entra_auth.integrations.django.web import current_user, signed_out
from examples.demo.app import API_SCOPE_NAME, OnBehalf, claim_rows

PAGES = "jinja2"  # the template backend of the demo's pages (settings.TEMPLATES)


def render(
    request: HttpRequest, template: str, http_status: int = 200, **context: Any
) -> HttpResponse:
    """A demo page: the Flask templates' context (``current_user``, ``request.endpoint`` for
    the menu, the signed-out notice)."""
    match = request.resolver_match
    shown = SimpleNamespace(endpoint=match.url_name if match else None, path=request.path)
    html = get_template(template, using=PAGES).render(
        {
            "request": shown,
            "current_user": current_user(request),
            "entra_signed_out": signed_out(request),
            **context,
        }
    )
    return HttpResponse(html, status=http_status)


def api_scope_name() -> str:
    """The scope /secure-data requires: that of ``DEMO_API_SCOPE``, else access_as_user."""
    import os

    return (os.environ.get("DEMO_API_SCOPE") or API_SCOPE_NAME).rsplit("/", 1)[-1]


@functools.cache
def api_scope() -> str:
    """What /call-api asks for: ``DEMO_API_SCOPE``, else the API's access_as_user scope."""
    import os

    config = get_auth().config
    audience = next((a for a in config.audiences if a.startswith("api://")), None)
    return os.environ.get("DEMO_API_SCOPE") or f"{audience}/{API_SCOPE_NAME}"


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


@entra_login_required
def profile(request: HttpRequest) -> HttpResponse:
    try:
        me = graph(request).me()
    except GraphUnavailableError:
        raise  # the middleware answers it: 503 with Retry-After, the session kept
    except GraphError as exc:
        return render(request, "problem.html", http_status=502, error=exc)
    return render(request, "profile.html", me=me)


@entra_login_required
def claims(request: HttpRequest) -> HttpResponse:
    return render(request, "claims.html", claims=claim_rows(request.entra.claims, time.time()))  # type: ignore[attr-defined]


@entra_login_required
def call_api(request: HttpRequest) -> HttpResponse:
    # As the user: consent the first time, then silent; a claims challenge from the API
    # (CAE, an authentication context) takes the user through the sign-in page once.
    callback = urlsplit(get_auth().config.callback_url)
    api = DownstreamApi(
        f"{callback.scheme}://{callback.netloc}", scopes=[api_scope()], name="the demo API"
    )
    try:
        body = api.for_user(request.entra).get("/secure-data")  # type: ignore[attr-defined]
    except DownstreamApiUnavailableError as exc:
        return render(request, "problem.html", http_status=502, error=exc)
    except DownstreamApiError as exc:  # the API's refusal, shown as it answered
        shown = exc.body if isinstance(exc.body, dict) else {"error_description": exc.message}
        return render(request, "api_result.html", status=exc.status, body=shown)
    return render(request, "api_result.html", status=200, body=body)


@functools.cache
def on_behalf() -> OnBehalf:
    """What /secure-data calls on its caller's behalf (Graph), as the Flask demo."""
    import os

    auth = get_auth()
    return OnBehalf(os.environ, auth.config, lambda: auth.graph_url)


def secure_data(request: HttpRequest) -> JsonResponse:
    """The protected API (``urls.py`` wraps it in ``require_token``): who called, and Graph
    called on their behalf."""
    principal = request.principal  # type: ignore[attr-defined]
    return JsonResponse(
        {
            "message": f"Hello {principal.name or 'there'}, this data is protected.",
            "oid": principal.oid,
            "tid": principal.tid,
            "scopes": sorted(principal.scopes),
            "roles": sorted(principal.roles),
            **on_behalf().call(principal),
        }
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "not_found.html", http_status=404)
