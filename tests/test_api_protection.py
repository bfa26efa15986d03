"""The demo's /secure-data with tokens the local Entra ID really issued, over HTTP."""

from __future__ import annotations

import time

import jwt
import pytest
from flask.testing import FlaskClient

from entra_auth.emulator import EntraEmulator

from .helpers import (
    ADELE,
    API_SCOPE,
    API_URI,
    DAEMON,
    LEGACY_URI,
    MEGAN,
    WEB,
    confidential_client,
    sign_in,
)
from .security.web import Web


@pytest.fixture
def demo(web: Web) -> FlaskClient:
    return web.client


def bearer(demo: FlaskClient, token: str):  # type: ignore[no-untyped-def]
    return demo.get("/secure-data", headers={"Authorization": f"Bearer {token}"})


def test_token_from_a_real_sign_in_is_accepted(
    entra_emulator: EntraEmulator, demo: FlaskClient
) -> None:
    web = confidential_client(entra_emulator, WEB)
    entra_emulator.grant_consent(ADELE, WEB, API_SCOPE)
    sign_in(entra_emulator, web, [API_SCOPE])
    token = web.acquire_token_silent([API_SCOPE], web.get_accounts()[0])["access_token"]
    response = bearer(demo, token)
    assert response.status_code == 200
    assert response.json["message"].startswith("Hello Adele Vance")
    assert response.json["roles"] == ["Data.Read.All"]


def test_each_kind_of_wrong_token_is_refused(
    entra_emulator: EntraEmulator, demo: FlaskClient
) -> None:
    web = confidential_client(entra_emulator, WEB)
    signed_in = sign_in(entra_emulator, web, ["User.Read"], user=MEGAN)
    daemon = confidential_client(entra_emulator, DAEMON)
    cases = {
        "graph_token": signed_in["access_token"],
        "not_an_access_token": signed_in["id_token"],
        "wrong_audience": daemon.acquire_token_for_client([f"{LEGACY_URI}/.default"])[
            "access_token"
        ],
    }
    for reason, token in cases.items():
        response = bearer(demo, token)
        assert response.status_code == 401, reason
        assert response.json["error"] == "invalid_token"
    app_only = daemon.acquire_token_for_client([f"{API_URI}/.default"])["access_token"]
    assert bearer(demo, app_only).status_code == 403  # a delegated endpoint
    entra_emulator.shift_clock(-7200)  # issued two hours ago: expired
    old = entra_emulator.issue_token(
        client_id=WEB, resource=API_URI, user=ADELE, scopes=["access_as_user"]
    )
    assert jwt.decode(old, options={"verify_signature": False})["exp"] < time.time()
    response = bearer(demo, old)
    assert response.status_code == 401
    assert "expired" in response.json["error_description"]
