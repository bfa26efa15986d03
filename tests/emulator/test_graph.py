"""The emulator's Microsoft Graph: /me, paged /users, and Graph's errors."""

from __future__ import annotations

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from entra_auth.emulator import EntraEmulator

from ..helpers import ADELE, API_URI, CONTOSO, DAEMON, WEB, confidential_client, sign_in

GRAPH = "https://graph.microsoft.com"


def get(emulator: EntraEmulator, path: str, token: str):  # type: ignore[no-untyped-def]
    url = path if path.startswith("https://") else f"{emulator.graph_base}{path}"
    return emulator.http_session().get(url, headers={"Authorization": f"Bearer {token}"})


def test_me_with_a_delegated_token(entra_emulator: EntraEmulator, web_app) -> None:
    token = sign_in(entra_emulator, web_app, ["User.Read"])["access_token"]
    me = get(entra_emulator, "/v1.0/me", token)
    assert me.status_code == 200
    assert me.json()["displayName"] == "Adele Vance"
    assert me.json()["userPrincipalName"] == ADELE


def test_users_paged_with_next_link(entra_emulator: EntraEmulator) -> None:
    token = confidential_client(entra_emulator, DAEMON).acquire_token_for_client(
        [f"{GRAPH}/.default"]
    )["access_token"]
    url, names, pages = "/v1.0/users?$top=1", [], 0
    while url:
        page = get(entra_emulator, url, token).json()
        names += [u["displayName"] for u in page["value"]]
        url, pages = page.get("@odata.nextLink"), pages + 1
    expected = [u.name for u in entra_emulator.seed.users_of(CONTOSO)]
    assert names == expected
    assert pages == len(expected)


def test_me_needs_a_delegated_token(entra_emulator: EntraEmulator) -> None:
    app_only = entra_emulator.issue_token(client_id=DAEMON, resource=GRAPH, roles=["User.Read.All"])
    assert get(entra_emulator, "/v1.0/me", app_only).status_code == 400


def test_users_needs_a_permission(entra_emulator: EntraEmulator) -> None:
    token = entra_emulator.issue_token(
        client_id=WEB, resource=GRAPH, user=ADELE, scopes=["User.Read"]
    )
    response = get(entra_emulator, "/v1.0/users", token)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"


def test_graph_refuses_tokens_for_other_audiences(entra_emulator: EntraEmulator) -> None:
    api_token = entra_emulator.issue_token(
        client_id=WEB, resource=API_URI, user=ADELE, scopes=["access_as_user"]
    )
    response = get(entra_emulator, "/v1.0/me", api_token)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert "audience" in error["message"]
    assert {"request-id", "date"} <= set(error["innerError"])
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_graph_refuses_forged_and_expired_tokens(entra_emulator: EntraEmulator) -> None:
    good = entra_emulator.issue_token(
        client_id=WEB, resource=GRAPH, user=ADELE, scopes=["User.Read"]
    )
    claims = jwt.decode(good, options={"verify_signature": False})
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        claims, foreign, algorithm="RS256", headers={"kid": entra_emulator.signing_key.kid}
    )
    assert get(entra_emulator, "/v1.0/me", forged).status_code == 401
    assert get(entra_emulator, "/v1.0/me", "").status_code == 401
    entra_emulator.shift_clock(6000)
    response = get(entra_emulator, "/v1.0/me", good)
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]
