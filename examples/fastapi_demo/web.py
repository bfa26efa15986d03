"""The Flask demo's pages on the FastAPI demo: sign in, the profile from Microsoft Graph, the
ID token's claims, a call to the protected API, the Admin page, sign out. The same routes
(``/login``, the redirect path ``/get_token``, ``/logout``, ``/profile`` …), the same
templates (``examples/demo/templates``) and the same ``ENTRA_*`` settings, so one walk-through
serves both demos.

No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations at runtime,
and theirs name the ``EntraAuth`` made in ``add_sign_in``.
"""

import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from entra_auth import DownstreamApi
from entra_auth.config import EntraConfig
from entra_auth.errors import (
    DownstreamApiError,
    DownstreamApiUnavailableError,
    GraphError,
    GraphUnavailableError,
)
from entra_auth.integrations.fastapi import EntraAuth, SignedInUser
from examples.demo.app import claim_rows

DEMO = Path(__file__).resolve().parents[1] / "demo"


def add_sign_in(
    app: FastAPI, settings: Mapping[str, Any], entra: EntraConfig, api_scope: str
) -> EntraAuth:
    """Sign-in and the demo's pages on ``app``; ``api_scope`` is what ``/call-api`` asks for."""
    auth = EntraAuth(
        entra,
        secret_key=str(settings.get("SECRET_KEY") or secrets.token_hex(32)),
        templates=DEMO / "templates",  # the demo's own 403 page, as on Flask
    )
    auth.init_app(app, {k: str(v) for k, v in settings.items() if isinstance(v, str)})
    jinja = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(DEMO / "templates")), autoescape=True
    )
    app.mount("/static", StaticFiles(directory=DEMO / "static"), name="static")
    callback_origin = entra.callback_url.rsplit("/", 1)[0]
    demo_api = DownstreamApi(callback_origin, scopes=[api_scope], name="the demo API")

    def url_for(name: str, **values: Any) -> str:
        """The Flask demo templates' ``url_for``, for the routes they name."""
        if name == "static":
            return f"/static/{values['filename']}"
        path = {"entra_auth.login": auth.login_path, "entra_auth.logout": auth.logout_path}[name]
        return f"{path}?{urlencode(values)}" if values else path

    auth.jinja.globals["url_for"] = url_for  # the demo's 403 page is inside its frame

    async def render(
        request: Request, template: str, http_status: int = 200, **context: Any
    ) -> Response:
        user = await auth.current_user(request)
        route = request.scope.get("route")
        shown = SimpleNamespace(endpoint=getattr(route, "name", None), path=request.url.path)
        html = jinja.get_template(template).render(
            url_for=url_for,
            request=shown,
            current_user=user,
            entra_signed_out=auth.signed_out(request),
            **context,
        )
        return HTMLResponse(html, http_status)  # a signed-in user's: no-store (the middleware)

    signed_in = Annotated[SignedInUser, Depends(auth.login_required())]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home(request: Request) -> Response:
        return await render(request, "home.html")

    @app.get("/profile", response_class=HTMLResponse, include_in_schema=False)
    async def profile(request: Request, user: signed_in) -> Response:
        try:
            me = await auth.graph_get(request, "/v1.0/me")
        except GraphUnavailableError:
            raise  # EntraAuth answers it: 503 with Retry-After, the session kept
        except GraphError as exc:
            return await render(request, "problem.html", http_status=502, error=exc)
        return await render(request, "profile.html", me=me)

    @app.get("/claims", response_class=HTMLResponse, include_in_schema=False)
    async def claims(request: Request, user: signed_in) -> Response:
        return await render(request, "claims.html", claims=claim_rows(user.claims, time.time()))

    @app.get("/call-api", response_class=HTMLResponse, include_in_schema=False)
    async def call_api(request: Request, user: signed_in) -> Response:
        # As the user: consent the first time, then silent; a claims challenge from the API
        # (CAE, an authentication context) takes the user through the sign-in page once.
        try:
            body = await demo_api.for_user(auth.user_tokens(request)).get_async("/secure-data")
        except DownstreamApiUnavailableError as exc:
            return await render(request, "problem.html", http_status=502, error=exc)
        except DownstreamApiError as exc:  # the API's refusal, shown as it answered
            shown = exc.body if isinstance(exc.body, dict) else {"error_description": exc.message}
            return await render(request, "api_result.html", status=exc.status, body=shown)
        return await render(request, "api_result.html", status=200, body=body)

    @app.get("/admin", response_class=HTMLResponse, include_in_schema=False)
    async def admin(
        request: Request,
        user: Annotated[SignedInUser, Depends(auth.login_required(roles=["Admin"]))],
    ) -> Response:
        return await render(request, "admin.html", roles=user.claims.get("roles") or [])

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(DEMO / "static" / "favicon.svg", media_type="image/svg+xml")

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
        """A browser's unknown page is the demo's own (its layout, nav and all); API clients
        keep FastAPI's JSON answer."""
        if exc.status_code == 404 and "text/html" in request.headers.get("accept", ""):
            return await render(request, "not_found.html", http_status=404)
        return await http_exception_handler(request, exc)

    return auth
