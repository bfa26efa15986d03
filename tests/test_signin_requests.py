"""A signed-in user's pages cost no discovery or key fetch: one MSAL app per request, but one
discovery per process (shared http_cache), and a token request only when a refresh is due.
On both web adapters."""

from __future__ import annotations

import pytest

from entra_auth.emulator import EntraEmulator

from .security.web import WEB_ADAPTERS, Web

pytestmark = pytest.mark.parametrize("web", WEB_ADAPTERS, indirect=True)


def test_pages_make_no_metadata_requests(entra_emulator: EntraEmulator, web: Web) -> None:
    web.sign_in()
    entra_emulator.reset_counts()
    for _ in range(5):
        assert web.client.get("/profile").status_code == 200
    counts = entra_emulator.request_counts()
    assert counts["discovery"] == 0
    assert counts["jwks"] == 0
    assert counts["token"] == 0  # the access token is fresh: served from the user's cache
    assert counts["graph"] == 5


def test_a_due_refresh_costs_one_token_request(entra_emulator: EntraEmulator, web: Web) -> None:
    entra_emulator.settings.access_token_lifetime = (90, 90)  # under MSAL's 5-minute window
    web.sign_in()
    entra_emulator.reset_counts()
    for _ in range(3):
        assert web.client.get("/profile").status_code == 200
    counts = entra_emulator.request_counts()
    assert (counts["token"], counts["discovery"], counts["jwks"]) == (3, 0, 0)
