"""HX01 to HX03: what an access token is, who it speaks for, and what a date is."""

from __future__ import annotations

import jwt
import pytest
from flask.testing import FlaskClient

from entra_auth.emulator import EntraEmulator
from entra_auth.emulator.minting import TokenMinter

from ..helpers import ADELE, API, CONTOSO, DAEMON
from .minting import ADELE_OID, REMOVE, Mint
from .test_access_tokens import assert_refused, call


def _id_token_of_api_registration(emulator: EntraEmulator, *, nonce: str | None) -> str:
    """A real ID token of a registration that signs users in *and* exposes the API: its
    audience is the API's client id, and Adele's assigned app role rides in ``roles``."""
    minter = TokenMinter(emulator.state, emulator.urls)
    return minter.id_token(
        user=emulator.user(ADELE),
        app=emulator.app(API),
        tenant_id=CONTOSO,
        nonce=nonce,
        sid="a-sign-in-session",
        with_email=True,
    )


@pytest.mark.parametrize("nonce", ["hashed-nonce-of-a-sign-in", None], ids=["signin", "refresh"])
def test_HX01_id_token_with_user_roles_is_no_access_token(
    api: FlaskClient, entra_emulator: EntraEmulator, nonce: str | None
) -> None:
    id_token = _id_token_of_api_registration(entra_emulator, nonce=nonce)
    claims = jwt.decode(id_token, options={"verify_signature": False})
    assert claims["aud"] == API  # the API's audience, the user's role, the tenant's key:
    assert claims["roles"] == ["Data.Read.All"]  # everything but being an access token
    for path in ("/role", "/any", "/either"):
        response = call(api, path, id_token)
        assert_refused(response)
        assert response.json["reason"] == "not_an_access_token"
        assert "ID token" in response.json["error_description"]


def test_HX01_the_same_claims_are_accepted_from_an_access_token(
    api: FlaskClient, entra_emulator: EntraEmulator
) -> None:
    # The control: Adele's real access token for the API, with the same role, passes /role.
    token = entra_emulator.issue_token(client_id=API, resource=API, user=ADELE, scopes=[])
    response = call(api, "/role", token)
    assert response.status_code == 200, response.json
    assert response.json["roles"] == ["Data.Read.All"]
    assert response.json["app_only"] is False


@pytest.mark.parametrize(
    "changes",
    [
        {"scp": REMOVE, "azp": REMOVE, "roles": ["Data.Read.All"]},  # v2 ID-token shape
        {"azp": REMOVE, "roles": ["Data.Read.All"]},  # no calling app, whatever else
        {"nonce": "n", "roles": ["Data.Read.All"]},  # a sign-in nonce
        {"ver": "1.0", "iss": None, "scp": REMOVE, "roles": ["Data.Read.All"]},  # v1: no appid
    ],
    ids=["id-token", "no-azp", "nonce", "v1-no-appid"],
)
def test_HX01_any_token_without_access_token_marks_is_refused(
    api_factory: object, entra_emulator: EntraEmulator, mint: Mint, changes: dict[str, object]
) -> None:
    if changes.get("iss", "") is None:
        changes = {**changes, "iss": f"https://sts.windows.net/{CONTOSO}/"}
    client = api_factory(accepted_token_versions=("1.0", "2.0"))  # type: ignore[operator]
    response = call(client, "/role", mint.token(**changes))
    assert_refused(response)
    assert response.json["reason"] == "not_an_access_token"


def test_HX02_user_token_with_roles_only_is_not_app_only(api: FlaskClient, mint: Mint) -> None:
    # A user's delegated token carrying only assigned app roles (no `scp`): sub is pairwise.
    token = mint.token(scp=REMOVE, roles=["Data.Read.All"])
    ok = call(api, "/role", token)
    assert ok.status_code == 200
    assert ok.json["app_only"] is False
    # Where an app-only token would pass on roles, a user's token must carry the scope.
    assert_refused(call(api, "/either", token), 403, "insufficient_scope")


def test_HX02_idtyp_decides_when_present(api: FlaskClient, mint: Mint) -> None:
    user = mint.token(scp=REMOVE, roles=["Data.Read.All"], sub=ADELE_OID, idtyp="user")
    assert call(api, "/role", user).json["app_only"] is False
    assert_refused(call(api, "/either", user), 403, "insufficient_scope")
    contradictory = mint.token(idtyp="app")  # says app-only, carries delegated scopes
    assert_refused(call(api, "/any", contradictory))
    assert_refused(call(api, "/any", mint.token(idtyp="device", scp=REMOVE, roles=["x"])))


def test_HX02_app_only_as_entra_decides(
    api: FlaskClient, entra_emulator: EntraEmulator, mint: Mint
) -> None:
    real = entra_emulator.issue_token(client_id=DAEMON, resource=API, roles=["Data.Read.All"])
    answer = call(api, "/either", real)
    assert answer.status_code == 200
    assert answer.json["app_only"] is True
    # Without `idtyp` (not configured), Entra's rule: no `scp` and `sub` equal to `oid`.
    sp = "6f1e2d3c-4b5a-4968-8776-655443322110"
    bare = mint.token(scp=REMOVE, roles=["Data.Read.All"], oid=sp, sub=sp, name=REMOVE)
    assert call(api, "/either", bare).json["app_only"] is True


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": 10**300},
        {"exp": int("9" * 400)},
        {"exp": 253_402_300_800},  # 10000-01-01
        {"exp": -1},
        {"nbf": -1},
        {"nbf": -(10**200)},
        {"iat": 10**250},
        {"iat": -5},
    ],
    ids=[
        "exp-301-digits",
        "exp-400-digits",
        "exp-year-10000",
        "exp-negative",
        "nbf-negative",
        "nbf-huge-negative",
        "iat-huge",
        "iat-negative",
    ],
)
def test_HX03_numeric_dates_out_of_range(
    api: FlaskClient, mint: Mint, changes: dict[str, int]
) -> None:
    response = call(api, "/any", mint.token(**changes))
    assert_refused(response)
    assert response.json["reason"] == "malformed"
    assert "not a valid date" in response.json["error_description"]


def test_HX03_the_last_second_of_9999_is_still_a_date(api: FlaskClient, mint: Mint) -> None:
    assert call(api, "/any", mint.token(exp=253_402_300_799)).status_code == 200
