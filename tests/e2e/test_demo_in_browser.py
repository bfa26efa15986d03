"""The tutorial's journey in a real browser against the local Entra ID."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, Response, expect

from entra_auth.emulator import EntraEmulator

from .conftest import ARTIFACTS, PHONE, SHOTS, WAIT_MS, Demo

pytestmark = pytest.mark.e2e


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}{SHOTS.suffix}.png"), full_page=True)


def sign_in_as(page: Page, entra_emulator: EntraEmulator, upn: str) -> None:
    page.click("#sign-in")
    page.wait_for_url(re.compile(re.escape(entra_emulator.urls.browser_base)))
    page.click(f"button[data-upn='{upn}']")


@pytest.mark.parametrize("demo", ["flask", "fastapi"], indirect=True)
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


@pytest.mark.parametrize("demo", ["flask", "fastapi"], indirect=True)
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


def fits_the_phone(page: Page, name: str) -> None:
    """No horizontal scrolling at the phone's width (the widest elements named if there is);
    then the page's screenshot, ``375px-<n>-<page>.png``."""
    page.wait_for_load_state("load")  # measured with the stylesheet applied
    width = PHONE["width"]
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    if scroll_width > width:
        widest = page.evaluate(
            """(width) => [...document.querySelectorAll("body *")]
                .filter((e) => e.getBoundingClientRect().right > width)
                .slice(0, 5)
                .map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`)""",
            width,
        )
        raise AssertionError(f"{name}: {scroll_width} px wide at {width} px; too wide: {widest}")
    shot(page, f"375px-{name}")


NUMERIC_DATE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC \((in \d.*|\d.* ago|just now)\)$")


@pytest.mark.parametrize("demo", ["flask", "fastapi"], indirect=True)
def test_every_page_fits_a_phone(
    phone_page: Page, demo: Demo, entra_emulator: EntraEmulator
) -> None:
    page = phone_page
    # Every request to the demo and the IdP's pages (styles, icon, /favicon.ico) is found, but
    # the one page this test asks for that does not exist.
    not_found: list[str] = []
    missing_page = f"{demo.url}/no-such-page"
    ours = (f"{demo.url}/", f"{entra_emulator.urls.browser_base}/")

    def record(response: Response) -> None:
        url = response.url
        if response.status == 404 and url.startswith(ours) and url != missing_page:
            not_found.append(url)

    page.on("response", record)

    page.goto(demo.url)
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#signed-out")).to_have_count(0)  # only after a sign-out
    fits_the_phone(page, "1-home-signed-out")
    # The icon the pages link and /favicon.ico (asked for by pages that link none) both exist.
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon is not None
    for path in (icon, "/favicon.ico"):
        answer = page.request.get(f"{demo.url}{path}")
        assert answer.status == 200, path
        assert answer.headers["content-type"].startswith("image/svg+xml"), path

    sign_in_as(page, entra_emulator, "adele@contoso.example")
    page.click("#accept")
    page.wait_for_url(f"{demo.url}/")
    expect(page.locator("#who")).to_have_text("Adele Vance")
    fits_the_phone(page, "2-home-signed-in")

    # The navigation is usable at this width: each page is reached from it.
    page.click("#nav-profile")
    expect(page.locator("#display-name")).to_have_text("Adele Vance")
    expect(page.locator("#nav-profile")).to_have_attribute("aria-current", "page")
    fits_the_phone(page, "3-profile")

    page.click("#nav-claims")
    # NumericDate claims as dates, the raw number kept in small print and in the title.
    for claim in ("iat", "exp"):
        shown = page.locator(f"#claim-{claim} time")
        expect(shown).to_have_text(NUMERIC_DATE)
        raw = page.locator(f"#claim-{claim} .raw").inner_text()
        assert raw.isdigit(), raw
        expect(shown).to_have_attribute("title", f"{claim} = {raw}")
    expect(page.locator("#claim-exp time")).to_contain_text("(in ")  # 60 to 90 min ahead
    fits_the_phone(page, "4-claims")

    page.click("#nav-call-api")
    expect(page.locator("h1")).to_have_text("Permissions requested")
    page.click("#accept")
    page.wait_for_url(f"{demo.url}/call-api")
    expect(page.locator("#api-status")).to_have_text("200")
    fits_the_phone(page, "5-api")

    page.click("#nav-admin")
    page.wait_for_url(f"{demo.url}/admin")
    expect(page.locator("h1")).to_be_visible()  # the page, or the 403 page without the role
    fits_the_phone(page, "6-admin")

    answer = page.goto(missing_page)
    assert answer is not None
    assert answer.status == 404
    expect(page.locator("h1")).to_have_text("Page not found")
    expect(page.locator("#who")).to_have_text("Adele Vance")  # the demo's layout, nav and all
    fits_the_phone(page, "7-not-found")

    page.click("#sign-out")
    expect(page.locator(".who")).to_have_text("Not signed in")
    expect(page).to_have_url(f"{demo.url}/")
    fits_the_phone(page, "8-signed-out")

    assert not_found == []


@pytest.mark.parametrize("demo", ["flask", "fastapi"], indirect=True)
def test_signed_out_notice_after_sign_out(
    page: Page, demo: Demo, entra_emulator: EntraEmulator
) -> None:
    page.goto(demo.url)
    sign_in_as(page, entra_emulator, "megan@contoso.example")
    page.click("#accept")
    expect(page.locator("#who")).to_have_text("Megan Bowen")
    page.click("#sign-out")
    expect(page.locator(".who")).to_have_text("Not signed in")
    expect(page.locator("#signed-out")).to_have_text(re.compile("^You are signed out."))
    shot(page, "9-signed-out-notice")
    # Said once: the next page is the plain home page again.
    page.reload()
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#signed-out")).to_have_count(0)


@pytest.mark.parametrize("demo", ["flask", "fastapi"], indirect=True)
def test_a_revoked_session_mid_way_is_one_trip_through_the_sign_in_page(
    page: Page, demo: Demo, entra_emulator: EntraEmulator
) -> None:
    """Continuous Access Evaluation in the browser: the API shows Graph's profile of the
    caller (on-behalf-of); an admin revokes Adele's sessions; the next call goes through the
    sign-in page once (Graph's claims challenge, passed up by the API) and back to the page."""
    page.goto(demo.url)
    sign_in_as(page, entra_emulator, "adele@contoso.example")
    page.click("#accept")
    page.wait_for_url(f"{demo.url}/")
    page.goto(f"{demo.url}/call-api")
    page.click("#accept")  # the demo API's scope, consented once
    page.wait_for_url(f"{demo.url}/call-api")
    expect(page.locator("#api-status")).to_have_text("200")
    expect(page.locator("pre")).to_contain_text('"displayName": "Adele Vance"')

    entra_emulator.revoke_sessions("adele@contoso.example")
    before = entra_emulator.request_counts()
    page.reload()
    page.wait_for_url(re.compile(re.escape(entra_emulator.urls.browser_base)))
    page.click("button[data-upn='adele@contoso.example']")  # signed in again: a fresh session
    page.wait_for_url(f"{demo.url}/call-api")
    expect(page.locator("#api-status")).to_have_text("200")
    expect(page.locator("pre")).to_contain_text('"displayName": "Adele Vance"')
    shot(page, "7-after-revocation")
    after = entra_emulator.request_counts()
    assert after["authorize"] - before["authorize"] == 1  # one trip to the identity provider
