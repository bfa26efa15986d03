from __future__ import annotations

import pytest

from entra_auth.emulator import EntraEmulator

from .helpers import WEB, confidential_client


@pytest.fixture
def web_app(entra_emulator: EntraEmulator):  # type: ignore[no-untyped-def]
    """The demo web app as an unpatched MSAL confidential client."""
    return confidential_client(entra_emulator, WEB)
