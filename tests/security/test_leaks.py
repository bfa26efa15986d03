"""Catalogue LG01-LG05: no token, code, verifier, secret or cookie in logs, pages or bodies."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from entra_auth.cli import main
from entra_auth.client import signin
from entra_auth.config import EntraConfig, fingerprint
from entra_auth.emulator import EntraEmulator
from entra_auth.emulator.minting import TokenMinter
from entra_auth.testing.driver import BrowserlessUser

from ..helpers import ADELE, API, WEB, secret_of, serve_demo
from .minting import Mint
from .web import Web

LOGGERS = ("", "entra_auth", "msal", "urllib3", "requests", "werkzeug", "flask_session")


class Recorder:
    """Every secret value a run produces, and everything the app said."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.said: list[str] = []

    def add(self, *values: object) -> None:
        for value in values:
            if isinstance(value, str) and len(value) >= 8:
                self.secrets.add(value)

    def response(self, response: requests.Response) -> requests.Response:
        headers = {k: v for k, v in response.headers.items() if k.lower() != "set-cookie"}
        self.said.append(response.text + "\n" + str(headers))
        return response

    def hits(self, text: str) -> list[str]:
        found = []
        for secret in self.secrets:
            parts = [secret] + [p for p in secret.split(".") if len(p) >= 16]
            if any(part in text for part in parts):
                found.append(secret[:12] + "…")
        return found


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    record = Recorder()
    original_sign = TokenMinter.sign
    original_begin = signin.SignInFlow.begin

    def sign(self: TokenMinter, *args: Any, **kwargs: Any) -> str:
        token = original_sign(self, *args, **kwargs)
        record.add(token)
        return token

    def begin(self: signin.SignInFlow, **kwargs: Any) -> dict[str, Any]:
        flow = original_begin(self, **kwargs)
        record.add(flow.get("code_verifier"))
        return flow

    monkeypatch.setattr(TokenMinter, "sign", sign)
    monkeypatch.setattr(signin.SignInFlow, "begin", begin)
    return record


@pytest.fixture
def served_demo(entra_emulator: EntraEmulator, tmp_path: Path) -> Iterator[str]:
    with serve_demo(entra_emulator, tmp_path) as (base, _):
        yield base


def leaking_records(caplog: pytest.LogCaptureFixture, recorder: Recorder) -> list[str]:
    """Which logger leaked what (never the secret itself, only where)."""
    found = []
    for record in caplog.records:
        if record.threadName == "MainThread":
            continue
        text = record.getMessage() + (record.exc_text or "")
        for hit in recorder.hits(text):
            found.append(f"{record.name}: {hit} in {record.msg!s:.60}")
    return found


def app_log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Everything logged by the app's and the IdP's threads (the test's own HTTP client, which
    plays the browser and so carries the code in its URLs, runs on the main thread)."""
    lines = []
    for record in caplog.records:
        if record.threadName != "MainThread":
            lines.append(record.getMessage())
            if record.exc_text:
                lines.append(record.exc_text)
    return "\n".join(lines)


def test_LG01_full_flows_at_debug_leak_nothing(
    served_demo: str,
    entra_emulator: EntraEmulator,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    entra_emulator.settings.access_token_lifetime = (90, 90)  # every use refreshes
    browser, idp = requests.Session(), BrowserlessUser()
    browser.trust_env = False
    recorder.add(secret_of(entra_emulator, WEB))

    def get(path: str, **kwargs: Any) -> requests.Response:
        response = recorder.response(browser.get(f"{served_demo}{path}", **kwargs))
        recorder.add(*browser.cookies.values(), *idp.session.cookies.values())
        return response

    def sign_in(start: requests.Response) -> requests.Response:
        assert start.status_code == 302  # straight to the identity provider
        answer = idp.authorize(start.headers["Location"], user=ADELE)
        recorder.add(answer.get("code"))
        return get("/get_token", params=answer, allow_redirects=True)

    sign_in(get("/login", allow_redirects=False))  # sign-in
    assert "Adele Vance" in get("/profile").text  # Graph call, after a silent refresh
    # The API's scope: incremental consent, one trip to the identity provider and back.
    back = sign_in(get("/call-api", allow_redirects=False))
    assert "Hello Adele Vance" in back.text  # API call with the new token
    assert "Hello Adele Vance" in get("/call-api").text  # refreshed again
    get("/get_token", params={"state": "forged", "code": "x"})  # error pages
    get(
        "/get_token",
        params={
            "error": "access_denied",
            "state": "x",
            "error_description": "AADSTS65004: declined",
        },
    )
    api_call = requests.get(
        f"{served_demo}/secure-data",
        headers={"Authorization": "Bearer " + Mint(entra_emulator).token(aud=WEB)},
    )
    recorder.response(api_call)
    recorder.said.append(
        recorder.response(browser.post(f"{served_demo}/logout", allow_redirects=False)).text
    )
    recorder.add(*entra_emulator.state.codes, *entra_emulator.state.refresh_grants)

    assert len(recorder.secrets) > 10
    logs = app_log_text(caplog)
    assert "GET /get_token" in logs  # request logs were captured
    assert leaking_records(caplog, recorder) == []
    assert recorder.hits(logs) == []
    assert recorder.hits("\n".join(recorder.said)) == []


def test_LG02_error_pages_and_refusals_say_nothing_secret(
    entra_emulator: EntraEmulator, web: Web, recorder: Recorder
) -> None:
    mint = Mint(entra_emulator)
    pages: list[str] = []
    entra_emulator.rewrite_id_tokens(lambda claims: mint.token({**claims, "nonce": "wrong"}))
    pages.append(web.sign_in().get_data(as_text=True))  # MSAL's own nonce check failed
    entra_emulator.rewrite_id_tokens(lambda claims: mint.token({**claims, "aud": API}))
    pages.append(web.sign_in().get_data(as_text=True))  # our validator refused
    entra_emulator.rewrite_id_tokens(None)
    pages.append(
        web.callback(
            {
                "error": "server_error",
                "state": "x",
                "error_description": "<b>boom</b> eyJhbGciOi.secret.sig",
            }
        ).get_data(as_text=True)
    )
    for bad in (mint.token(aud=WEB), mint.token(exp=1), "eyJ.not.valid"):
        recorder.add(bad)
        api = web.app.test_client().get("/secure-data", headers={"Authorization": f"Bearer {bad}"})
        pages.append(api.get_data(as_text=True) + str(api.headers))
    text = "\n".join(pages)
    for forbidden in (
        "Traceback",
        "RuntimeError",
        "ValueError",
        "should match our nonce",
        "IdTokenError",
        "<b>boom</b>",
        "eyJhbGciOi.secret.sig",
    ):
        assert forbidden not in text, forbidden
    assert recorder.hits(text) == []


def test_LG03_malformed_tokens_are_never_logged(
    entra_emulator: EntraEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    from .conftest import make_api

    api = make_api(entra_emulator)
    mint = Mint(entra_emulator)
    bad_tokens = [
        "not-a-jwt-at-all-0123456789",
        mint.token() + "garbage",
        "a" * 5000,
        mint.raw(mint.header(alg="none"), mint.claims(), sign=False),
        mint.token(kid="unknown-kid-0123456789"),
    ]
    caplog.set_level(logging.DEBUG)
    for token in bad_tokens:
        assert api.get("/scoped", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "refused" in logged
    for token in bad_tokens:
        assert token not in logged
        for part in token.split("."):
            if len(part) >= 16:
                assert part not in logged


def test_LG04_decode_says_not_verified_and_elides_the_signature(
    entra_emulator: EntraEmulator,
) -> None:
    token = Mint(entra_emulator).token()
    output = CliRunner().invoke(main, ["decode", token]).output
    assert "NOT VERIFIED" in output
    assert token.split(".")[2] not in output
    assert token not in output
    assert "elided" in output


def test_LG05_secret_only_as_a_fingerprint(entra_emulator: EntraEmulator) -> None:
    secret = secret_of(entra_emulator, WEB)
    config = EntraConfig(
        authority=entra_emulator.authority,
        client_id=WEB,
        client_secret=secret,
        ca_bundle=str(entra_emulator.ca_path),
        token_cache_keys=("k" * 44,),
    )
    for text in (repr(config), str(config), f"{config}"):
        assert secret not in text
        assert "k" * 44 not in text
        assert fingerprint(secret) in text
    env = {
        "ENTRA_AUTHORITY": entra_emulator.authority,
        "ENTRA_CLIENT_ID": WEB,
        "ENTRA_CLIENT_SECRET": secret,
        "ENTRA_CA_BUNDLE": str(entra_emulator.ca_path),
    }
    for args in (["doctor"], ["doctor", "--json"]):
        output = CliRunner().invoke(main, args, env=env).output
        assert secret not in output
        assert fingerprint(secret) in output
