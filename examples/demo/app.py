"""The tutorial's app, done right: sign in with Entra ID, see your profile from Microsoft Graph
and the verified ID-token claims, call the app's own protected API, sign out.

Configuration: ``ENTRA_*`` variables (or the ``config`` mapping) and ``SECRET_KEY``. ``make demo``
runs it against the local Entra ID (see ``run.py``); with ``ENTRA_AUTHORITY`` and friends set
it runs against a real tenant unchanged.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask, g, render_template

from entra_auth.errors import EntraAuthError, GraphError, GraphUnavailableError
from entra_auth.integrations.flask import ApiProtector, EntraAuth

API_SCOPE_NAME = "access_as_user"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ.get("FLASK_SECRET_KEY") or secrets.token_hex(32)
    app.config.update(config or {})
    auth = EntraAuth(app)
    api = ApiProtector(app)
    # The API's scope, as the web app asks for it: api://<API app id>/access_as_user.
    audience = next((a for a in auth.config.audiences if a.startswith("api://")), None)
    api_scope = app.config.get("DEMO_API_SCOPE") or (
        f"{audience}/{API_SCOPE_NAME}"
        if audience
        else f"api://{auth.config.client_id}/{API_SCOPE_NAME}"
    )
    callback = urlsplit(auth.config.callback_url)
    app_origin = f"{callback.scheme}://{callback.netloc}"

    @app.get("/")
    def home() -> str:
        return render_template("home.html")

    @app.get("/profile")
    @auth.login_required
    def profile() -> str | tuple[str, int]:
        try:
            me = auth.graph().me()
        except GraphUnavailableError:
            raise  # EntraAuth answers it: 503 with Retry-After, the session kept
        except GraphError as exc:
            return render_template("problem.html", error=exc), 502
        return render_template("profile.html", me=me)

    @app.get("/claims")
    @auth.login_required
    def claims() -> str:
        return render_template("claims.html")

    @app.get("/call-api")
    @auth.login_required
    def call_api() -> str | tuple[str, int]:
        token = auth.get_token([api_scope])  # consent is asked for the first time, then silent
        try:
            answer = requests.get(
                f"{app_origin}/secure-data",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
        except requests.RequestException as exc:
            problem = EntraAuthError(f"The API could not be reached ({type(exc).__name__}).")
            return render_template("problem.html", error=problem), 502
        return render_template("api_result.html", status=answer.status_code, body=answer.json())

    @app.get("/secure-data")
    @api.require_token(scopes=[API_SCOPE_NAME])
    def secure_data() -> dict[str, Any]:
        principal = g.principal
        return {
            "message": f"Hello {principal.name or 'there'}, this data is protected.",
            "oid": principal.oid,
            "tid": principal.tid,
            "scopes": sorted(principal.scopes),
            "roles": sorted(principal.roles),
        }

    return app


def __getattr__(name: str) -> Any:
    # ``app`` for WSGI servers (gunicorn examples.demo.app:app), built on first use so that
    # importing this module needs no configuration.
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
