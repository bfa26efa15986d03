"""Unpatched MSAL against the local Entra ID: auth code + PKCE, refresh, client credentials."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlsplit

import jwt
import msal
import pytest

from entra_auth.emulator import EntraEmulator
from entra_auth.testing.driver import BrowserlessUser, SignInRefused

from ..helpers import (
    ADELE,
    API_SCOPE,
    CONTOSO,
    DAEMON,
    FABRIKAM,
    GUEST,
    REDIRECT,
    WEB,
    confidential_client,
    secret_of,
    sign_in,
)


def claims(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


def test_auth_code_flow_with_pkce_completes(entra_emulator: EntraEmulator, web_app) -> None:
    flow = web_app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT)
    query = parse_qs(urlsplit(flow["auth_uri"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert urlsplit(flow["auth_uri"]).scheme == "http"  # browser pages: no certificate warning

    response = BrowserlessUser().authorize(flow["auth_uri"], user=ADELE)
    assert response["state"] == flow["state"]
    result = web_app.acquire_token_by_auth_code_flow(flow, response)

    assert "error" not in result, result.get("error_description")
    id_claims = result["id_token_claims"]
    assert id_claims["name"] == "Adele Vance"
    assert id_claims["tid"] == CONTOSO
    assert id_claims["aud"] == WEB
    # MSAL sent the SHA-256 of its nonce; the ID token must echo exactly that.
    assert id_claims["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    assert result["refresh_token"]
    assert claims(result["access_token"])["aud"] == "00000003-0000-0000-c000-000000000000"
    account = web_app.get_accounts()[0]
    assert account["home_account_id"] == f"{id_claims['oid']}.{CONTOSO}"


def test_pkce_verifier_mismatch_is_refused(entra_emulator: EntraEmulator, web_app) -> None:
    flow = web_app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT)
    response = BrowserlessUser().authorize(flow["auth_uri"], user=ADELE)
    flow["code_verifier"] = "x" * 43  # not the verifier of the challenge that was sent
    result = web_app.acquire_token_by_auth_code_flow(flow, response)
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [501481]


def test_silent_refresh_rotates_refresh_token(entra_emulator: EntraEmulator, web_app) -> None:
    first = sign_in(entra_emulator, web_app, ["User.Read"])
    account = web_app.get_accounts()[0]
    cached = web_app.acquire_token_silent(["User.Read"], account)
    assert cached["access_token"] == first["access_token"]  # still fresh: no request

    entra_emulator.reset_counts()
    # MSAL refreshes when under 5 minutes remain; move the emulator's clock and MSAL's view
    # of it by shortening the cached token's life.
    for item in web_app.token_cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN):
        item["expires_on"] = str(int(item["expires_on"]) - 10_000)
    refreshed = web_app.acquire_token_silent(["User.Read"], account)

    assert entra_emulator.request_counts()["token"] == 1
    assert refreshed["access_token"] != first["access_token"]
    assert refreshed["token_source"] == "identity_provider"
    (rt,) = web_app.token_cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN)
    assert rt["secret"] != first["refresh_token"]  # rotated


def test_strict_rotation_refuses_a_replayed_refresh_token(
    entra_emulator: EntraEmulator, web_app
) -> None:
    entra_emulator.settings.refresh_token_rotation = "strict"
    first = sign_in(entra_emulator, web_app, ["User.Read"])
    again = web_app.acquire_token_by_refresh_token(first["refresh_token"], ["User.Read"])
    assert "access_token" in again
    replay = web_app.acquire_token_by_refresh_token(first["refresh_token"], ["User.Read"])
    assert replay["error_codes"] == [50173]
    # reuse revokes the whole family: the newest token is gone as well
    newest = web_app.acquire_token_by_refresh_token(again["refresh_token"], ["User.Read"])
    assert newest["error_codes"] == [50173]


def test_client_credentials_carry_granted_roles(entra_emulator: EntraEmulator) -> None:
    daemon = confidential_client(entra_emulator, DAEMON)
    result = daemon.acquire_token_for_client([f"{API_SCOPE.rsplit('/', 1)[0]}/.default"])
    token = claims(result["access_token"])
    assert token["roles"] == ["Data.Read.All"]
    assert token["idtyp"] == "app"
    assert "scp" not in token
    assert token["azp"] == DAEMON


def test_incremental_consent_is_required_for_a_new_api(
    entra_emulator: EntraEmulator, web_app
) -> None:
    sign_in(entra_emulator, web_app, ["User.Read"])
    account = web_app.get_accounts()[0]
    result = web_app.acquire_token_silent_with_error([API_SCOPE], account)
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [65001]
    assert result["suberror"] == "consent_required"

    # Asking for the API interactively shows consent again; then the token is for the API.
    browser = BrowserlessUser()
    sign_in(entra_emulator, web_app, [API_SCOPE], browser=browser)
    api_token = web_app.acquire_token_silent([API_SCOPE], web_app.get_accounts()[0])
    assert claims(api_token["access_token"])["scp"] == "access_as_user"


def test_sso_session_makes_prompt_none_silent(entra_emulator: EntraEmulator, web_app) -> None:
    browser = BrowserlessUser()
    sign_in(entra_emulator, web_app, ["User.Read"], browser=browser)
    flow = web_app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT, prompt="none")
    response = browser.authorize(flow["auth_uri"])  # no user given: must not be asked
    assert "code" in response


def test_form_post_response_mode(entra_emulator: EntraEmulator, web_app) -> None:
    flow = web_app.initiate_auth_code_flow(
        ["User.Read"], redirect_uri=REDIRECT, response_mode="form_post"
    )
    response = BrowserlessUser().authorize(flow["auth_uri"], user=ADELE)
    assert set(response) >= {"code", "state"}
    assert "access_token" in web_app.acquire_token_by_auth_code_flow(flow, response)


def test_guest_gets_resource_tenant_tokens_with_home_account(
    entra_emulator: EntraEmulator, web_app
) -> None:
    result = sign_in(entra_emulator, web_app, ["User.Read"], user=GUEST)
    id_claims = result["id_token_claims"]
    assert id_claims["tid"] == CONTOSO
    assert id_claims["idp"] == f"https://sts.windows.net/{FABRIKAM}/"
    account = web_app.get_accounts()[0]
    assert account["home_account_id"].endswith(f".{FABRIKAM}")


def test_pairwise_subject_differs_per_app(entra_emulator: EntraEmulator, web_app) -> None:
    result = sign_in(entra_emulator, web_app, ["User.Read"])
    id_sub = result["id_token_claims"]["sub"]
    graph_sub = claims(result["access_token"])["sub"]
    assert id_sub != graph_sub
    assert result["id_token_claims"]["oid"] == claims(result["access_token"])["oid"]


def test_password_grant_and_wrong_password(entra_emulator: EntraEmulator) -> None:
    # MSAL's username/password path first asks the authority host's port 443 for the user's
    # realm, which no local emulator can serve; the grant itself is exercised over HTTP.
    entra_emulator.grant_consent(ADELE, WEB, "User.Read")
    token_url = f"{entra_emulator.authority}/oauth2/v2.0/token"
    form = {
        "grant_type": "password",
        "client_id": WEB,
        "client_secret": secret_of(entra_emulator, WEB),
        "username": ADELE,
        "scope": "User.Read openid",
    }
    http = entra_emulator.http_session()
    good = http.post(token_url, data={**form, "password": "demo"}).json()
    assert claims(good["access_token"])["scp"] == "User.Read openid"
    bad = http.post(token_url, data={**form, "password": "wrong"})
    assert bad.status_code == 400
    assert bad.json()["error_codes"] == [50126]


def test_wrong_password_on_the_sign_in_page(entra_emulator: EntraEmulator, web_app) -> None:
    flow = web_app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT)
    with pytest.raises(SignInRefused, match="AADSTS50126"):
        BrowserlessUser().authorize(flow["auth_uri"], user=ADELE, password="wrong")
    right = BrowserlessUser().authorize(flow["auth_uri"], user=ADELE, password="demo")
    assert "code" in right
