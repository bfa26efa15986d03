"""HX04 to HX07 and HX12: the web adapter's sessions, callback, logs and per-protector state."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, g

from entra_auth.aadsts import first_code
from entra_auth.client.signin import _error_from
from entra_auth.emulator import EntraEmulator
from entra_auth.integrations.flask import ApiProtector, require_token

from ..helpers import ADELE, API, LEGACY, LEGACY_URI, MEGAN, demo_config, emulator_config
from .minting import Mint
from .test_access_tokens import assert_refused
from .test_sign_in import assert_refused_page
from .web import WEB_ADAPTERS, Web, demo_app, query_of


def _stored_sessions(web: Web, directory: Path) -> set[str]:
    """The sessions the app's store holds (the Django demo's: its session engine's, the DB)."""
    if web.adapter == "django":
        from django.contrib.sessions.models import Session

        return set(Session.objects.values_list("session_key", flat=True))
    return {p.name for p in directory.iterdir()} if directory.exists() else set()


# -- HX04: anonymous visitors store nothing ------------------------------------------------------
@pytest.mark.parametrize("web_adapter", WEB_ADAPTERS)
def test_HX04_anonymous_requests_store_no_session(
    entra_emulator: EntraEmulator, tmp_path: Path, web_adapter: str
) -> None:
    sessions = tmp_path / "sessions"
    # A small bound: before the fix, anonymous sessions evicted signed-in users within it.
    app = demo_app(
        web_adapter,
        demo_config(entra_emulator, ENTRA_SESSION_DIR=str(sessions), ENTRA_SESSION_FILE_LIMIT=50),
    )
    web = Web(entra_emulator, app)
    assert web.sign_in().status_code == 302
    assert web.who() == "Adele Vance"
    stored = _stored_sessions(web, sessions)
    assert stored  # Adele's session (and cachelib's count file)
    for i in range(5_000):  # 10,000 requests from browsers that never come back
        anonymous = app.test_client()
        to_login = anonymous.get(f"/profile?visit={i}")
        assert to_login.status_code == 302
        assert to_login.headers["Location"].startswith("/login?next=")
        assert query_of(to_login.headers["Location"])["next"] == f"/profile?visit={i}"
        assert "Set-Cookie" not in to_login.headers  # nothing to remember
        start = anonymous.get("/login")
        assert start.status_code == 302
        cookies = start.headers.getlist("Set-Cookie")
        assert [c.split("=", 1)[0] for c in cookies] == ["entra_signin"]  # the browser's own
    # No session was stored for any of them: the store is as it was, so each request costs the
    # same as the first, and the signed-in user is still signed in.
    assert _stored_sessions(web, sessions) == stored
    assert web.who() == "Adele Vance"
    assert web.client.get("/profile").status_code == 200


@pytest.mark.parametrize("web", WEB_ADAPTERS, indirect=True)
def test_HX04_pre_sign_in_state_is_short_lived(web: Web) -> None:
    start = web.client.get("/login")
    cookie = start.headers["Set-Cookie"]
    assert "Max-Age=600" in cookie
    params = web.authorize(start.headers["Location"])
    # Eleven minutes later the flow is gone: the callback starts a new sign-in, nothing more.
    sealer = web._sealer()
    late = type(sealer)(str(web.app.secret_key), clock=lambda: sealer._clock() + 660)
    assert late.open(web.client.get_cookie("entra_signin").value).flows == {}  # type: ignore[union-attr]
    assert web.pending().flows  # while in time it is there
    assert web.callback(params).status_code == 302


# -- HX05: login CSRF ------------------------------------------------------------------------------
@pytest.mark.parametrize("web", WEB_ADAPTERS, indirect=True)
def test_HX05_attackers_callback_does_not_sign_the_victim_in(web: Web) -> None:
    attacker = Web(web.emulator, web.app)
    start = attacker.begin()
    # Before the fix the attacker's flow sat in a server-side session whose signed id could be
    # planted in the victim's browser. Now a pre-sign-in visitor has no session to plant.
    assert attacker.cookie() is None
    params = attacker.authorize(start, user=MEGAN)  # the attacker's code and state
    victim = Web(web.emulator, web.app)
    lured = victim.callback(params)
    assert lured.status_code == 302
    assert lured.headers["Location"] == "/login"  # a fresh sign-in of the victim's own
    assert victim.who() is None
    # A victim with a sign-in of its own under way: the attacker's response is refused.
    victim.begin()
    text = assert_refused_page(victim.callback(params), victim)
    assert "does not belong to a sign-in this browser started" in text
    assert victim.pending().flows  # the victim's own flow is untouched
    assert attacker.callback(params).status_code == 302  # and the attacker's own still works
    assert attacker.who() == "Megan Bowen"


@pytest.mark.parametrize("web", WEB_ADAPTERS, indirect=True)
def test_HX05_the_flow_cookie_cannot_be_read_or_forged(web: Web) -> None:
    start = web.client.get("/login")
    state = query_of(start.headers["Location"])["state"]
    value = web.client.get_cookie("entra_signin").value  # type: ignore[union-attr]
    flow = web.pending().flows[state].flow
    assert flow["code_verifier"] not in value  # sealed, not just signed
    assert state not in value
    params = web.authorize(start.headers["Location"])
    web.client.set_cookie("entra_signin", value[:-4] + ("AAAA" if value[-4:] != "AAAA" else "BBBB"))
    response = web.callback(params)  # an altered cookie is no cookie: sign-in starts again
    assert response.headers["Location"] == "/login"
    assert web.who() is None


# -- HX06: malformed error answers -------------------------------------------------------------
@pytest.mark.parametrize(
    "values",
    [
        {"error_codes": "abc"},
        {"error_codes": "²"},
        {"error_codes": "9" * 5000},
        {"error_codes": "[50011, 'x']"},
        {"error_codes": ""},
        {"error": "<script>alert(1)</script>", "error_codes": "-1"},
        {"error": "a\r\nb\x1b[31m", "error_description": "AADSTS" + "1" * 5000},
        {"error_description": "\x00" * 1000, "error_uri": "javascript:alert(1)"},
        {"error_uri": "https://evil.example/" + "a" * 3000},
    ],
)
@pytest.mark.parametrize("web", WEB_ADAPTERS, indirect=True)
def test_HX06_malformed_error_at_the_callback(web: Web, values: dict[str, str]) -> None:
    state = query_of(web.begin())["state"]
    response = web.callback({"error": "access_denied", **values, "state": state})
    text = assert_refused_page(response, web)
    assert "<script>" not in text
    assert "javascript:" not in text
    assert "evil.example" not in text
    assert "\x1b" not in text


@pytest.mark.parametrize(
    ("result", "code", "aadsts"),
    [
        ({"error": "invalid_grant", "error_codes": ["x", None]}, "invalid_grant", None),
        # 10**30 is no AADSTS code (8 digits at most): the next one is read.
        ({"error": "invalid_grant", "error_codes": [10**30, 70008]}, "invalid_grant", 70008),
        ({"error": "invalid_grant", "error_codes": {"a": 1}}, "invalid_grant", None),
        # `error` not shaped as an OAuth error code is replaced; True is no number.
        ({"error": 7, "error_codes": [True]}, "sign_in_failed", None),
        ({"error": ["x"], "error_description": 5}, "sign_in_failed", None),
    ],
)
def test_HX06_malformed_error_from_the_token_endpoint(
    result: dict[str, Any], code: str, aadsts: int | None
) -> None:
    error = _error_from(result, "The code could not be redeemed.")
    assert error.code == code
    assert error.aadsts == aadsts
    assert first_code(["AADSTS12"], "") == 12
    other_digits = "\u0665\u0660\u0660\u0661\u0661"  # 50011 in Arabic-Indic digits
    assert first_code(other_digits, f"AADSTS{other_digits}") is None  # no code of Entra's


# -- HX07: log injection -----------------------------------------------------------------------
def test_HX07_refusals_log_the_path_inert(
    entra_emulator: EntraEmulator, mint: Mint, caplog: pytest.LogCaptureFixture
) -> None:
    app = Flask(__name__)
    api = ApiProtector(app, config=emulator_config(entra_emulator))
    app.add_url_rule("/files/<name>", "files", api.require_token()(lambda name: name))
    client = app.test_client()
    caplog.set_level(logging.INFO, logger="entra_auth")
    forged = mint.token(exp=1)
    path = "/files/a%0D%0AINFO entra_auth.flask: Bearer token accepted%1B[2K%E2%80%AE"
    response = client.get(path, headers={"Authorization": f"Bearer {forged}"})
    assert_refused(response)
    bad_header = client.get("/files/x", headers={"Authorization": "Bearer \x1b]8;;x\x1b\\"})
    assert bad_header.status_code == 401
    records = [r for r in caplog.records if r.name.startswith("entra_auth")]
    assert len(records) == 2  # one record per refusal
    line = records[0].getMessage()
    assert "\\r\\nINFO" in line  # visible, on the same line
    assert "\\x1b" in line
    assert "\\u202e" in line
    for record in records:
        message = record.getMessage()
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in message)
        assert "\u202e" not in message


# -- HX12: two protectors, two audiences -------------------------------------------------------
def test_HX12_two_protectors_on_one_app_keep_their_audiences(
    entra_emulator: EntraEmulator,
) -> None:
    app = Flask(__name__)
    app.testing = True  # the misuse below raises to the test, not as a 500
    modern = ApiProtector(app, config=emulator_config(entra_emulator))
    legacy = ApiProtector(
        app,
        config=emulator_config(
            entra_emulator,
            client_id=LEGACY,
            api_audiences=(LEGACY_URI,),
            accepted_token_versions=("1.0",),
        ),
    )
    app.add_url_rule("/modern", "modern", modern.require_token()(lambda: g.principal.oid))
    app.add_url_rule("/legacy", "legacy", legacy.require_token()(lambda: g.principal.oid))
    # The module-level decorator cannot guess between two protectors: it will say so.
    app.add_url_rule("/which", "which", require_token()(lambda: "?"))
    client = app.test_client()
    to_modern = entra_emulator.issue_token(
        client_id=API, resource=API, user=ADELE, scopes=["access_as_user"]
    )
    to_legacy = entra_emulator.issue_token(
        client_id=API, resource=LEGACY_URI, user=ADELE, scopes=["Legacy.Read"]
    )

    def status(path: str, token: str) -> int:
        return client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code

    assert status("/modern", to_modern) == 200
    assert status("/legacy", to_legacy) == 200
    assert status("/modern", to_legacy) == 401  # before: the last protector's audience won
    assert status("/legacy", to_modern) == 401
    # One protector serves two apps, each with its own validator.
    other = Flask("other")
    modern.init_app(other)
    assert modern.validator_for(other) is not modern.validator_for(app)
    with pytest.raises(RuntimeError, match="Several ApiProtectors"):
        client.get("/which", headers={"Authorization": f"Bearer {to_modern}"})
