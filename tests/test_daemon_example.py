"""``examples/daemon``: the daemon calls the demo API's app-only endpoint and Graph's /users as
itself, against the local Entra ID and the FastAPI demo under real uvicorn, with each kind of
credential its settings can give."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from entra_auth.emulator import EntraEmulator
from examples.daemon.daemon import run

from .helpers import DAEMON, serve_fastapi_demo


@pytest.fixture
def demo_api(entra_emulator: EntraEmulator, tmp_path: Path) -> Iterator[str]:
    with serve_fastapi_demo(entra_emulator, tmp_path / "sessions") as (base, _):
        yield base


def daemon_settings(emulator: EntraEmulator, api: str, **credential: str) -> dict[str, str]:
    env = emulator.env_for(DAEMON)
    if credential:
        env.pop("ENTRA_CLIENT_SECRET", None)
        env.update(credential)
    return {**env, "DEMO_API_URL": api, "ENTRA_GRAPH_URL": emulator.graph_base}


def assert_called_as_the_app(answer: dict[str, Any]) -> None:
    assert answer["api"]["status"] == 200, answer
    assert answer["api"]["body"]["app_only"] is True
    assert answer["api"]["body"]["roles"] == ["Data.Read.All"]
    assert answer["graph"]["status"] == 200, answer
    assert "Adele Vance" in answer["graph"]["users"]


def test_the_daemon_with_a_client_secret(entra_emulator: EntraEmulator, demo_api: str) -> None:
    answer = run(daemon_settings(entra_emulator, demo_api))
    assert answer["credential"] == "client secret"
    assert_called_as_the_app(answer)
