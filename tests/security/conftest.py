from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
    app.add_url_rule(
        "/daemons", "daemons", api.require_token(roles=["Data.Read.All"], app_only=True)(who)
    )
    app.add_url_rule("/user-read", "user_read", api.require_token(scopes=["User.Read"])(who))
    return app.test_client()


# The catalogue's API cases (AT, JW, MF, HX01-HX03) run against every adapter: one test body,
# parametrised by ``adapter``; the other modules test the Flask side (or the core) once.
ADAPTERS = ("flask", "fastapi")
EVERY_ADAPTER = {"test_access_tokens", "test_jwks", "test_malformed", "test_hx_tokens"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "adapter" in metafunc.fixturenames:
        module = metafunc.module.__name__.rsplit(".", 1)[-1]
        metafunc.parametrize("adapter", ADAPTERS if module in EVERY_ADAPTER else ("flask",))


@pytest.fixture
def api_factory(entra_emulator: EntraEmulator, adapter: str) -> Iterator[ApiFactory]:
    """``api_factory(**config)``: the catalogue's API on ``adapter``, its answers read alike."""
    opened: list[Any] = []

    def build(**config: Any) -> Any:
        if adapter == "flask":
            return make_api(entra_emulator, **config)
        from ..fastapi_support import make_fastapi_api

        client = make_fastapi_api(entra_emulator, **config)
        opened.append(client)
        return client

    yield build
    for client in opened:
        client.close()


@pytest.fixture
def api(api_factory: ApiFactory) -> Any:
    return api_factory()


class CoreValidator:
    """The adapter's own validator called directly (the core must refuse on its own too):
    Flask's sync one, or FastAPI's async one awaited."""

    def __init__(self, api: Any):
        self.api = api

    def validate(self, token: object, **checks: Any) -> Any:
        if isinstance(self.api, FlaskClient):
            return ApiProtector.validator(self.api.application).validate(token, **checks)
        # In a thread of its own: a running loop here (Playwright's, in the same session) would
        # refuse asyncio.run.
        with ThreadPoolExecutor(1) as pool:
            validating = pool.submit(
                lambda: asyncio.run(self.api.validator.validate_async(token, **checks))
            )
            return validating.result()


def core_validator(api: Any) -> CoreValidator:
    return CoreValidator(api)


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
