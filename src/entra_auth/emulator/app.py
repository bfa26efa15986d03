"""The local Entra ID as one Flask app: the endpoint blueprints, and what applies to all of them.

Flask serves the emulator because it is already a dependency and gives templates, sessions and
routing for free; the emulator is an application, not part of the framework-free core.

Two listeners share this app: HTTPS for the back channel (discovery, JWKS, token, Graph, admin),
and plain ``http://localhost`` for the pages a browser sees (authorize, sign-in, consent,
logout), so that a newcomer's browser shows no certificate warning. The discovery document
advertises each endpoint on its listener; the browser listener serves nothing else.

This module only assembles: the endpoints are in ``endpoints/``, the grants in ``grants.py``,
the faults in ``faults.py``. Here are the rules every request follows: which listener serves
what, the security headers, and errors answered in Entra's shape (never a 500 page).
"""

from __future__ import annotations

import logging
import re
import secrets

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .context import EmulatorContext, current
from .endpoints import (
    admin,
    authorize,
    discovery,
    graph,
    home,
    issuers,
    logout,
    managed_identity,
    token,
)
from .endpoints.common import (
    PageError,
    client_request_id,
    error_body,
    error_page,
    is_page_request,
    json_response,
    start_request,
    trace_id,
)
from .minting import Urls
from .oauth_errors import AadError
from .state import EmulatorState

log = logging.getLogger("entra_auth.emulator")

# The endpoints of login.microsoftonline.com the emulator stands in for: their answers carry
# Entra's headers. (Graph answers with Graph's own; the control API is the emulator's.)
ENTRA_BLUEPRINTS = frozenset({"discovery", "authorize", "token", "logout"})
# Entra names the front end that answered (``x-ms-ests-server``: build and region, which
# clients log); the emulator says what it is in the same shape.
ESTS_SERVER = "2.1.0.0 - LOCAL entra-auth emulator"
# Read from a browser by a single-page app: the token endpoint (codes and refresh tokens of
# SPA redirect URIs), discovery and the key set. Entra answers them with CORS for any origin.
CORS_BLUEPRINTS = frozenset({"discovery", "token"})
# A preflight's Access-Control-Request-Headers: header names (RFC 9110 tokens), comma-separated.
_NAME = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_HEADER_NAMES = re.compile(rf"{_NAME}(?:[ \t]*,[ \t]*{_NAME})*")

BLUEPRINTS = (
    discovery.blueprint,
    authorize.blueprint,
    token.blueprint,
    logout.blueprint,
    home.blueprint,
    graph.blueprint,
    admin.blueprint,
    managed_identity.blueprint,  # IMDS's and App Service's token endpoints
    issuers.blueprint,  # stand-in token issuers, for federated credentials
)


def create_app(state: EmulatorState, urls: Urls, *, identity_header: str | None = None) -> Flask:
    """The emulator's Flask app, serving ``state`` at ``urls``; ``identity_header`` is the
    secret App Service's managed-identity endpoint requires (none: it refuses every request)."""
    # Named after this module so that Flask finds the templates next to it.
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),
        SESSION_COOKIE_NAME="entra_emulator_sso",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    EmulatorContext.create(state, urls).install(app)
    state.faults.install(app)
    managed_identity.install(app, identity_header)
    app.before_request(start_request)  # first: every answer, refusals too, has its ids
    app.before_request(_browser_listener_serves_only_pages)
    app.after_request(_headers)
    app.register_error_handler(AadError, _aad_error)
    app.register_error_handler(PageError, _page_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app


def _browser_listener_serves_only_pages() -> Response | None:
    if request.environ.get("wsgi.url_scheme") == "http" and not is_page_request():
        https_base = current().urls.https_base
        return json_response(
            {
                "error": "not_found",
                "error_description": "This is the local Entra ID's browser port: it serves "
                f"sign-in pages only. Use {https_base} for the back channel.",
            },
            404,
        )
    return None


def _headers(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.blueprint in ENTRA_BLUEPRINTS:
        _entra_headers(response)
    if response.mimetype == "text/html":
        # A page that frames other sites (sign-out, for front-channel logout) sets its own
        # policy naming exactly those frames; every other page gets this one.
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
            "form-action *; frame-ancestors 'none'",
        )
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _entra_headers(response: Response) -> None:
    """What Entra's answers carry that clients read: ``x-ms-request-id`` (the trace id, the
    "Trace ID" of an error), ``x-ms-ests-server``, the client's ``client-request-id`` echoed
    (the "Correlation ID"), JSON as ``application/json; charset=utf-8``; at the token endpoint
    ``x-ms-clitelem`` (server telemetry, for MSAL's ``x-client-current-telemetry``) and the
    caching headers of RFC 6749 §5.1."""
    response.headers["x-ms-request-id"] = trace_id()
    response.headers["x-ms-ests-server"] = ESTS_SERVER
    echoed = client_request_id()
    if echoed:
        response.headers["client-request-id"] = echoed
    if response.mimetype == "application/json":
        response.headers["Content-Type"] = "application/json; charset=utf-8"
    if request.blueprint in CORS_BLUEPRINTS:
        response.headers["Access-Control-Allow-Origin"] = "*"
        if request.method == "OPTIONS":
            _preflight(response)
    if request.blueprint == "token":
        response.headers["Cache-Control"] = "no-store, no-cache"
        response.headers["Pragma"] = "no-cache"
        if request.headers.get("x-client-current-telemetry") and not response.is_streamed:
            answer = response.get_json(silent=True)
            codes = answer.get("error_codes") if isinstance(answer, dict) else None
            code = codes[0] if isinstance(codes, list) and codes else 0
            response.headers["x-ms-clitelem"] = f"1,{code if isinstance(code, int) else 0},0,,"


def _preflight(response: Response) -> None:
    """The answer to a CORS preflight: the methods of the route and the headers asked for.

    A page's request with a header the Fetch standard does not list as safe (Swagger UI sends
    ``X-Requested-With``, older MSAL.js its ``x-client-*`` headers) is preceded by ``OPTIONS``;
    Entra lets it through, so a SPA's code is redeemed whatever headers its library adds."""
    response.headers["Access-Control-Allow-Methods"] = response.headers.get("Allow", "POST")
    asked = request.headers.get("Access-Control-Request-Headers", "")
    if _HEADER_NAMES.fullmatch(asked):
        response.headers["Access-Control-Allow-Headers"] = asked
    response.headers["Access-Control-Max-Age"] = "86400"


def _aad_error(error: AadError) -> Response:
    return json_response(error_body(error), error.status)


def _page_error(exc: PageError) -> tuple[str, int]:
    return error_page(exc.error), 400


def _http_error(exc: HTTPException) -> Response | tuple[str, int]:
    status = exc.code or 400
    if status == 400 or status == 413:
        error = AadError(9002313, detail=exc.description or "")
        if is_page_request():
            return error_page(error), 400
        return json_response(error_body(error), 400)
    return json_response(
        {"error": exc.name.lower().replace(" ", "_"), "error_description": exc.description},
        status,
    )


def _unexpected(exc: Exception) -> Response | tuple[str, int]:
    # A request the emulator could not handle still gets an Entra-shaped answer, never a 500
    # page; the traceback goes to the emulator's log for whoever is debugging it.
    log.exception("the local Entra ID failed on %s %s", request.method, request.path)
    error = AadError(9002313, detail="The local Entra ID could not process the request.")
    if is_page_request():
        return error_page(error), 400
    return json_response(error_body(error), 400)
