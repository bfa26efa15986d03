"""Each AADSTS error the emulator must produce, in Entra's shapes, and no 500 on bad input."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from entra_auth.emulator import EntraEmulator
from entra_auth.testing.driver import BrowserlessUser

from ..helpers import (
    ADELE,
    API_URI,
    CONTOSO,
    DAEMON,
    REDIRECT,
    WEB,
    confidential_client,
    secret_of,
    sign_in,
)

# Entra's error_description: the message, then the ids and the time, each on a CRLF line.
ENTRA_SHAPE = re.compile(
    r"\AAADSTS(\d+): [^\r\n]+\r\nTrace ID: ([0-9a-f-]{36})\r\nCorrelation ID: ([0-9a-f-]{36})"
    r"\r\nTimestamp: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ)\Z"
)


def assert_entra_error(
    response: requests.Response, code: int, error: str, status: int = 400
) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    match = ENTRA_SHAPE.match(body["error_description"])
    assert match, body["error_description"]
    assert int(match.group(1)) == code
    assert body["error_codes"] == [code]
    assert (body["trace_id"], body["correlation_id"], body["timestamp"]) == match.group(2, 3, 4)
    assert body["error_uri"] == f"https://login.microsoftonline.com/error?code={code}"
    assert response.headers["x-ms-request-id"] == body["trace_id"]


def token_post(
    emulator: EntraEmulator, data: dict[str, str], tenant: str = CONTOSO
) -> requests.Response:
    return emulator.http_session().post(
        f"{emulator.authority_for(tenant)}/oauth2/v2.0/token", data=data
    )


def password_grant(emulator: EntraEmulator, scope: str) -> requests.Response:
    """Adele's password grant for the web app, with ``scope``."""
    form = {
        "grant_type": "password",
        "client_id": WEB,
        "client_secret": secret_of(emulator, WEB),
        "username": ADELE,
        "password": "demo",
        "scope": scope,
    }
    return token_post(emulator, form)


def authorize_url(emulator: EntraEmulator, tenant: str = CONTOSO, **params: str) -> str:
    base = {
        "client_id": WEB,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": "openid User.Read",
        "state": "s1",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }
    base.update(params)
    return f"{emulator.urls.browser_base}/{tenant}/oauth2/v2.0/authorize?{urlencode(base)}"


def error_page(emulator: EntraEmulator, url: str) -> str:
    response = requests.get(url, allow_redirects=False)
    assert response.status_code == 400
    assert "Location" not in response.headers  # never a redirect to an unchecked address
    found = re.search(r'id="aadsts">(AADSTS\d+)', response.text)
    assert found, response.text
    return found.group(1)


def redirected_error(url: str) -> dict[str, list[str]]:
    response = requests.get(url, allow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT)
    return parse_qs(urlsplit(location).query)


# -- errors shown on the emulator's own page ------------------------------------------------------
def test_50011_unregistered_redirect_uri_gets_a_page(entra_emulator: EntraEmulator) -> None:
    url = authorize_url(entra_emulator, redirect_uri="https://evil.example/callback")
    assert error_page(entra_emulator, url) == "AADSTS50011"


def test_700016_unknown_client_gets_a_page(entra_emulator: EntraEmulator) -> None:
    url = authorize_url(entra_emulator, client_id="00000000-0000-0000-0000-000000000001")
    assert error_page(entra_emulator, url) == "AADSTS700016"


def test_700016_app_of_another_tenant(entra_emulator: EntraEmulator) -> None:
    url = authorize_url(entra_emulator, tenant="fabrikam.example")
    assert error_page(entra_emulator, url) == "AADSTS700016"


def test_90002_unknown_tenant(entra_emulator: EntraEmulator) -> None:
    assert error_page(entra_emulator, authorize_url(entra_emulator, tenant="nope.example")) == (
        "AADSTS90002"
    )
    response = token_post(entra_emulator, {"grant_type": "client_credentials"}, tenant="nope")
    assert_entra_error(response, 90002, "invalid_tenant")
    assert (
        entra_emulator.http_session()
        .get(f"{entra_emulator.authority_for('nope')}/v2.0/.well-known/openid-configuration")
        .status_code
        == 400
    )


def test_90014_missing_client_id_on_authorize(entra_emulator: EntraEmulator) -> None:
    url = authorize_url(entra_emulator).replace(f"client_id={WEB}&", "")
    assert error_page(entra_emulator, url) == "AADSTS90014"


# -- errors sent back to the registered redirect URI ----------------------------------------------
def test_access_denied_when_consent_is_declined(entra_emulator: EntraEmulator, web_app) -> None:
    flow = web_app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT)
    response = BrowserlessUser().authorize(flow["auth_uri"], user=ADELE, consent=False)
    assert response["error"] == "access_denied"
    assert response["error_description"].startswith("AADSTS65004:")
    assert response["state"] == flow["state"]


def test_500011_unknown_resource(entra_emulator: EntraEmulator) -> None:
    params = redirected_error(authorize_url(entra_emulator, scope="api://no-such-api/read"))
    assert params["error"] == ["invalid_resource"]
    assert params["error_description"][0].startswith("AADSTS500011:")
    assert params["state"] == ["s1"]


def test_70011_scope_not_exposed(entra_emulator: EntraEmulator) -> None:
    params = redirected_error(authorize_url(entra_emulator, scope=f"{API_URI}/does.not.exist"))
    assert params["error"] == ["invalid_scope"]
    assert params["error_description"][0].startswith("AADSTS70011:")


def test_pkce_challenges_of_the_wrong_shape_are_refused(entra_emulator: EntraEmulator) -> None:
    # PKCE is optional for a Web redirect URI (test_fidelity_protocol.py), but a challenge that
    # is sent must be well formed: Entra's AADSTS50149 and AADSTS501491.
    for params, code in (
        ({"code_challenge_method": "S512"}, "AADSTS50149:"),
        ({"code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM="}, "AADSTS501491:"),
        ({"code_challenge_method": "plain", "code_challenge": "short"}, "AADSTS501491:"),
    ):
        answer = redirected_error(authorize_url(entra_emulator, **params))
        assert answer["error"] == ["invalid_request"]
        assert answer["error_description"][0].startswith(code)
        assert answer["state"] == ["s1"]


# -- token endpoint -------------------------------------------------------------------------------
def test_7000215_wrong_secret(entra_emulator: EntraEmulator) -> None:
    result = confidential_client(
        entra_emulator, DAEMON, secret="not-the-secret"
    ).acquire_token_for_client([f"{API_URI}/.default"])
    assert result["error_codes"] == [7000215]
    response = token_post(
        entra_emulator,
        {
            "grant_type": "client_credentials",
            "client_id": DAEMON,
            "client_secret": "x",
            "scope": f"{API_URI}/.default",
        },
    )
    assert_entra_error(response, 7000215, "invalid_client", status=401)


def test_7000222_expired_secret(entra_emulator: EntraEmulator) -> None:
    expired = secret_of(entra_emulator, WEB, index=1)
    result = confidential_client(entra_emulator, WEB, secret=expired).acquire_token_for_client(
        [f"{API_URI}/.default"]
    )
    assert result["error_codes"] == [7000222]


def test_7000218_public_client_sends_no_secret(entra_emulator: EntraEmulator) -> None:
    response = token_post(
        entra_emulator,
        {"grant_type": "client_credentials", "client_id": DAEMON, "scope": f"{API_URI}/.default"},
    )
    assert_entra_error(response, 7000218, "invalid_client", status=401)


def test_700016_unknown_client_at_token_endpoint(entra_emulator: EntraEmulator) -> None:
    response = token_post(
        entra_emulator,
        {
            "grant_type": "client_credentials",
            "client_id": "00000000-0000-0000-0000-000000000009",
            "client_secret": "x",
            "scope": f"{API_URI}/.default",
        },
    )
    assert_entra_error(response, 700016, "unauthorized_client")


def _code(entra_emulator: EntraEmulator, web_app) -> tuple[dict, dict]:  # type: ignore[type-arg]
    flow = web_app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT)
    return flow, BrowserlessUser().authorize(flow["auth_uri"], user=ADELE)


def _redemption(
    entra_emulator: EntraEmulator, web_app, verifier: str | None = None
) -> dict[str, str]:
    """The token request that redeems a fresh code, with its own or the given verifier."""
    flow, response = _code(entra_emulator, web_app)
    return {
        "grant_type": "authorization_code",
        "client_id": WEB,
        "client_secret": secret_of(entra_emulator, WEB),
        "code": response["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier or flow["code_verifier"],
        "scope": "User.Read",
    }


def test_54005_code_redeemed_twice(entra_emulator: EntraEmulator, web_app) -> None:
    form = _redemption(entra_emulator, web_app)
    assert token_post(entra_emulator, form).status_code == 200
    assert_entra_error(token_post(entra_emulator, form), 54005, "invalid_grant")


def test_70008_code_expired(entra_emulator: EntraEmulator, web_app) -> None:
    flow, response = _code(entra_emulator, web_app)
    entra_emulator.shift_clock(601)
    result = web_app.acquire_token_by_auth_code_flow(flow, response)
    assert result["error_codes"] == [70008]


def test_501481_wrong_verifier(entra_emulator: EntraEmulator, web_app) -> None:
    form = _redemption(entra_emulator, web_app, verifier="A" * 43)
    assert_entra_error(token_post(entra_emulator, form), 501481, "invalid_grant")


def test_65001_consent_missing(entra_emulator: EntraEmulator) -> None:
    response = password_grant(entra_emulator, "User.Read")
    assert_entra_error(response, 65001, "invalid_grant")
    assert response.json()["suberror"] == "consent_required"


def test_700082_refresh_token_inactive(entra_emulator: EntraEmulator, web_app) -> None:
    result = sign_in(entra_emulator, web_app, ["User.Read"])
    entra_emulator.shift_clock(91 * 86400)
    refreshed = web_app.acquire_token_by_refresh_token(result["refresh_token"], ["User.Read"])
    assert refreshed["error_codes"] == [700082]


def test_50173_revoked_refresh_token(entra_emulator: EntraEmulator, web_app) -> None:
    result = sign_in(entra_emulator, web_app, ["User.Read"])
    entra_emulator.revoke_refresh_tokens(ADELE)
    refreshed = web_app.acquire_token_by_refresh_token(result["refresh_token"], ["User.Read"])
    assert refreshed["error_codes"] == [50173]


def test_70011_and_1002012_and_500011_client_credentials(entra_emulator: EntraEmulator) -> None:
    daemon = confidential_client(entra_emulator, DAEMON)
    assert daemon.acquire_token_for_client([f"{API_URI}/access_as_user"])["error_codes"] == [
        1002012
    ]
    assert daemon.acquire_token_for_client(["api://nothing/.default"])["error_codes"] == [500011]
    response = password_grant(entra_emulator, f"{API_URI}/nope")
    assert_entra_error(response, 70011, "invalid_scope")


def test_90014_missing_parameters(entra_emulator: EntraEmulator) -> None:
    assert_entra_error(token_post(entra_emulator, {}), 90014, "invalid_request")
    response = token_post(
        entra_emulator,
        {"client_id": DAEMON, "client_secret": secret_of(entra_emulator, DAEMON)},
    )
    assert_entra_error(response, 90014, "invalid_request")
    assert "'grant_type'" in response.json()["error_description"]


def test_28000_two_resources_in_one_token_request(entra_emulator: EntraEmulator) -> None:
    entra_emulator.grant_consent(ADELE, WEB, f"User.Read {API_URI}/access_as_user")
    response = password_grant(entra_emulator, f"User.Read {API_URI}/access_as_user")
    assert_entra_error(response, 28000, "invalid_scope")


# -- malformed requests: an Entra-shaped error, never a 500 ---------------------------------------
@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ("grant_type=client_credentials&grant_type=password", {}),
        ("\xff\xfe\x00garbage", {"Content-Type": "application/x-www-form-urlencoded"}),
        ('{"grant_type": "client_credentials"}', {"Content-Type": "application/json"}),
        ("a=" + "x" * (2 * 1024 * 1024), {"Content-Type": "application/x-www-form-urlencoded"}),
        ("client_id=%ZZ&grant_type=%", {"Content-Type": "application/x-www-form-urlencoded"}),
    ],
    ids=["repeated", "binary", "json", "too-large", "bad-escapes"],
)
def test_malformed_token_requests(
    entra_emulator: EntraEmulator, body: str, headers: dict[str, str]
) -> None:
    response = entra_emulator.http_session().post(
        f"{entra_emulator.authority}/oauth2/v2.0/token",
        data=body.encode("latin-1"),
        headers=headers,
    )
    assert 400 <= response.status_code < 500
    assert response.json()["error"] in ("invalid_request", "unauthorized_client")
    assert response.json()["error_description"].startswith("AADSTS")


@pytest.mark.parametrize(
    "query",
    ["client_id=a&client_id=b", "%ff%fe=\x01", "scope=" + "x" * 20000, ""],
    ids=["repeated", "bad-bytes", "long", "empty"],
)
def test_malformed_authorize_requests(entra_emulator: EntraEmulator, query: str) -> None:
    response = requests.get(
        f"{entra_emulator.urls.browser_base}/{CONTOSO}/oauth2/v2.0/authorize?{query}",
        allow_redirects=False,
    )
    assert response.status_code == 400
    assert "AADSTS" in response.text
