"""The tutorial's app, done right: sign in with Entra ID, see your profile from Microsoft Graph
and the verified ID-token claims, call the app's own protected API, open a page only the app role
``Admin`` may see, sign out.

Configuration: ``ENTRA_*`` variables (or the ``config`` mapping) and ``SECRET_KEY``. ``make demo``
runs it against the local Entra ID (see ``run.py``); with ``ENTRA_AUTHORITY`` and friends set
it runs against a real tenant unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, g, render_template
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from entra_auth import DownstreamApi, EntraConfig, Principal
from entra_auth.errors import (
    DownstreamApiError,
    DownstreamApiUnavailableError,
    GraphError,
    GraphUnavailableError,
)
from entra_auth.integrations.flask import ApiProtector, EntraAuth, current_user

API_SCOPE_NAME = "access_as_user"

# Claims whose value is a NumericDate (seconds since 1970-01-01 UTC): RFC 7519 and OpenID Connect.
NUMERIC_DATE_CLAIMS = frozenset({"iat", "nbf", "exp", "auth_time", "updated_at"})
# A word on the claims a newcomer meets in an Entra ID token.
CLAIM_MEANINGS = {
    "aud": "Audience: this app's client id",
    "iss": "Issuer: the tenant that signed the token",
    "iat": "Issued at",
    "nbf": "Not valid before",
    "exp": "Expires",
    "auth_time": "When you signed in",
    "name": "Display name",
    "preferred_username": "Sign-in name (for display, not identity)",
    "email": "Email (for display, not identity)",
    "oid": "Your object id in the tenant",
    "tid": "The tenant's id",
    "sub": "Subject: your id for this app only",
    "sid": "Sign-in session id",
    "roles": "This app's roles given to you",
    "idp": "Your home identity provider (guests)",
    "ver": "Token format version",
}


@dataclass(frozen=True)
class When:
    iso: str  # for <time datetime=…>
    text: str  # "2026-11-25 14:03 UTC (in 52 min)"


@dataclass(frozen=True)
class ClaimRow:
    name: str
    value: Any
    what: str | None
    text: str  # the value as shown, when it is not a date
    when: When | None  # set for NumericDate claims


def ago(seconds: float) -> str:
    """``seconds`` from now in words: "in 52 min", "3 min ago", "in 1 h 5 min", "2 days ago"."""
    past, left = seconds < 0, int(abs(seconds))
    if left < 5:
        return "just now"
    if left < 60:
        words = f"{left} s"
    elif left < 3600:
        words = f"{left // 60} min"
    elif left < 48 * 3600:
        hours, minutes = divmod(left // 60, 60)
        words = f"{hours} h {minutes} min" if minutes else f"{hours} h"
    else:
        words = f"{left // 86400} days"
    return f"{words} ago" if past else f"in {words}"


def numeric_date(value: Any, now: float) -> When | None:
    """A NumericDate shown as a UTC date and how far it is from ``now``; None if not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        moment = datetime.fromtimestamp(value, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return When(
        iso=moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
        text=f"{moment:%Y-%m-%d %H:%M} UTC ({ago(value - now)})",
    )


def claim_rows(claims: Mapping[str, Any], now: float) -> list[ClaimRow]:
    rows = []
    for name, value in claims.items():
        when = numeric_date(value, now) if name in NUMERIC_DATE_CLAIMS else None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            text = ", ".join(value)
        elif isinstance(value, (dict, list)):
            text = json.dumps(value)
        else:
            text = str(value)
        rows.append(ClaimRow(name, value, CLAIM_MEANINGS.get(name), text, when))
    return rows


def api_identity(settings: Mapping[str, Any], web: EntraConfig) -> EntraConfig | None:
    """The demo API's own app registration, for calling Microsoft Graph on behalf of its
    caller (``DEMO_API_CLIENT_ID`` and ``DEMO_API_CLIENT_SECRET``: the demo serves the web app
    and the API from one process, each its own registration); None when they are not set.

    It declares CP1 (Continuous Access Evaluation): the downstream calls handle Graph's claims
    challenges, and pass them to the API's caller when the user must sign in again."""
    client_id = settings.get("DEMO_API_CLIENT_ID") or os.environ.get("DEMO_API_CLIENT_ID")
    secret = settings.get("DEMO_API_CLIENT_SECRET") or os.environ.get("DEMO_API_CLIENT_SECRET")
    if not client_id or not secret:
        return None
    return dataclasses.replace(
        web,
        client_id=str(client_id),
        client_secret=str(secret),
        client_certificate=None,
        client_certificate_base64=None,
        client_assertion_file=None,
        client_assertion=None,
        redirect_uri=None,
        client_capabilities=("CP1",),
    )


class OnBehalf:
    """What /secure-data calls on its caller's behalf (on-behalf-of): Microsoft Graph's
    ``/me``, and a second API's ``/secure-data`` when ``DEMO_DOWNSTREAM_URL`` and
    ``DEMO_DOWNSTREAM_SCOPE`` name one. A claims challenge (CAE, an authentication context) or
    missing consent is not caught here: the API's protector answers it to the caller (a 401 or
    403 it can act on). Built on first use: the Graph URL comes from the provider's metadata."""

    def __init__(self, settings: Mapping[str, Any], web: EntraConfig, graph_url: Callable[[], str]):
        self.identity = api_identity(settings, web)
        self._graph_url = graph_url
        self._downstream = (
            str(settings.get("DEMO_DOWNSTREAM_URL") or ""),
            str(settings.get("DEMO_DOWNSTREAM_SCOPE") or ""),
        )
        self._apis: dict[str, tuple[DownstreamApi, str]] = {}

    @property
    def ready(self) -> bool:
        return bool(self._apis)

    def apis(self, graph_url: str | None = None) -> dict[str, tuple[DownstreamApi, str]]:
        """Each downstream API by the name /secure-data shows it under, with the path called."""
        if not self._apis and self.identity is not None:
            url = graph_url or self._graph_url()
            graph = DownstreamApi.graph(base_url=f"{url}/v1.0", config=self.identity)
            self._apis["graph"] = (graph, "/me")
            base, scope = self._downstream
            if base and scope:
                second = DownstreamApi(base, scopes=[scope], name="API B", config=self.identity)
                self._apis["api_b"] = (second, "/secure-data")
        return self._apis

    def call(self, caller: Principal) -> dict[str, Any]:
        if self.identity is None:
            return {"graph": self.skipped()}
        answers: dict[str, Any] = {}
        for name, (api, path) in self.apis().items():
            try:
                answers[name] = shown(name, api.for_user(caller).get(path))
            except DownstreamApiUnavailableError:
                raise  # the protector answers 503 with Retry-After
            except DownstreamApiError as exc:
                answers[name] = {"error": exc.error_code or exc.code, "status": exc.status}
        return answers

    async def call_async(self, caller: Principal, graph_url: str | None = None) -> dict[str, Any]:
        if self.identity is None:
            return {"graph": self.skipped()}
        answers: dict[str, Any] = {}
        for name, (api, path) in self.apis(graph_url).items():
            try:
                answers[name] = shown(name, await api.for_user(caller).get_async(path))
            except DownstreamApiUnavailableError:
                raise
            except DownstreamApiError as exc:
                answers[name] = {"error": exc.error_code or exc.code, "status": exc.status}
        return answers

    @staticmethod
    def skipped() -> dict[str, str]:
        return {
            "skipped": "Set DEMO_API_CLIENT_ID and DEMO_API_CLIENT_SECRET (the API's own app "
            "registration) to call Graph on behalf of the caller."
        }


def shown(name: str, body: Any) -> Any:
    """What /secure-data shows of a downstream answer: Graph's profile in a few fields."""
    if name == "graph" and isinstance(body, dict):
        return {k: body.get(k) for k in ("displayName", "mail", "jobTitle", "id")}
    return body


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
    # What /secure-data requires: the scope the web app asks for (DEMO_API_SCOPE points the demo
    # at another API, e.g. one on the portal's default v1 tokens, with its own scope name).
    required_scope = api_scope.rsplit("/", 1)[-1]
    callback = urlsplit(auth.config.callback_url)
    app_origin = f"{callback.scheme}://{callback.netloc}"
    # The web app calls the API as the signed-in user; the API calls Graph on their behalf.
    demo_api = DownstreamApi(app_origin, scopes=[api_scope], name="the demo API")
    on_behalf = OnBehalf(app.config, auth.config, lambda: auth.graph_url)

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
        rows = claim_rows(current_user.claims if current_user else {}, time.time())
        return render_template("claims.html", claims=rows)

    @app.get("/call-api")
    @auth.login_required
    def call_api() -> str | tuple[str, int]:
        # As the user: consent the first time, then silent; a claims challenge from the API
        # (CAE, an authentication context) takes the user through the sign-in page once.
        try:
            body = demo_api.for_user(auth).get("/secure-data")
        except DownstreamApiUnavailableError as exc:
            return render_template("problem.html", error=exc), 502
        except DownstreamApiError as exc:  # the API's refusal, shown as it answered
            shown = exc.body if isinstance(exc.body, dict) else {"error_description": exc.message}
            return render_template("api_result.html", status=exc.status, body=shown)
        return render_template("api_result.html", status=200, body=body)

    @app.get("/admin")
    @auth.login_required(roles=["Admin"])  # signed in without the app role Admin: a 403 page
    def admin() -> str:
        roles = current_user.claims.get("roles") if current_user else None
        return render_template("admin.html", roles=roles or [])

    @app.get("/secure-data")
    @api.require_token(scopes=[required_scope])
    def secure_data() -> dict[str, Any]:
        principal = g.principal
        return {
            "message": f"Hello {principal.name or 'there'}, this data is protected.",
            "oid": principal.oid,
            "tid": principal.tid,
            "scopes": sorted(principal.scopes),
            "roles": sorted(principal.roles),
            **on_behalf.call(principal),  # Graph (and API B), called on the caller's behalf
        }

    @app.get("/favicon.ico")  # for pages without the <link rel="icon"> (and for tools)
    def favicon() -> Response:
        return app.send_static_file("favicon.svg")

    @app.errorhandler(NotFound)
    def not_found(error: NotFound) -> tuple[str, int]:
        return render_template("not_found.html"), 404

    return app


def __getattr__(name: str) -> Any:
    # ``app`` for WSGI servers (gunicorn examples.demo.app:app), built on first use so that
    # importing this module needs no configuration.
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
