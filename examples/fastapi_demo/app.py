"""The demo API on FastAPI: the Flask demo's ``/secure-data``, an endpoint for daemons, an
authenticated WebSocket echo, and Swagger UI at ``/docs`` that signs in with Entra ID, offline.

    uvicorn examples.fastapi_demo.app:app      # configured by the environment
    make demo-fastapi                          # with the local Entra ID (run.py)

Configuration: the ``ENTRA_*`` variables of the Flask demo (``ENTRA_AUTHORITY``,
``ENTRA_CLIENT_ID``, ``ENTRA_API_AUDIENCE``, ``ENTRA_CA_BUNDLE`` …: the API's audiences decide
its App ID URI), and two of the demo's own: ``DEMO_SWAGGER_CLIENT_ID``, the app registration
Swagger UI signs in as (a single-page application whose redirect URI is
``http://localhost:8000/docs/oauth2-redirect``; default ``ENTRA_CLIENT_ID``), and
``DEMO_API_SCOPE`` as in the Flask demo (default ``api://<API>/access_as_user``).
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at runtime,
# and theirs name the protector made in create_app, which a string could not be resolved to.
import asyncio
import os
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Security, WebSocket, WebSocketDisconnect

from entra_auth.config import APP_CONFIG, ENVIRONMENT, EntraConfig
from entra_auth.discovery import Discovery
from entra_auth.integrations.fastapi import ApiProtector, entra_openapi
from entra_auth.tokens import Principal
from examples.demo.app import OnBehalf

API_SCOPE_NAME = "access_as_user"
APP_ROLE = "Data.Read.All"  # the demo API's app role that daemons (and Adele) hold

DESCRIPTION = """\
The entra-auth demo API. **Authorize** signs you in with Microsoft Entra ID (the local one
under `make demo-fastapi`: Adele or Megan, password `demo`), then **Try it out** on an operation
sends its access token.

- `GET /secure-data`: a user's token with the scope `access_as_user`; the answer holds the
  caller's Microsoft Graph profile, which the API gets on their behalf (on-behalf-of).
- `GET /all-data`: a token with the app role `Data.Read.All`: a daemon's (client credentials),
  or a user's who was assigned it (Adele is, Megan is not).
- `WS /ws/echo`: echoes each text message, to a client that sent a valid token on connecting.
"""


def create_app(config: Mapping[str, Any] | None = None) -> FastAPI:
    """The demo API; ``config`` (``ENTRA_*`` and ``DEMO_*`` keys) wins over the environment."""
    settings: dict[str, Any] = {**os.environ, **(config or {})}
    sources = (APP_CONFIG, ENVIRONMENT) if config else (ENVIRONMENT,)
    entra = EntraConfig.from_mapping(settings, sources=sources, require=("api_audiences",))
    api = ApiProtector(entra)
    # The API's scope as clients ask for it: api://<API app id>/access_as_user.
    audience = next((a for a in entra.audiences if a.startswith("api://")), None)
    api_scope = str(settings.get("DEMO_API_SCOPE") or "") or (
        f"{audience}/{API_SCOPE_NAME}" if audience else f"api://{entra.client_id}/{API_SCOPE_NAME}"
    )
    required_scope = api_scope.rsplit("/", 1)[-1]  # what the token's scp holds

    app = FastAPI(title="entra-auth demo API", version="1.0", description=DESCRIPTION)
    api.init_app(app)  # RFC 6750 answers; the signing keys loaded at startup
    on_behalf = OnBehalf(settings, entra, lambda: "")  # Graph (and API B) as the caller

    async def graph_url() -> str | None:
        identity = on_behalf.identity
        if identity is None or on_behalf.ready:  # the URL is read once, before the first call
            return None
        return identity.graph_url or await asyncio.to_thread(
            lambda: Discovery(identity).metadata.graph_url
        )

    @app.get("/secure-data", summary="Your data (scope access_as_user)")
    async def secure_data(
        principal: Annotated[Principal, Security(api, scopes=[required_scope])],
    ) -> dict[str, Any]:
        """What the Flask demo's `/secure-data` answers: who the token speaks for."""
        return {
            "message": f"Hello {principal.name or 'there'}, this data is protected.",
            "oid": principal.oid,
            "tid": principal.tid,
            "scopes": sorted(principal.scopes),
            "roles": sorted(principal.roles),
            # Graph (and API B), called on the caller's behalf (on-behalf-of)
            **await on_behalf.call_async(principal, await graph_url()),
        }

    @app.get("/all-data", summary="Every record (app role Data.Read.All)")
    async def all_data(
        principal: Annotated[Principal, Depends(api.require(roles=[APP_ROLE]))],
    ) -> dict[str, Any]:
        """For daemons: a token carrying the app role `Data.Read.All`."""
        who = "A daemon" if principal.app_only else (principal.name or "A user")
        return {
            "message": f"{who} may read all the data (app role {APP_ROLE}).",
            "app_only": principal.app_only,
            "client_id": principal.client_id,
            "roles": sorted(principal.roles),
        }

    @app.websocket("/ws/echo")
    async def echo(
        websocket: WebSocket,
        principal: Annotated[Principal, Security(api, scopes=[required_scope])],
    ) -> None:
        """Echoes each text message, naming who sent it."""
        await websocket.accept()
        try:
            while True:
                text = await websocket.receive_text()
                await websocket.send_json({"from": principal.name, "echo": text})
        except WebSocketDisconnect:
            return

    if settings.get("ENTRA_CLIENT_SECRET"):  # a web app's credentials: its users sign in too
        from .web import add_sign_in

        add_sign_in(app, settings, entra, api_scope)

    entra_openapi(
        app,
        entra,
        scopes={api_scope: "Call the demo API as you"},
        client_id=str(settings.get("DEMO_SWAGGER_CLIENT_ID") or "") or entra.client_id,
        scheme=api,
    )
    return app


def __getattr__(name: str) -> Any:
    # ``app`` for ASGI servers (uvicorn examples.fastapi_demo.app:app), built on first use so
    # that importing this module needs no configuration.
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
