"""An API that requires a Conditional Access authentication context (``acrs``) itself, on each
adapter: the challenge it answers, met by the real MSAL through the local Entra ID's step-up."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, g

from entra_auth import EntraConfig
from entra_auth.challenges import claims_challenge
from entra_auth.emulator import EntraEmulator
from entra_auth.tokens import Principal

from .helpers import ADELE, API, API_SCOPE, API_URI, CONTOSO, DAEMON, WEB, confidential_client
from .helpers import sign_in as sign_in_with_msal

Call = Callable[[str | None], tuple[int, dict[str, str], dict[str, Any]]]  # token → answer
C1 = {"access_token": {"acrs": {"essential": True, "value": "c1"}}}


def api_config(emulator: EntraEmulator) -> EntraConfig:
    return EntraConfig(
        authority=emulator.authority_for(CONTOSO),
        client_id=API,
        api_audiences=(API, API_URI),
        ca_bundle=str(emulator.ca_path),
    )


def flask_api(emulator: EntraEmulator) -> Call:
    from entra_auth.integrations.flask import ApiProtector

    app = Flask(__name__)
    api = ApiProtector(app, config=api_config(emulator))

    @app.get("/sensitive")
    @api.require_token(scopes=["access_as_user"], auth_context="c1")
    def sensitive() -> dict[str, Any]:
        return {"acrs": g.principal.claims.get("acrs")}

    client = app.test_client()

    def call(token: str | None) -> tuple[int, dict[str, str], dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = client.get("/sensitive", headers=headers)
        return (
            answer.status_code,
            {k.lower(): v for k, v in answer.headers.items()},
            answer.get_json(),
        )

    return call


def fastapi_api(emulator: EntraEmulator) -> Call:
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from entra_auth.integrations.fastapi import ApiProtector

    app = FastAPI()
    api = ApiProtector(api_config(emulator))
    api.init_app(app)
    stepped_up = Depends(api.require(scopes=["access_as_user"], auth_context="c1"))

    @app.get("/sensitive")
    async def sensitive(principal: Principal = stepped_up) -> dict[str, Any]:
        return {"acrs": principal.claims.get("acrs")}

    client = TestClient(app)

    def call(token: str | None) -> tuple[int, dict[str, str], dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = client.get("/sensitive", headers=headers)
        return answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, answer.json()

    return call


def starlette_api(emulator: EntraEmulator) -> Call:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from entra_auth.integrations.fastapi import ApiProtector

    api = ApiProtector(api_config(emulator))

    @api.require_token(scopes=["access_as_user"], auth_context="c1")
    async def sensitive(request: Request) -> JSONResponse:
        return JSONResponse({"acrs": request.user.principal.claims.get("acrs")})

    client = TestClient(Starlette(routes=[Route("/sensitive", sensitive)]))

    def call(token: str | None) -> tuple[int, dict[str, str], dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = client.get("/sensitive", headers=headers)
        return answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, answer.json()

    return call


def django_api(adapter: str) -> Callable[[EntraEmulator], Call]:
    """The Django adapters' ``sensitive`` views (sync, async, DRF): tests/django/api_urls.py."""

    def build(emulator: EntraEmulator) -> Call:
        from .django.api_support import auth_context_api

        return auth_context_api(adapter)(emulator)

    return build


API_ADAPTERS = {
    "flask": flask_api,
    "fastapi": fastapi_api,
    "starlette": starlette_api,
    "django": django_api("django"),
    "django-async": django_api("django-async"),
    "drf": django_api("drf"),
}


@pytest.mark.parametrize("adapter", API_ADAPTERS)
def test_an_endpoint_requiring_an_authentication_context_challenges_then_admits(
    entra_emulator: EntraEmulator, adapter: str
) -> None:
    call = API_ADAPTERS[adapter](entra_emulator)
    web = confidential_client(entra_emulator, WEB, client_capabilities=["CP1"])
    entra_emulator.grant_consent(ADELE, WEB, API_SCOPE)
    first = sign_in_with_msal(entra_emulator, web, [API_SCOPE])
    status, headers, body = call(first["access_token"])
    assert status == 401
    assert body["error"] == "insufficient_claims"
    claims = claims_challenge(headers["www-authenticate"])
    assert claims is not None
    assert json.loads(claims) == C1
    # A silent attempt with the claims: the session never satisfied c1, Entra wants the user.
    account = web.get_accounts()[0]
    silent = web.acquire_token_silent_with_error([API_SCOPE], account, claims_challenge=claims)
    assert silent is not None
    assert silent.get("error") == "interaction_required"
    # One sign-in with the claims (the step-up): the token carries acrs c1 and is admitted.
    stepped = sign_in_with_msal(entra_emulator, web, [API_SCOPE], claims_challenge=claims)
    status, _, body = call(stepped["access_token"])
    assert status == 200, body
    assert body["acrs"] == ["c1"]


@pytest.mark.parametrize("adapter", API_ADAPTERS)
def test_an_apps_token_is_not_asked_for_a_users_authentication_context(
    entra_emulator: EntraEmulator, adapter: str
) -> None:
    """Authentication contexts apply to users' sign-ins: a daemon's token for the scope-less
    endpoint is refused for its missing scope (403), never sent to sign in (401)."""
    call = API_ADAPTERS[adapter](entra_emulator)
    daemon = entra_emulator.issue_token(client_id=DAEMON, resource=API_URI, roles=["Data.Read.All"])
    status, _, body = call(daemon)
    assert status == 403
    assert body["error"] == "insufficient_scope"
