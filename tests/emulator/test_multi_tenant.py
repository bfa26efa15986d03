"""/common and multi-tenant apps: a user of any tenant signs in; single-tenant apps get 50194."""

from __future__ import annotations

from pathlib import Path

import pytest

from entra_auth.emulator import EntraEmulator
from entra_auth.emulator.seed import load_seed, seed_from_dict
from entra_auth.testing.driver import BrowserlessUser

from ..helpers import FABRIKAM, REDIRECT, WEB, confidential_client

MULTI = "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f"


@pytest.fixture(scope="module")
def multi_tenant_emulator(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    base = load_seed()
    raw = {
        "tenants": [{"id": t.id, "domain": t.domain} for t in base.tenants],
        "apps": [
            {
                "client_id": MULTI,
                "tenant": "contoso.example",
                "display_name": "multi-tenant app",
                "multi_tenant": True,
                "redirect_uris": [REDIRECT],
                "access_token_accepted_version": 2,
                "secrets": [{"value": "multi-secret", "expires": "2099-01-01T00:00:00Z"}],
            }
        ],
        "users": [
            {
                "oid": u.oid,
                "tenant": u.tenant_id,
                "upn": u.upn,
                "name": u.name,
                "password": u.password,
            }
            for u in base.users
            if not u.is_guest
        ],
    }
    state: Path = tmp_path_factory.mktemp("multi")
    with EntraEmulator(seed_from_dict(raw), state_dir=state, port=0, browser_port=0) as emulator:
        yield emulator


def test_multi_tenant_app_signs_in_a_user_of_another_tenant(
    multi_tenant_emulator: EntraEmulator,
) -> None:
    common = multi_tenant_emulator.authority_for("common")
    app = confidential_client(multi_tenant_emulator, MULTI, authority=common)
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT)
    response = BrowserlessUser().authorize(flow["auth_uri"], user="bob@fabrikam.example")
    result = app.acquire_token_by_auth_code_flow(flow, response)
    assert result["id_token_claims"]["tid"] == FABRIKAM
    assert result["id_token_claims"]["iss"] == multi_tenant_emulator.issuer(FABRIKAM)


def test_single_tenant_app_on_common_gets_50194(entra_emulator: EntraEmulator) -> None:
    app = confidential_client(entra_emulator, WEB, authority=entra_emulator.authority_for("common"))
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT)
    response = BrowserlessUser().authorize(flow["auth_uri"], user="adele@contoso.example")
    assert response["error"] == "invalid_request"
    assert response["error_description"].startswith("AADSTS50194:")
