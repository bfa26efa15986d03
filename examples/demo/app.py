"""The tutorial's app, done right.

Today: its API, ``/secure-data``, protected by entra-auth's bearer-token check. The web sign-in
(home page, profile from Graph, sign-out) joins it with the web sign-in issue.

Configuration comes from ``ENTRA_*`` variables (or the ``config`` mapping): ``ENTRA_AUTHORITY``,
``ENTRA_API_AUDIENCE`` (the API's client id / App ID URI), ``ENTRA_CA_BUNDLE`` for the local
Entra ID's certificate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, g

from entra_auth.integrations.flask import ApiProtector

API_SCOPE = "access_as_user"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(config or {})
    api = ApiProtector(app)

    @app.get("/secure-data")
    @api.require_token(scopes=[API_SCOPE])
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
