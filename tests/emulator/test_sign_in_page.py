"""The sign-in page's wrong-password answer: Entra's words for the user, the username kept so
that only the password is retyped, and the AADSTS code folded away for developers."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from entra_auth.emulator import EntraEmulator
from entra_auth.testing.driver import BrowserlessUser, SignInRefused

from ..helpers import ADELE, REDIRECT, WEB

# What Entra's sign-in page shows (its element #passwordError) for a wrong password.
ENTRA_WORDS = (
    "Your account or password is incorrect. If you don't remember your password, reset it now."
)


class _Fields(HTMLParser):
    """The sign-in page's inputs, and the text of #passwordError, as a browser reads them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.inputs: dict[str, dict[str, str | None]] = {}
        self.message = ""
        self._in_message = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("id"):
            self.inputs[str(values["id"])] = values
        self._in_message = values.get("id") == "passwordError"

    def handle_endtag(self, tag: str) -> None:
        self._in_message = False

    def handle_data(self, data: str) -> None:
        if self._in_message:
            self.message += data


def _start(emulator: EntraEmulator, web_app: Any) -> tuple[requests.Session, str, str]:
    flow = web_app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT)
    browser = BrowserlessUser().session
    page = browser.get(flow["auth_uri"], allow_redirects=False, timeout=30)
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    txn = re.search(r'name="txn" value="([^"]+)"', page.text)
    assert action is not None
    assert txn is not None
    return browser, urljoin(page.url, action.group(1)), txn.group(1)


def test_wrong_password_in_entras_words_with_the_username_kept(
    entra_emulator: EntraEmulator, web_app
) -> None:
    entra_emulator.grant_consent(ADELE, WEB, "User.Read")  # so that the answer is the code
    browser, action, txn = _start(entra_emulator, web_app)
    typed = "Adele@Contoso.example"
    wrong = browser.post(
        action, data={"txn": txn, "username": f" {typed} ", "password": "nope"}, timeout=30
    )
    assert wrong.status_code == 200
    page = _Fields()
    page.feed(wrong.text)
    assert page.message == ENTRA_WORDS
    assert page.inputs["username"]["value"] == typed  # kept: only the password is retyped
    assert "value" not in page.inputs["password"]  # the wrong password is never sent back
    assert "autofocus" in page.inputs["password"]
    # The AADSTS code stays for developers, in a collapsed <details>, not in the message.
    main, details = wrong.text.split("<details", 1)
    assert "AADSTS50126" not in main
    assert "AADSTS50126: Error validating credentials" in details.split("</details>", 1)[0]
    assert not re.search(r"<details[^>]*\sopen", wrong.text)
    # Retyping the password alone, in the same sign-in, signs in.
    right = browser.post(
        action,
        data={"txn": txn, "username": page.inputs["username"]["value"] or "", "password": "demo"},
        allow_redirects=False,
        timeout=30,
    )
    assert right.status_code == 302
    assert right.headers["Location"].startswith(f"{REDIRECT}?code=")


def test_the_username_sent_back_is_escaped(entra_emulator: EntraEmulator, web_app) -> None:
    browser, action, txn = _start(entra_emulator, web_app)
    typed = '"><script>alert(1)</script>'
    wrong = browser.post(action, data={"txn": txn, "username": typed, "password": "x"}, timeout=30)
    assert "<script>" not in wrong.text
    page = _Fields()
    page.feed(wrong.text)
    assert page.inputs["username"]["value"] == typed  # as typed, inert
    assert page.message == ENTRA_WORDS  # an unknown user gets the same words (no enumeration)


def test_the_driver_reports_the_words_and_the_code(entra_emulator: EntraEmulator, web_app) -> None:
    flow = web_app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT)
    with pytest.raises(SignInRefused) as refused:
        BrowserlessUser().authorize(flow["auth_uri"], user=ADELE, password="wrong")
    assert refused.value.message.startswith(ENTRA_WORDS)
    assert "(AADSTS50126: Error validating credentials" in refused.value.message
