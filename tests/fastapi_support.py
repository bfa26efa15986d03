"""The FastAPI twin of the security catalogue's Flask API (tests/security/conftest.py ``make_api``).

``make_fastapi_api(emulator, **config)`` serves the same routes (/any, /scoped GET+POST, /role,
/either, /user-read) answering the same JSON, through a client whose answers read as Flask's test
client's do (``.json`` a property, ``get_data(as_text=True)``), so one catalogue can run against
both adapters. The client runs the app's lifespan (keys loaded at startup) until ``close()``.

No ``from __future__ import annotations`` here: FastAPI reads the endpoints' ``Annotated``
dependencies, which name the local ``api``, from their annotations at runtime.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Security
from fastapi.testclient import TestClient
from httpx import Response as HttpxResponse

from entra_auth.emulator import EntraEmulator
from entra_auth.integrations.fastapi import ApiProtector, Principal
from entra_auth.tokens import AccessTokenValidator

from .helpers import emulator_config


def who(principal: Principal) -> dict[str, Any]:
    """What the catalogue's endpoints answer: the Flask ``who()``'s JSON."""
    return {
        "oid": principal.oid,
        "tid": principal.tid,
        "key": list(principal.key),
        "scopes": sorted(principal.scopes),
        "roles": sorted(principal.roles),
        "app_only": principal.app_only,
        "client_id": principal.client_id,
    }


def build_fastapi_app(api: ApiProtector) -> FastAPI:
    """The catalogue's routes on a FastAPI app protected by ``api``."""
    app = FastAPI()
    api.init_app(app)

    @app.get("/any")
    async def any_token(principal: Annotated[Principal, Security(api)]) -> dict[str, Any]:
        return who(principal)

    # POST too: a token in a form body must be refused by the protector (AT23), not by routing.
    @app.get("/scoped")
    @app.post("/scoped")
    async def scoped(
        principal: Annotated[Principal, Security(api, scopes=["access_as_user"])],
    ) -> dict[str, Any]:
        return who(principal)

    @app.get("/role")
    async def role(
        principal: Annotated[Principal, Security(api.require(roles=["Data.Read.All"]))],
    ) -> dict[str, Any]:
        return who(principal)

    either_token = api.require(scopes=["access_as_user"], roles=["Data.Read.All"])

    @app.get("/either")
    async def either(principal: Annotated[Principal, Security(either_token)]) -> dict[str, Any]:
        return who(principal)

    @app.get("/daemons")
    async def daemons(
        principal: Annotated[
            Principal, Security(api.require(roles=["Data.Read.All"], app_only=True))
        ],
    ) -> dict[str, Any]:
        return who(principal)

    @app.get("/user-read")
    async def user_read(
        principal: Annotated[Principal, Security(api, scopes=["User.Read"])],
    ) -> dict[str, Any]:
        return who(principal)

    return app


class Headers(httpx.Headers):
    """httpx's headers with Werkzeug's ``getlist``."""

    def getlist(self, key: str) -> list[str]:
        return self.get_list(key)


class Answer:
    """An httpx response read as Flask's test response is: ``json`` and ``data`` properties,
    ``get_data``, ``location``, ``headers.getlist`` (each Set-Cookie line kept apart)."""

    def __init__(self, response: HttpxResponse):
        self.response = response
        self.status_code = response.status_code
        self.headers = Headers(response.headers.multi_items())
        self.location = response.headers.get("location")

    @property
    def data(self) -> bytes:
        return self.response.content

    @property
    def mimetype(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    @property
    def json(self) -> Any:
        return json.loads(self.response.content) if self.response.content else None

    def get_json(self) -> Any:
        return self.json

    def get_data(self, as_text: bool = False) -> bytes | str:
        return self.response.text if as_text else self.response.content


class FastApiClient:
    """A started app's test client with the Flask client's ``get``/``post`` and answers."""

    def __init__(self, app: FastAPI, api: ApiProtector):
        self.application, self.protector = app, api
        self.client = TestClient(app)
        self.client.__enter__()  # the lifespan: keys loaded at startup

    @property
    def validator(self) -> AccessTokenValidator:
        return self.protector.validator

    def get(self, path: str, **kwargs: Any) -> Answer:
        return Answer(self.client.get(path, **kwargs))

    def post(self, path: str, **kwargs: Any) -> Answer:
        return Answer(self.client.post(path, **kwargs))

    def close(self) -> None:
        self.client.__exit__(None, None, None)


def make_fastapi_api(emulator: EntraEmulator, **config: Any) -> FastApiClient:
    """A FastAPI API protected by entra-auth, configured for the emulator's demo API; the
    FastAPI ``make_api``. Close it (``client.close()``) or use ``fastapi_api``."""
    api = ApiProtector(emulator_config(emulator, **config))
    return FastApiClient(build_fastapi_app(api), api)


@contextmanager
def fastapi_api(emulator: EntraEmulator, **config: Any) -> Iterator[FastApiClient]:
    client = make_fastapi_api(emulator, **config)
    try:
        yield client
    finally:
        client.close()
