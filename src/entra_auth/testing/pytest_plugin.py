"""pytest plugin: the local Entra ID as a fixture, for entra-auth and for its users' own tests.

Registered through the ``pytest11`` entry point, so installing entra-auth is enough::

    def test_my_api(entra_emulator):
        app = create_app(entra_emulator.env_for(WEB_APP_ID, api="api://my-api"))
        token = entra_emulator.issue_token(
            client_id=WEB_APP_ID, resource="api://my-api", user="adele@contoso.example",
            scopes=["access_as_user"],
        )
        assert app.test_client().get("/data", headers={"Authorization": f"Bearer {token}"}).ok

``entra_emulator`` is one emulator per test session, reset before each test (keys, clock,
faults, counters, grants, consents and redirect URIs added while running back to the start).
``env_for(app)`` gives the ``ENTRA_*`` settings that point an app of the seed at it, and
``config_for(app)`` the same as an ``EntraConfig``. Set the ini option ``entra_emulator_seed``
to a seed file to model your own registrations (``entra-auth emulator --write-seed FILE``
writes the default one to start from).

Every project that has entra-auth installed loads this module at pytest's start, so it imports
nothing heavy: the emulator (Flask, the PKI) loads only when a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..emulator import EntraEmulator


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("entra_emulator_seed", "seed file (TOML or JSON) for the entra_emulator fixture")


@pytest.fixture(scope="session")
def entra_emulator_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EntraEmulator]:
    """The session's running emulator, on free loopback ports."""
    from ..emulator import EntraEmulator  # here, not at collection: see the module's docstring

    seed = request.config.getini("entra_emulator_seed") or None
    emulator = EntraEmulator(
        seed,
        state_dir=tmp_path_factory.mktemp("entra-emulator"),
        port=0,
        browser_port=0,
    )
    with emulator:
        yield emulator


@pytest.fixture
def entra_emulator(entra_emulator_server: EntraEmulator) -> EntraEmulator:
    """The running emulator, reset to its starting state for this test."""
    entra_emulator_server.reset()
    return entra_emulator_server
