from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient

from entra_auth.emulator import EntraEmulator
from entra_auth.integrations.flask import ApiProtector

from ..helpers import emulator_config
from .minting import Mint

ApiFactory = Callable[..., FlaskClient]


@pytest.fixture
def mint(entra_emulator: EntraEmulator) -> Mint:
    return Mint(entra_emulator)


def make_api(emulator: EntraEmulator, **config: Any) -> FlaskClient:
    """A Flask API protected by entra-auth, configured for the emulator's demo API."""
    app = Flask(__name__)
    api = ApiProtector(app, config=emulator_config(emulator, **config))

    def who() -> dict[str, Any]:
        p = g.principal
        return {
            "oid": p.oid,
            "tid": p.tid,
            "key": list(p.key),
            "scopes": sorted(p.scopes),
            "roles": sorted(p.roles),
            "app_only": p.app_only,
            "client_id": p.client_id,
        }

    app.add_url_rule("/any", "any", api.require_token()(who))
    # POST too: a token in a form body must be refused by the protector (AT23), not by routing.
    app.add_url_rule(
        "/scoped",
        "scoped",
        api.require_token(scopes=["access_as_user"])(who),
        methods=["GET", "POST"],
    )
    app.add_url_rule("/role", "role", api.require_token(roles=["Data.Read.All"])(who))
    app.add_url_rule(
        "/either",
        "either",
        api.require_token(scopes=["access_as_user"], roles=["Data.Read.All"])(who),
    )
    app.add_url_rule("/user-read", "user_read", api.require_token(scopes=["User.Read"])(who))
    return app.test_client()


@pytest.fixture
def api(entra_emulator: EntraEmulator) -> FlaskClient:
    return make_api(entra_emulator)


@pytest.fixture
def api_factory(entra_emulator: EntraEmulator) -> ApiFactory:
    return lambda **config: make_api(entra_emulator, **config)


# -- fuzzing budgets: `make test` runs a bounded number; `make fuzz` runs over 100,000 ----------
import os  # noqa: E402

from hypothesis import HealthCheck, settings  # noqa: E402

FUZZING = os.environ.get("ENTRA_FUZZ") == "1"
FUZZ_COUNTER = {"tried": 0}


def budget(ci: int, fuzz: int) -> settings:
    return settings(
        max_examples=fuzz if FUZZING else ci,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FUZZ_COUNTER["tried"]:
        failed = len(terminalreporter.stats.get("failed", []))
        terminalreporter.write_line(
            f"fuzz examples tried: {FUZZ_COUNTER['tried']:,} · failing tests: {failed}"
        )
