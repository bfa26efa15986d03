"""What several endpoints share: the tenant of the path, parameters given once, JSON answers,
the request's trace and correlation ids, the error page a browser sees instead of a redirect to
an unchecked address, and which platform (Web or single-page app) a redirect URI belongs to.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, g, has_request_context, jsonify, render_template, request
from werkzeug.datastructures import MultiDict

from ..context import current
from ..oauth_errors import AadError
from ..seed import App, Tenant

MULTI_TENANT_PATHS = ("common", "organizations")
# The blueprints whose pages a browser sees: served on the plain-http browser port, and their
# errors shown as a page rather than JSON.
PAGE_BLUEPRINTS = frozenset({"authorize", "logout", "home"})


class PageError(Exception):
    """An error shown on the emulator's own page: never a redirect to an unchecked URI."""

    def __init__(self, error: AadError):
        self.error = error


def is_page_request() -> bool:
    """Whether the current request is for one of the pages a browser sees (or Flask's static
    files, which the pages may use)."""
    return request.blueprint in PAGE_BLUEPRINTS or request.endpoint == "static"


def tenant_or_error(ref: str) -> Tenant | None:
    """The tenant of the path; None for common/organizations; AADSTS90002 for an unknown one."""
    if ref.lower() in MULTI_TENANT_PATHS:
        return None
    tenant = current().state.seed.tenant(ref)
    if tenant is None:
        raise AadError(90002, tenant=ref)
    return tenant


def single(values: MultiDict[str, str], *, page: bool = False) -> dict[str, str]:
    """Parameters given once each: a repeated one makes the request malformed (Entra's rule)."""
    repeated = [k for k in values if len(values.getlist(k)) > 1]
    if repeated:
        error = AadError(9002313, detail=f"The parameter '{repeated[0]}' appears more than once.")
        raise PageError(error) if page else error
    return {k: values[k] for k in values}


def json_response(payload: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(payload)
    response.status_code = status
    return response


def start_request() -> None:
    """Give the request Entra's two ids: the trace id (Entra's ``x-ms-request-id``, the "Trace
    ID" of its errors) and the correlation id, the client's ``client-request-id`` when that is
    a GUID (MSAL sends one with each request), else a fresh one."""
    g.trace_id = str(uuid.uuid4())
    given = request.headers.get("client-request-id", "")
    g.client_request_id = _guid(given)
    g.correlation_id = g.client_request_id or str(uuid.uuid4())


def trace_id() -> str:
    return str(g.get("trace_id") or "")


def client_request_id() -> str | None:
    """The client's own ``client-request-id`` (a GUID), to echo; None when it sent none."""
    value = g.get("client_request_id")
    return value if isinstance(value, str) else None


def error_body(error: AadError) -> dict[str, Any]:
    """``error``'s JSON with this request's trace and correlation ids and the emulator's clock."""
    if not has_request_context():
        return error.body(now=current().state.now())
    return error.body(
        trace_id=g.get("trace_id"),
        correlation_id=g.get("correlation_id"),
        now=current().state.now(),
    )


def error_page(error: AadError) -> str:
    return render_template("error.html", error=error, body=error_body(error))


def is_spa_redirect(client: App, uri: str) -> bool:
    """Whether ``uri`` is registered for ``client`` under the single-page application platform
    (Entra's ``spa.redirectUris``), where PKCE is required and codes are redeemed cross-origin."""
    return uri in client.spa_redirect_uris


def is_registered_redirect(client: App, uri: str) -> bool:
    """Whether ``uri`` is one of ``client``'s redirect URIs, Web or single-page app."""
    return uri in client.redirect_uris or uri in client.spa_redirect_uris


def _guid(value: str) -> str | None:
    """``value`` when it is a GUID in its usual 36-character form (what is echoed back)."""
    try:
        return value if len(value) == 36 and uuid.UUID(value) else None
    except ValueError:
        return None
