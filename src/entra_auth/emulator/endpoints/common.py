"""What several endpoints share: the tenant of the path, parameters given once, JSON answers,
and the error page a browser sees instead of a redirect to an unchecked address.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, render_template, request
from werkzeug.datastructures import MultiDict

from ..context import current
from ..oauth_errors import AadError
from ..seed import Tenant

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


def error_page(error: AadError) -> str:
    return render_template("error.html", error=error, body=error.body())
