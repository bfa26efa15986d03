"""The demo in a real browser: Debian's Chromium driven by Playwright (never a downloaded one)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from entra_auth.emulator import EntraEmulator

from ..helpers import (
    API,
    BROWSER_WAIT_MS,
    CHROMIUM,
    CHROMIUM_ARGS,
    secret_of,
    serve_demo,
    serve_fastapi_demo,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"


class SHOTS:
    """What the running journey's screenshot names end with (its demo's adapter)."""

    suffix = ""


@dataclass
class Demo:
    url: str
    app: Any


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is missing: `make test` installs it (apt-get install chromium)."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# Hang guards, not speed bounds: how long a wait for a page, an element or an `expect(...)`
# may take before the test fails. A working page answers in milliseconds; a slow CI machine
# starting Chromium cold may need seconds. (`expect` has its own default of 5 s otherwise.)
WAIT_MS = BROWSER_WAIT_MS
expect.set_options(timeout=WAIT_MS)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(WAIT_MS)
    yield context
    context.close()


def page_kept_on_failure(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page of ``context``; when the test failed, its screenshot in the artifacts."""
    page = context.new_page()
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failure.png"), full_page=True)


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from page_kept_on_failure(context, request)


# A phone: the width of an iPhone SE/mini-class screen, the narrowest the demo must fit.
PHONE = {"width": 375, "height": 812}


@pytest.fixture
def phone_context(browser: Browser) -> Iterator[BrowserContext]:
    """A browser context the size of a phone, touch and mobile viewport on."""
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(WAIT_MS)
    yield context
    context.close()


@pytest.fixture
def phone_page(phone_context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from page_kept_on_failure(phone_context, request)


@pytest.fixture
def demo(
    entra_emulator: EntraEmulator, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Demo]:
    """The Flask demo; ``@pytest.mark.parametrize("demo", ["flask", "fastapi"], indirect=True)``
    runs a journey on the FastAPI demo too (the same pages, under uvicorn)."""
    adapter = getattr(request, "param", "flask")
    serve = serve_fastapi_demo if adapter == "fastapi" else serve_demo
    # The FastAPI journey's screenshots beside the Flask one's, not over them.
    SHOTS.suffix = "-fastapi" if adapter == "fastapi" else ""
    try:
        # As `make demo` runs it: the API calls Graph on the caller's behalf, both declare CAE.
        on_behalf = {
            "DEMO_API_CLIENT_ID": API,
            "DEMO_API_CLIENT_SECRET": secret_of(entra_emulator, API),
            "ENTRA_CLIENT_CAPABILITIES": "CP1",
        }
        with serve(entra_emulator, tmp_path / "sessions", **on_behalf) as (base, app):
            yield Demo(base, app)
    finally:
        SHOTS.suffix = ""
