"""The Django demo as ``make demo-django`` runs it (``examples.django_demo.run``, a child
process, every port the system's pick): the other demos' pages over real HTTP, the Django admin
for Adele (app role Admin → staff) and a 403 page for Megan, ``/call-api`` to the protected
``/secure-data``, the database at ``DJANGO_DB_PATH``; then a real browser (Debian's Chromium)
through the same journey; then a clean stop."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from entra_auth.testing.driver import BrowserlessUser

from ..helpers import ADELE, GUEST, HANG_GUARD, MEGAN, ROOT, DemoProcess, in_chromium

PORTS = ("DEMO_PORT", "DEMO_EMULATOR_PORT", "DEMO_EMULATOR_BROWSER_PORT")


class DjangoDemoProcess(DemoProcess):
    """``python -m examples.django_demo.run`` as a child process (``DemoProcess``'s reading of
    its output and its stop)."""

    def __init__(self, env: dict[str, str], cwd: Path):
        path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "examples.django_demo.run"],
            cwd=cwd,
            env={**env, "PYTHONPATH": path},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True, name="django-demo")
        self._reader.start()


def demo_env(tmp: Path, **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_", "DJANGO_"))},
        **dict.fromkeys(PORTS, "0"),
        "DEMO_STATE_DIR": str(tmp / "emulator"),
        "DJANGO_DB_PATH": str(tmp / "data" / "demo.sqlite3"),
        **extra,
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("django-demo")
    process = DjangoDemoProcess(demo_env(tmp), cwd=tmp)
    shown: dict[str, Any] = {"process": process, "tmp": tmp, "codes": []}
    try:
        shown["url"] = process.wait_ready()
        yield shown
    finally:
        shown["returncode"] = process.stop()
        output = process.output
        assert shown["returncode"] == 0, output  # stopped by SIGTERM within the bound
        assert "Demo stopped." in output
        assert "Traceback" not in output
        for code in shown["codes"]:
            assert code not in output  # request logs carry no authorization code


class Visitor:
    """A browser over real HTTP: requests for the app, BrowserlessUser for the IdP."""

    def __init__(self, demo: dict[str, Any]):
        self.url, self.demo = demo["url"], demo
        self.http = requests.Session()
        self.http.trust_env = False
        self.idp = BrowserlessUser()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(f"{self.url}{path}", timeout=30, **kwargs)

    def follow_sign_in(self, answer: requests.Response, user: str) -> requests.Response:
        """From a redirect to the IdP (sign-in or consent) back to the app's page."""
        assert answer.status_code == 302, answer.text[:300]
        params = self.idp.authorize(answer.headers["Location"], user=user)
        self.demo["codes"].append(params["code"])
        back = self.get("/get_token", params=params, allow_redirects=False)
        assert back.status_code == 302, back.text[:500]
        return self.get(back.headers["Location"])

    def sign_in(self, user: str, path: str = "/") -> requests.Response:
        start = self.get(f"/login?next={path}", allow_redirects=False)
        return self.follow_sign_in(start, user)


def test_the_demo_pages_the_admin_and_the_api(demo: dict[str, Any]) -> None:
    megan = Visitor(demo)
    home = megan.get("/")
    assert 'id="sign-in"' in home.text
    assert "Not signed in" in home.text
    assert megan.get("/static/demo.css").status_code == 200
    assert megan.get("/profile", allow_redirects=False).headers["Location"] == (
        "/login?next=/profile"
    )
    page = megan.sign_in(MEGAN, "/profile")
    assert re.search(r'id="display-name">Megan Bowen<', page.text)  # Graph /me
    assert 'aria-current="page"' in page.text  # the menu knows the page
    claims = megan.get("/claims")
    assert "1b8d6c4f-5e3a-4f9b-a2d7-6e4c3f2b1a0d" in claims.text
    # The API's scope: consent once (SSO), then /secure-data answers as the user.
    api = megan.follow_sign_in(megan.get("/call-api", allow_redirects=False), MEGAN)
    assert re.search(r'id="api-status"[^>]*>200<', api.text), api.text[:800]
    assert "Hello Megan Bowen" in api.text
    refused = megan.get("/admin/")  # not staff: the 403 page, in the demo's layout
    assert refused.status_code == 403
    assert 'id="demo-forbidden"' in refused.text
    assert "administrators" in refused.text
    missing = megan.get("/no-such-page")
    assert missing.status_code == 404
    assert 'id="not-found"' in missing.text

    adele = Visitor(demo)
    index = adele.sign_in(ADELE, "/admin/")
    assert index.status_code == 200
    assert "Site administration" in index.text
    users = adele.get("/admin/auth/user/")  # "Demo admins" (the role's group) may view them
    assert users.status_code == 200
    assert "Megan Bowen" in users.text
    assert adele.get("/admin/entra_auth/entrauser/").status_code == 200
    out = adele.http.post(f"{adele.url}/logout", allow_redirects=False, timeout=30)
    assert out.status_code == 302
    assert "/oauth2/v2.0/logout?" in out.headers["Location"]
    assert "Not signed in" in adele.get("/").text
    assert (demo["tmp"] / "data" / "demo.sqlite3").is_file()  # DJANGO_DB_PATH


def test_a_guest_signs_in_to_the_demo(demo: dict[str, Any]) -> None:
    bob = Visitor(demo)
    page = bob.sign_in(GUEST)
    assert "Bob Kelly (Fabrikam)" in page.text
    assert bob.get("/admin/").status_code == 403


def test_the_demo_in_a_browser_admin_for_adele(demo: dict[str, Any]) -> None:
    url = demo["url"]

    def journey(page: Any) -> None:
        from playwright.sync_api import expect

        page.goto(url)
        page.click("#sign-in")
        page.click(f"button[data-upn='{ADELE}']")
        page.wait_for_url(f"{url}/")
        expect(page.locator("#who")).to_have_text("Adele Vance")
        page.click("#nav-admin")  # /admin: Django's admin, Adele is staff by her app role
        expect(page.locator("#site-name")).to_be_visible()
        expect(page.locator("body")).to_contain_text("Site administration")
        page.goto(f"{url}/profile")
        expect(page.locator("#display-name")).to_have_text("Adele Vance")
        page.click("#sign-out")
        page.wait_for_url(f"{url}/**")
        expect(page.locator(".who")).to_have_text("Not signed in")
        expect(page.locator("#signed-out")).to_be_visible()

    in_chromium(journey)


def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        result = subprocess.run(
            [sys.executable, "-m", "examples.django_demo.run"],
            cwd=tmp_path,
            env={**demo_env(tmp_path, DEMO_PORT=port), "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
        )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"Port {port} is in use: set DEMO_PORT" in lines[0]
    assert "make demo-django)" in lines[0]
