"""The control API: keys, revocation, clock, faults and request counters, in Python and HTTP."""

from __future__ import annotations

import email.utils
import time

import jwt
import pytest
import requests

from entra_auth.emulator import EntraEmulator, Fault
from entra_auth.emulator.admin import ADMIN_HEADER
from entra_auth.errors import EmulatorError

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
