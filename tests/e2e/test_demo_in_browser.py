"""The tutorial's journey in a real browser against the local Entra ID."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from entra_auth.emulator import EntraEmulator

from .conftest import ARTIFACTS, WAIT_MS, Demo

pytestmark = pytest.mark.e2e


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in_as(page: Page, entra_emulator: EntraEmulator, upn: str) -> None:
    page.click("#sign-in")
    page.wait_for_url(re.compile(re.escape(entra_emulator.urls.browser_base)))
    page.click(f"button[data-upn='{upn}']")


def test_sign_in_profile_api_refresh_sign_out(
    page: Page, context: BrowserContext, demo: Demo, entra_emulator: EntraEmulator
) -> None:
    # Access tokens live 90 s: under MSAL's 5-minute window, every use refreshes silently.
    entra_emulator.settings.access_token_lifetime = (90, 90)
    page.goto(demo.url)
    expect(page.locator("#sign-in")).to_be_visible()
    shot(page, "1-home-signed-out")
    sign_in_as(page, entra_emulator, "adele@contoso.example")
    expect(page.locator("h1")).to_have_text("Permissions requested")
    shot(page, "2-consent")
    page.click("#accept")
    page.wait_for_url(f"{demo.url}/")
    expect(page.locator("#who")).to_have_text("Adele Vance")
    shot(page, "3-home-signed-in")
    assert "code=" not in page.url  # the code left the address bar

    page.click("#profile")
    expect(page.locator("#display-name")).to_have_text("Adele Vance")
    shot(page, "4-profile")
    page.click("text=ID token")
    expect(page.locator("#claims-table")).to_contain_text("0a9c7b3e-4d2f-4e8a-b1c6-5f3d2e1a0b9c")
    shot(page, "5-claims")

    # The API's scope was never consented: one trip to the IdP (SSO, consent), back to the page.
    page.goto(f"{demo.url}/call-api")
    expect(page.locator("h1")).to_have_text("Permissions requested")
    page.click("#accept")
    page.wait_for_url(f"{demo.url}/call-api")
    expect(page.locator("#api-status")).to_have_text("200")
    expect(page.locator("#api-message")).to_contain_text("Hello Adele Vance")
    shot(page, "6-api")

    # Silent refresh: the token is near expiry; calling again refreshes with no sign-in page.
    before = entra_emulator.request_counts()
    page.reload()
    expect(page.locator("#api-status")).to_have_text("200")
    after = entra_emulator.request_counts()
    assert after["token"] > before["token"]
    assert after["authorize"] == before["authorize"]

    # Sign out: the session ends here and at the IdP, and the browser comes back signed out.
    old_cookies = context.cookies()
    page.goto(demo.url)
    page.click("#sign-out")
    page.wait_for_url(f"{demo.url}/**")
    expect(page.locator(".who")).to_have_text("Not signed in")
    shot(page, "7-signed-out")
    # The back button shows nothing of the user's (pages were no-store).
    page.go_back()
    page.wait_for_load_state()
    assert "Adele" not in page.content()
    # The old cookie opens nothing: a fresh browser with it is sent to sign in.
    other = context.browser.new_context()  # type: ignore[union-attr]
    other.set_default_timeout(WAIT_MS)
    try:
        other.add_cookies(old_cookies)
        replay = other.new_page()
        replay.goto(f"{demo.url}/profile")
        replay.wait_for_url(re.compile(re.escape(entra_emulator.urls.browser_base)))
        expect(replay.locator("h1")).to_have_text("Sign in")
    finally:
        other.close()


def test_declining_consent_gives_the_friendly_page(
    page: Page, demo: Demo, entra_emulator: EntraEmulator
) -> None:
    page.goto(demo.url)
    sign_in_as(page, entra_emulator, "megan@contoso.example")
    page.click("#decline")
    page.wait_for_url(re.compile(re.escape(demo.url)))
    expect(page.locator("h1")).to_have_text("Sign-in was cancelled.")
    expect(page.locator("#remedy")).to_contain_text("try again")
    expect(page.locator("#code")).to_have_text("AADSTS65004")
    shot(page, "8-consent-declined")
    assert "<script" not in page.content().split("<body>")[1]
