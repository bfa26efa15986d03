"""The Flask adapter: a whole blueprint protected, config from app.config, quiet logs."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Blueprint, Flask, g

from entra_auth import Principal
from entra_auth.emulator import EntraEmulator
from entra_auth.integrations.flask import ApiProtector, current_principal

from .helpers import API, CONTOSO
from .security.minting import Mint


@pytest.fixture
def app(entra_emulator: EntraEmulator) -> Flask:
    app = Flask(__name__)
    app.config.update(
        ENTRA_AUTHORITY=entra_emulator.authority_for(CONTOSO),
        ENTRA_API_AUDIENCE=API,
        ENTRA_CA_BUNDLE=str(entra_emulator.ca_path),
    )
    api = ApiProtector(app)
    bp = Blueprint("v1", __name__, url_prefix="/v1")

    @bp.get("/a")
    def a() -> dict[str, Any]:
        # current_principal is a LocalProxy: `is not None` would hold even with nothing behind
        # it. isinstance looks through the proxy to the Principal of this request.
        return {
            "oid": current_principal.oid,  # type: ignore[union-attr]
            "principal": isinstance(current_principal, Principal),
            "is_g_principal": current_principal == g.principal,
        }

    @bp.get("/b")
    def b() -> dict[str, str]:
        return {"ok": "yes"}

    api.protect_blueprint(bp, scopes=["access_as_user"])
    app.register_blueprint(bp)

    @app.get("/open")
    def open_view() -> dict[str, Any]:
        return {"open": "yes", "principal": isinstance(current_principal, Principal)}

    return app


def test_blueprint_protects_every_view(app: Flask, entra_emulator: EntraEmulator) -> None:
    client, mint = app.test_client(), Mint(entra_emulator)
    for path in ("/v1/a", "/v1/b"):
        assert client.get(path).status_code == 401
        scopeless = client.get(path, headers={"Authorization": f"Bearer {mint.token(scp='x')}"})
        assert scopeless.status_code == 403
    response = client.get("/v1/a", headers={"Authorization": f"Bearer {mint.token()}"})
    assert response.json == {"oid": mint.claims()["oid"], "principal": True, "is_g_principal": True}
    opened = client.get("/open")
    assert opened.status_code == 200
    assert opened.json == {"open": "yes", "principal": False}  # no token: no principal


def test_refusals_are_logged_without_the_token(
    app: Flask, entra_emulator: EntraEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    mint = Mint(entra_emulator)
    bad = mint.token(aud="00000003-0000-0000-c000-000000000000")
    with caplog.at_level(logging.DEBUG):
        response = app.test_client().get("/v1/a", headers={"Authorization": f"Bearer {bad}"})
    assert response.status_code == 401
    assert any("graph_token" in r.getMessage() for r in caplog.records)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for part in bad.split("."):
        assert part not in logged


def test_protector_not_set_up_is_a_clear_error() -> None:
    with Flask(__name__).app_context(), pytest.raises(RuntimeError, match="init_app"):
        ApiProtector.validator()
