"""Catalogue IT01-IT11 (ID tokens at sign-in) and FL01-FL17 (flow and session)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msal
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from entra_auth.emulator import EntraEmulator

from ..helpers import ADELE, API, CONTOSO, FABRIKAM, MEGAN, REDIRECT, WEB, demo_config
from .minting import REMOVE, Mint, b64
from .web import SECURE_SESSION_COOKIE, WEB_ADAPTERS, Web, demo_app, query_of, session_files

# Every case against the Flask, the FastAPI and the Django demo: one test body, three adapters.
every_web = pytest.mark.parametrize("web", WEB_ADAPTERS, indirect=True)
# FL12: Django's session cookie is its engine's random key (nothing signed to tamper with), its
# records signed JSON in the database, no pickle file (test_an_edited_session_speaks_for_nobody).
flask_fastapi = pytest.mark.parametrize("web", ["flask", "fastapi"], indirect=True)


def assert_refused_page(response: Any, web: Web, status: int = 400) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    assert response.headers["Cache-Control"] == "no-store"
    assert web.who() is None  # no session
    assert "entra_user" not in web.session()
    return text


# -- IT: the ID token at sign-in --------------------------------------------------------------
def forge(web: Web, **changes: Any) -> None:
    """ID tokens the emulator sends from now on: claims changed, re-signed by the test."""
    mint = Mint(web.emulator)
    key = changes.pop("_key", None)
    kid = changes.pop("_kid", ...)
    alg = changes.pop("_alg", "RS256")

    def rewrite(claims: dict[str, Any]) -> str:
        claims = {**claims, **changes}
        claims = {k: v for k, v in claims.items() if v is not REMOVE}
        if alg == "none":
            return mint.raw(mint.header(alg="none"), claims, sign=False)
        if alg == "HS256":
            header = b64(json.dumps(mint.header(alg="HS256")).encode())
            payload = b64(json.dumps(claims).encode())
            secret = mint.key.public_key().public_numbers().n.to_bytes(256, "big")
            mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
            return f"{header}.{payload}.{b64(mac)}"
        return mint.token(claims, key=key, kid=kid)

    web.emulator.rewrite_id_tokens(rewrite)


@every_web
def test_IT01_wrong_issuer(web: Web) -> None:
    forge(web, iss=web.emulator.issuer(FABRIKAM))
    assert "ID token" in assert_refused_page(web.sign_in(), web)


@every_web
def test_IT02_wrong_audience(web: Web) -> None:
    forge(web, aud=API)
    assert_refused_page(web.sign_in(), web)


@every_web
@pytest.mark.parametrize("azp", [REMOVE, API])
def test_IT03_audience_array_without_our_azp(web: Web, azp: Any) -> None:
    forge(web, aud=[WEB, API], azp=azp)
    assert "authorized party" in assert_refused_page(web.sign_in(), web)


@every_web
@pytest.mark.parametrize("how", ["foreign-key", "unknown-kid"])
def test_IT04_bad_signature(web: Web, how: str) -> None:
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if how == "foreign-key":
        forge(web, _key=foreign)
    else:
        forge(web, _key=foreign, _kid="not-a-published-kid")
    assert_refused_page(web.sign_in(), web)


@every_web
def test_IT05_expired(web: Web) -> None:
    forge(
        web, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200, nbf=int(time.time()) - 7200
    )
    assert "expired" in assert_refused_page(web.sign_in(), web)


@every_web
def test_IT06_iat_in_the_future(web: Web) -> None:
    forge(web, iat=int(time.time()) + 86400)
    assert "future" in assert_refused_page(web.sign_in(), web)


@every_web
@pytest.mark.parametrize("nonce", [REMOVE, "not-the-flow-nonce"])
def test_IT07_nonce_missing_or_foreign(web: Web, nonce: Any) -> None:
    forge(web, nonce=nonce)
    assert_refused_page(web.sign_in(), web)


@every_web
@pytest.mark.parametrize("claim", ["sub", "oid"])
def test_IT08_sub_or_oid_missing(web: Web, claim: str) -> None:
    forge(web, **{claim: REMOVE})
    assert_refused_page(web.sign_in(), web)


@every_web
@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_IT09_alg_none_or_hs256(web: Web, alg: str) -> None:
    forge(web, _alg=alg)
    assert_refused_page(web.sign_in(), web)


@every_web
def test_IT10_refresh_with_another_identity_ends_the_session(web: Web) -> None:
    web.emulator.settings.access_token_lifetime = (60, 60)  # MSAL refreshes under 5 minutes
    assert web.sign_in().status_code == 302
    assert web.client.get("/profile").status_code == 200
    forge(web, oid="1b8d6c4f-5e3a-4f9b-a2d7-6e4c3f2b1a0d", sub="someone-else")
    response = web.client.get("/profile")
    assert response.status_code == 302  # back to sign-in, never merged
    assert "entra_user" not in web.session()
    assert "entra_token_cache" not in web.session()


@every_web
def test_IT11_tenant_of_another_directory(web: Web) -> None:
    forge(web, tid=FABRIKAM, iss=web.emulator.issuer(FABRIKAM))
    assert_refused_page(web.sign_in(), web)


@every_web
def test_valid_sign_in_for_contrast(web: Web) -> None:
    response = web.sign_in()
    assert response.status_code == 302
    assert web.who() == "Adele Vance"


# -- FL: the flow and the session -------------------------------------------------------------
@every_web
def test_FL01_missing_or_wrong_state(web: Web) -> None:
    auth_uri = web.begin()
    params = web.authorize(auth_uri)
    web.emulator.reset_counts()
    missing = web.callback({"code": params["code"]})
    wrong = web.callback({**params, "state": "forged"})
    for response in (missing, wrong):
        assert_refused_page(response, web)
    assert web.emulator.request_counts()["token"] == 0  # no token request was made


@every_web
def test_FL02_login_csrf_attackers_callback_in_victims_browser(
    web: Web, entra_emulator: EntraEmulator, tmp_path: Path
) -> None:
    attacker = Web(entra_emulator, web.app)
    attacker.client = web.app.test_client()
    attacker_params = attacker.authorize(attacker.begin(), user=MEGAN)
    web.begin()  # the victim has a sign-in of their own under way
    response = web.callback(attacker_params)
    assert_refused_page(response, web)
    fresh = Web(entra_emulator, web.app)  # a victim with no sign-in under way
    restart = fresh.callback(attacker_params)
    assert restart.status_code == 302
    assert restart.headers["Location"].endswith("/login")
    assert fresh.who() is None


@every_web
def test_FL03_code_redeemed_twice(web: Web, entra_emulator: EntraEmulator) -> None:
    params = web.authorize(web.begin("/login?next=/claims"))
    assert web.callback(params).headers["Location"] == "/claims"
    cookie = web.cookie()
    # The back button (or a double submit) replays the callback in the same, signed-in browser:
    # quietly on to the page the sign-in was for, nothing redeemed again, no new session.
    again = web.callback(params)
    assert again.status_code == 302
    assert again.headers["Location"] == "/claims"
    assert web.cookie() == cookie
    assert entra_emulator.request_counts().get("token", 0) == 1
    # Once signed out here, the same replay is refused with words (the code is not redeemed).
    with web.client.session_transaction() as session:
        session.clear()
    refused = web.callback(params)
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "already used" in text
    assert "AADSTS54005" in text  # for the developer, folded away
    assert web.who() is None
    # Replayed in another browser (a stolen callback URL): no session, sign-in starts over.
    elsewhere = Web(entra_emulator, web.app)
    assert elsewhere.callback(params).headers["Location"].endswith("/login")
    assert elsewhere.who() is None
    # At the IdP the second redemption is refused with AADSTS54005 (tests/emulator).


@every_web
def test_FL04_pkce_always_and_verifier_enforced(web: Web) -> None:
    auth_uri = web.begin()
    assert query_of(auth_uri)["code_challenge_method"] == "S256"
    assert len(query_of(auth_uri)["code_challenge"]) == 43
    params = web.authorize(auth_uri)
    pending = web.pending()
    kept = pending.flows[params["state"]]
    pending.flows[params["state"]] = msgspec.structs.replace(
        kept, flow={**kept.flow, "code_verifier": "B" * 43}
    )
    web.write_pending(pending)
    text = assert_refused_page(web.callback(params), web)
    assert "AADSTS501481" in text


@every_web
@pytest.mark.parametrize("error", ["access_denied", "consent_required"])
def test_FL05_error_at_callback_escaped_friendly(web: Web, error: str) -> None:
    auth_uri = web.begin()
    state = query_of(auth_uri)["state"]
    evil = "AADSTS65004: <script>alert(1)</script> declined"
    text = assert_refused_page(
        web.callback({"error": error, "error_description": evil, "state": state}), web
    )
    assert "<script>" not in text
    assert 'id="remedy"' in text
    assert 'id="retry"' in text
    # Entra's (escaped) description is for the developer: folded away, not the main message.
    main, detail = text.split('<details id="detail">')
    assert "AADSTS65004" in detail
    assert "AADSTS65004" not in main


@every_web
def test_FL05_declined_consent_through_the_idp(web: Web) -> None:
    params = web.authorize(web.begin(), consent=False)
    text = assert_refused_page(web.callback(params), web)
    assert "cancelled" in text
    assert "AADSTS65004" in text


@every_web
@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
        "%2F%2Fevil.example",
        "/%2F%2Fevil.example",
        "http:evil.example",
        "\\\\evil.example",
        "/%5Cevil.example",
        "/\tevil",
        "//evil.example/%2e%2e",
    ],
)
def test_FL06_return_target_same_origin_relative_only(web: Web, target: str) -> None:
    auth_uri = web.begin("/login?" + urlencode({"next": target}))
    response = web.callback(web.authorize(auth_uri))
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


@every_web
def test_FL06_relative_return_target_is_kept(web: Web) -> None:
    to_login = web.client.get("/claims")  # login_required sends /claims along
    assert to_login.status_code == 302
    auth_uri = web.client.get(to_login.headers["Location"]).headers["Location"]
    response = web.callback(web.authorize(auth_uri))
    assert response.headers["Location"] == "/claims"


@every_web
def test_FL07_host_and_forwarded_host_poisoning(web: Web) -> None:
    response = web.client.get(
        "/login", headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    )
    assert query_of(response.headers["Location"])["redirect_uri"] == REDIRECT
    logout = web.client.post(
        "/logout", headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    )
    assert logout.status_code == 302
    assert logout.headers["Location"].startswith(f"{web.emulator.urls.browser_base}/")
    assert query_of(logout.headers["Location"])["post_logout_redirect_uri"] == (
        "http://localhost:5000/"  # from the configured redirect URI, never the request's host
    )


@every_web
def test_FL08_session_id_rotated_at_sign_in(web: Web) -> None:
    web.sign_in(user=MEGAN)
    before = web.cookie()
    assert before
    web.callback(web.authorize(web.client.get("/login?prompt=login").headers["Location"]))
    assert web.who() == "Adele Vance"
    after = web.cookie()
    assert after
    assert after != before
    # The old id opens nothing.
    other = web.app.test_client()
    other.set_cookie("entra_session", before)
    assert b'id="who"' not in other.get("/").data


@every_web
def test_FL09_cookie_flags(web: Web, entra_emulator: EntraEmulator, tmp_path: Path) -> None:
    pending = web.client.get("/login").headers["Set-Cookie"]
    signed_in = web.sign_in().headers.getlist("Set-Cookie")
    (session_cookie,) = [c for c in signed_in if c.startswith("entra_session=")]
    # Attribute names and the SameSite value are case-insensitive (RFC 6265 §5.2, 6265bis).
    for cookie in (pending.lower(), session_cookie.lower()):
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "secure" not in cookie  # http://localhost: a Secure cookie would never come back
    entra_emulator.add_redirect_uri(WEB, "https://app.example/get_token")
    https_app = demo_app(
        web.adapter,
        demo_config(
            entra_emulator,
            ENTRA_REDIRECT_URI="https://app.example/get_token",
            ENTRA_SESSION_DIR=str(tmp_path / "s2"),
        ),
    )
    browser = https_app.test_client()
    start = browser.get("/login", base_url="https://app.example")
    params = web.authorize(start.headers["Location"])
    back = browser.get(f"/get_token?{urlencode(params)}", base_url="https://app.example")
    assert back.status_code == 302
    secure = [start.headers["Set-Cookie"], *back.headers.getlist("Set-Cookie")]
    # Django's login() rotates its CSRF cookie (readable by scripts: the project's CSRF_COOKIE_*).
    secure = [c for c in secure if not c.startswith("csrftoken=")]
    assert sorted(c.split("=", 1)[0] for c in secure) == sorted(
        [
            "__Host-entra_signin",  # at /login
            "__Host-entra_signin",  # at the callback (the flow taken out)
            SECURE_SESSION_COOKIE[web.adapter],
        ]
    )
    for cookie in (c.lower() for c in secure):
        assert "secure" in cookie
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "path=/" in cookie
        assert "domain" not in cookie


@every_web
def test_FL10_sign_out(web: Web) -> None:
    web.sign_in()
    old = web.cookie()
    assert web.session().get("entra_token_cache")
    assert web.client.get("/logout").status_code == 200  # a GET asks, it does not sign out
    assert web.who() == "Adele Vance"
    response = web.client.post("/logout")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{web.emulator.urls.browser_base}/{CONTOSO}/oauth2/v2.0/logout?")
    assert query_of(location)["post_logout_redirect_uri"] == "http://localhost:5000/"
    assert web.who() is None
    replay = web.app.test_client()
    replay.set_cookie("entra_session", str(old))
    assert replay.get("/profile").status_code == 302  # the old cookie gets no access


@every_web
def test_FL11_cookie_is_an_opaque_signed_id(web: Web) -> None:
    web.sign_in()
    value = web.cookie() or ""
    if web.adapter != "django":  # Django's session key is random and unsigned, its own scheme
        assert "." in value
    assert len(value) < 100
    # No JWT (header.payload.): a bare "eyJ" can occur by chance in a random id.
    assert re.search(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.", value) is None
    for secret in (web.session()["entra_token_cache"][:40], "access_token", ADELE):
        assert secret not in value


@flask_fastapi
def test_FL12_tampered_cookie_and_no_pickle(web: Web, tmp_path: Path) -> None:
    web.sign_in()
    value = web.cookie() or ""
    sid, _, signature = value.rpartition(".")
    tampered = web.app.test_client()
    tampered.set_cookie(
        "entra_session", sid[:-1] + ("A" if sid[-1] != "A" else "B") + "." + signature
    )
    assert b'id="who"' not in tampered.get("/").data
    # Data an attacker wrote into the store is never unpickled.
    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    for path in session_files(web):
        raw = path.read_bytes()
        path.write_bytes(raw[:4] + pickle.dumps({"entra_user": Boom()}))
    assert web.who() is None
    assert not marker.exists()


@every_web
def test_FL13_two_tabs_sign_in_at_once(web: Web) -> None:
    first, second = web.begin(), web.begin()
    p1, p2 = web.authorize(first), web.authorize(second)
    assert web.callback(p2).status_code == 302
    assert web.callback(p1).status_code == 302
    assert web.who() == "Adele Vance"


@every_web
def test_FL14_callback_after_the_session_expired(web: Web) -> None:
    params = web.authorize(web.begin())
    web.client.delete_cookie("entra_signin")  # the pending sign-in's cookie expired
    response = web.callback(params)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/login")


@every_web
def test_FL15_auth_pages_headers(web: Web) -> None:
    responses = [web.client.get("/login")]
    params = web.authorize(responses[0].headers["Location"])
    responses += [web.callback(params), web.callback({"state": "x"}), web.client.post("/logout")]
    for response in responses:
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


@every_web
def test_FL16_mix_up_issuer_in_the_response(web: Web) -> None:
    params = web.authorize(web.begin())
    text = assert_refused_page(web.callback({**params, "iss": "https://evil.example/v2.0"}), web)
    assert "issuer" in text
    params = web.authorize(web.begin())
    assert web.callback({**params, "iss": web.emulator.issuer()}).status_code == 302


@every_web
def test_FL17_revoked_refresh_token_one_sign_in_no_loop(web: Web) -> None:
    web.emulator.settings.access_token_lifetime = (60, 60)
    web.sign_in()
    web.emulator.revoke_refresh_tokens(ADELE)
    first = web.client.get("/profile")
    assert first.status_code == 302
    assert "/oauth2/v2.0/authorize?" in first.headers["Location"]  # straight to the IdP
    # The user signs in once; the same page then works.
    back = web.callback(web.authorize(first.headers["Location"]))
    assert back.headers["Location"] == "/profile"
    assert web.client.get("/profile").status_code == 200
    # And if the IdP keeps refusing right after that sign-in, a page says so instead of looping.
    web.emulator.revoke_refresh_tokens(ADELE)
    with web.client.session_transaction() as session:
        cache = msal.SerializableTokenCache()
        cache.deserialize(session["entra_token_cache"])
        for at in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
            cache.remove_at(at)
        session["entra_token_cache"] = cache.serialize()
    loop = web.client.get("/profile")
    assert loop.status_code == 403
    assert "could not get a token" in loop.get_data(as_text=True)


@every_web
def test_guest_signs_in_under_msal_home_account(web: Web) -> None:
    assert web.sign_in(user="bob@fabrikam.example").status_code == 302
    assert web.who() == "Bob Kelly (Fabrikam)"
    assert web.session()["entra_account"].endswith(f".{FABRIKAM}")  # the guest's home tenant
    assert web.client.get("/profile").status_code == 200
