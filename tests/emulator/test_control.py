"""The control API: keys, revocation, clock, faults and request counters, in Python and HTTP."""

from __future__ import annotations

import email.utils
import time
from pathlib import Path

import jwt
import pytest
import requests

from entra_auth.emulator import EntraEmulator, Fault
from entra_auth.emulator.admin import ADMIN_HEADER
from entra_auth.errors import EmulatorError
from entra_auth.testing.driver import BrowserlessUser, SignInRefused

from ..helpers import ADELE, API_URI, CONTOSO, DAEMON, WEB, confidential_client


def jwks_kids(emulator: EntraEmulator) -> list[str]:
    url = f"{emulator.authority}/discovery/v2.0/keys"
    return [k["kid"] for k in emulator.http_session().get(url).json()["keys"]]


def test_rotate_keys_keeping_or_dropping_the_old(entra_emulator: EntraEmulator) -> None:
    old = entra_emulator.signing_key.kid
    new = entra_emulator.rotate_keys(keep_old=True).kid
    assert jwks_kids(entra_emulator) == [new, old]
    token = entra_emulator.issue_token(client_id=WEB, resource=API_URI, user=ADELE)
    assert jwt.get_unverified_header(token)["kid"] == new
    newest = entra_emulator.rotate_keys(keep_old=False).kid
    assert jwks_kids(entra_emulator) == [newest]
    entra_emulator.reset()
    assert jwks_kids(entra_emulator) == [old]


def test_shift_clock_moves_tokens_and_date_header(entra_emulator: EntraEmulator) -> None:
    entra_emulator.shift_clock(3600)
    token = jwt.decode(
        entra_emulator.issue_token(client_id=WEB, resource=API_URI, user=ADELE),
        options={"verify_signature": False},
    )
    assert token["iat"] >= time.time() + 3500
    response = entra_emulator.http_session().get(f"{entra_emulator.authority}/discovery/v2.0/keys")
    date = email.utils.parsedate_to_datetime(response.headers["Date"]).timestamp()
    assert date >= time.time() + 3500


def test_request_counters(entra_emulator: EntraEmulator) -> None:
    for _ in range(3):
        jwks_kids(entra_emulator)
    confidential_client(entra_emulator, DAEMON).acquire_token_for_client([f"{API_URI}/.default"])
    counts = entra_emulator.request_counts()
    assert counts["jwks"] == 3
    assert counts["discovery"] == 1
    assert counts["token"] == 1
    entra_emulator.reset_counts()
    assert entra_emulator.request_counts()["jwks"] == 0


def test_fault_status_with_retry_after_and_times(entra_emulator: EntraEmulator) -> None:
    entra_emulator.inject_fault("jwks", Fault("status", status=503, retry_after=7, times=2))
    url = f"{entra_emulator.authority}/discovery/v2.0/keys"
    http = entra_emulator.http_session()
    first, second, third = (http.get(url) for _ in range(3))
    assert first.status_code == second.status_code == 503
    assert first.headers["Retry-After"] == "7"
    assert third.status_code == 200  # the fault was for two requests
    assert entra_emulator.request_counts()["jwks"] == 3


def test_fault_garbage_and_hang_and_slow(entra_emulator: EntraEmulator) -> None:
    http = entra_emulator.http_session()
    url = f"{entra_emulator.authority}/v2.0/.well-known/openid-configuration"
    entra_emulator.inject_fault("discovery", Fault("garbage"))
    response = http.get(url)
    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()
    # Held ten times longer than the client waits: the client's own timeout ends the wait.
    entra_emulator.inject_fault("discovery", Fault("hang", delay=5))
    with pytest.raises(requests.Timeout):
        http.get(url, timeout=0.5)
    entra_emulator.inject_fault("discovery", Fault("slow", delay=0.3))
    started = time.monotonic()
    assert http.get(url).status_code == 200
    assert time.monotonic() - started >= 0.3
    entra_emulator.clear_faults()
    assert http.get(url).json()["issuer"] == entra_emulator.issuer()


def test_graph_throttling_fault(entra_emulator: EntraEmulator) -> None:
    entra_emulator.inject_fault("graph", Fault("status", status=429, retry_after=2, times=1))
    token = entra_emulator.issue_token(
        client_id=WEB, resource="https://graph.microsoft.com", user=ADELE, scopes=["User.Read"]
    )
    http = entra_emulator.http_session()
    headers = {"Authorization": f"Bearer {token}"}
    throttled = http.get(f"{entra_emulator.graph_base}/v1.0/me", headers=headers)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert http.get(f"{entra_emulator.graph_base}/v1.0/me", headers=headers).status_code == 200


def test_unknown_fault_endpoint_is_a_clear_error(entra_emulator: EntraEmulator) -> None:
    with pytest.raises(EmulatorError, match="jwks"):
        entra_emulator.inject_fault("jwkz", Fault("status"))


def test_http_control_api_needs_the_admin_key(entra_emulator: EntraEmulator) -> None:
    http = entra_emulator.http_session()
    base = f"{entra_emulator.urls.https_base}/_emulator"
    assert http.get(f"{base}/counts").status_code == 403
    assert http.get(f"{base}/counts", headers={ADMIN_HEADER: "wrong"}).status_code == 403
    key = {ADMIN_HEADER: entra_emulator.admin_key}
    assert http.post(f"{base}/faults/jwks", json={"kind": "status", "status": 500}, headers=key).ok
    assert http.get(f"{entra_emulator.authority}/discovery/v2.0/keys").status_code == 500
    assert http.delete(f"{base}/faults", headers=key).ok
    assert http.get(f"{base}/counts", headers=key).json()["jwks"] == 1
    old = entra_emulator.signing_key.kid
    kid = http.post(f"{base}/keys/rotate", json={"keep_old": False}, headers=key).json()["kid"]
    assert kid != old
    assert jwks_kids(entra_emulator) == [kid]
    assert http.post(f"{base}/clock", json={"shift": 60}, headers=key).json()["offset"] == 60
    assert http.post(f"{base}/users/{ADELE}/revoke", headers=key).ok
    assert http.post(f"{base}/users/nobody/revoke", headers=key).status_code == 400
    assert (
        http.post(f"{base}/faults/jwks", json={"kind": "explode"}, headers=key).status_code == 400
    )
    assert http.post(f"{base}/reset", headers=key).ok
    assert jwks_kids(entra_emulator) == [old]


def test_browser_port_serves_only_pages(entra_emulator: EntraEmulator) -> None:
    browser = entra_emulator.urls.browser_base
    response = requests.post(f"{browser}/{CONTOSO}/oauth2/v2.0/token", data={})
    assert response.status_code == 404
    assert "browser port" in response.json()["error_description"]
    assert requests.get(f"{browser}/{CONTOSO}/discovery/v2.0/keys").status_code == 404
    assert requests.get(f"{browser}/_emulator/counts").status_code == 404
    assert requests.get(f"{browser}/").status_code == 200


# -- redirect URIs ---------------------------------------------------------------------------------
def signs_in_at(emulator: EntraEmulator, redirect_uri: str) -> bool:
    """Whether a sign-in of the web app with this redirect URI gets a code back (MSAL's URL)."""
    flow = confidential_client(emulator, WEB).initiate_auth_code_flow(
        ["User.Read"], redirect_uri=redirect_uri
    )
    try:
        answer = BrowserlessUser().authorize(flow["auth_uri"], user=ADELE)
    except SignInRefused as refused:
        if "AADSTS50011" in str(refused):  # the redirect URI is not registered
            return False
        raise
    return bool(answer.get("code"))


def test_redirect_uri_over_http_lets_an_app_on_another_port_sign_in(
    entra_emulator: EntraEmulator,
) -> None:
    uri = "http://localhost:5001/get_token"
    assert not signs_in_at(entra_emulator, uri)
    http = entra_emulator.http_session()
    url = f"{entra_emulator.urls.https_base}/_emulator/apps/{WEB}/redirect-uris"
    assert http.post(url, json={"uri": uri}).status_code == 403  # the admin key is needed
    key = {ADMIN_HEADER: entra_emulator.admin_key}
    answer = http.post(url, json={"uri": uri}, headers=key)
    assert answer.status_code == 200
    assert answer.json()["redirect_uris"] == ["http://localhost:5000/get_token", uri]
    assert http.post(url, json={"uri": uri}, headers=key).json() == answer.json()  # no duplicate
    assert signs_in_at(entra_emulator, uri)
    assert entra_emulator.env_for(WEB, redirect_uri=uri)["ENTRA_REDIRECT_URI"] == uri
    entra_emulator.reset()  # added while running: gone with the reset
    assert entra_emulator.app(WEB).redirect_uris == ("http://localhost:5000/get_token",)
    assert not signs_in_at(entra_emulator, uri)


def test_redirect_uri_control_api_refuses_what_it_cannot_register(
    entra_emulator: EntraEmulator,
) -> None:
    http = entra_emulator.http_session()
    base = f"{entra_emulator.urls.https_base}/_emulator/apps"
    key = {ADMIN_HEADER: entra_emulator.admin_key}
    unknown = http.post(
        f"{base}/99999999-9999-9999-9999-999999999999/redirect-uris",
        json={"uri": "http://localhost:5001/get_token"},
        headers=key,
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "unknown_app"
    for body in ({}, {"uri": 5}, {"url": "http://localhost:5001/"}):
        missing = http.post(f"{base}/{WEB}/redirect-uris", json=body, headers=key)
        assert missing.status_code == 400
        assert '{"uri"' in missing.json()["error_description"]
    wrong = http.post(
        f"{base}/{WEB}/redirect-uris", json={"uri": "http://app.example/get_token"}, headers=key
    )
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_redirect_uri"
    assert "localhost" in wrong.json()["error_description"]
    assert entra_emulator.app(WEB).redirect_uris == ("http://localhost:5000/get_token",)


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("http://app.example/get_token", "plain http on a host other than localhost"),
        ("http://10.0.0.5:5000/get_token", "plain http on a host other than localhost"),
        ("/get_token", "not an absolute http(s) URL"),
        ("localhost:5001/get_token", "not an absolute http(s) URL"),
        ("ftp://localhost/get_token", "not an absolute http(s) URL"),
        ("https:///get_token", "not an absolute http(s) URL"),
        ("https://app.example/get_token#done", "has a fragment"),
        ("https://*.app.example/get_token", "has a wildcard"),
        ("https://user:pw@app.example/get_token", "has a user name or password"),
        ("http://localhost:99999/get_token", "has an invalid port"),
        ("https://app.example/get token", "holds a space or a control character"),
        ("https://app.example/\x1b[2J", "holds a space or a control character"),
        ("https://app.example/" + "a" * 237, "is longer than 256 characters"),
        ("", "must be a non-empty string"),
    ],
)
def test_redirect_uris_are_checked_as_entra_checks_them(
    entra_emulator: EntraEmulator, uri: str, problem: str
) -> None:
    with pytest.raises(EmulatorError, match="redirect URI") as refused:
        entra_emulator.add_redirect_uri(WEB, uri)
    assert problem in refused.value.message
    assert "http for localhost and 127.0.0.1 only" in refused.value.remedy
    assert "\x1b" not in str(refused.value)  # shown escaped: the error is printed and logged


@pytest.mark.parametrize(
    "uri",
    [
        "http://localhost:5001/get_token",
        "http://127.0.0.1:8080/auth/callback?tenant=contoso",  # a query is fine (work accounts)
        "https://app.example/get_token",
        "https://app.example/" + "a" * 236,  # 256 characters: Entra's limit
    ],
)
def test_redirect_uris_entra_accepts(entra_emulator: EntraEmulator, uri: str) -> None:
    entra_emulator.add_redirect_uri("entra-auth demo web app", uri)  # by display name too
    assert entra_emulator.app(WEB).redirect_uris[-1] == uri


def test_redirect_uri_for_an_unknown_app_is_an_error(entra_emulator: EntraEmulator) -> None:
    with pytest.raises(EmulatorError, match="no app") as refused:
        entra_emulator.add_redirect_uri("no such app", "http://localhost:5001/get_token")
    assert "entra-auth demo web app" in refused.value.remedy  # the apps it has


def test_reset_keeps_redirect_uris_registered_before_start(tmp_path: Path) -> None:
    emulator = EntraEmulator(state_dir=tmp_path, port=0, browser_port=0)
    at_start, later = "http://localhost:5001/get_token", "http://localhost:5002/get_token"
    emulator.add_redirect_uri(WEB, at_start)  # what `entra-auth emulator --redirect-uri` does
    with emulator:
        emulator.add_redirect_uri(WEB, later)
        assert emulator.app(WEB).redirect_uris[-2:] == (at_start, later)
        emulator.reset()
        assert emulator.app(WEB).redirect_uris == ("http://localhost:5000/get_token", at_start)
        assert signs_in_at(emulator, at_start)
