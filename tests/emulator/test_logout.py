"""Sign-out with the default seed: post-logout redirect only to a registered URI; the SSO session
ends. Front-channel logout across several apps is in test_front_channel_logout.py."""

from __future__ import annotations

from urllib.parse import urlencode

from entra_auth.emulator import EntraEmulator
from entra_auth.testing.driver import BrowserlessUser

from ..helpers import CONTOSO, REDIRECT, WEB, sign_in

FRONT_CHANNEL = "http://localhost:5000/logout/front-channel"  # the default seed's web app


def logout_url(emulator: EntraEmulator, **params: str) -> str:
    return f"{emulator.urls.browser_base}/{CONTOSO}/oauth2/v2.0/logout?{urlencode(params)}"


def test_logout_redirects_to_a_registered_uri_and_ends_sso(
    entra_emulator: EntraEmulator, web_app
) -> None:
    browser = BrowserlessUser()
    result = sign_in(entra_emulator, web_app, ["User.Read"], browser=browser)
    out = browser.sign_out(
        logout_url(
            entra_emulator,
            post_logout_redirect_uri="http://localhost:5000/",
            client_id=WEB,
            state="bye",
        )
    )
    # The demo web app registers a front-channel logout URL: the page frames it, then goes on.
    sid = result["id_token_claims"]["sid"]
    assert out.front_channel_urls == (f"{FRONT_CHANNEL}?sid={sid}",)
    assert out.continue_to == "http://localhost:5000/?state=bye"
    flow = web_app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT, prompt="none")
    after = browser.authorize(flow["auth_uri"])
    assert after["error"] == "login_required"
    assert after["error_description"].startswith("AADSTS50058:")
    # Nothing left to frame: straight back with a 302, as before front-channel logout.
    response = browser.session.get(
        logout_url(entra_emulator, post_logout_redirect_uri=REDIRECT, client_id=WEB, state="s"),
        allow_redirects=False,
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"{REDIRECT}?state=s"


def test_logout_identifies_the_app_by_id_token_hint(entra_emulator: EntraEmulator, web_app) -> None:
    browser = BrowserlessUser()
    result = sign_in(entra_emulator, web_app, ["User.Read"], browser=browser)
    out = browser.sign_out(
        logout_url(
            entra_emulator, post_logout_redirect_uri=REDIRECT, id_token_hint=result["id_token"]
        )
    )
    assert out.continue_to == REDIRECT
    assert out.notice == ""


def test_logout_never_redirects_to_an_unregistered_uri(entra_emulator: EntraEmulator) -> None:
    for params in (
        {"post_logout_redirect_uri": "https://evil.example/", "client_id": WEB},
        {"post_logout_redirect_uri": "http://localhost:5000/"},  # no app named
        {"post_logout_redirect_uri": "http://localhost:5000/", "id_token_hint": "not.a.jwt"},
    ):
        response = BrowserlessUser().session.get(
            logout_url(entra_emulator, **params), allow_redirects=False
        )
        assert response.status_code == 200
        assert "Location" not in response.headers
        assert 'id="notice"' in response.text
