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
import secrets

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .context import EmulatorContext, current
from .endpoints import admin, authorize, discovery, graph, home, logout, token
from .endpoints.common import PageError, error_page, is_page_request, json_response
from .minting import Urls
from .oauth_errors import AadError
from .state import EmulatorState

log = logging.getLogger("entra_auth.emulator")

BLUEPRINTS = (
    discovery.blueprint,
    authorize.blueprint,
    token.blueprint,
    logout.blueprint,
    home.blueprint,
    graph.blueprint,
    admin.blueprint,
)


def create_app(state: EmulatorState, urls: Urls) -> Flask:
    """The emulator's Flask app, serving ``state`` at ``urls``."""
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


def _aad_error(error: AadError) -> Response:
    return json_response(error.body(request.headers.get("client-request-id")), error.status)


def _page_error(exc: PageError) -> tuple[str, int]:
    return error_page(exc.error), 400


def _http_error(exc: HTTPException) -> Response | tuple[str, int]:
    status = exc.code or 400
    if status == 400 or status == 413:
        error = AadError(9002313, detail=exc.description or "")
        if is_page_request():
            return error_page(error), 400
        return json_response(error.body(), 400)
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
    return json_response(error.body(), 400)
