"""``examples/daemon``: the daemon calls the demo API's app-only endpoint and Graph's /users as
itself, against the local Entra ID and the FastAPI demo under real uvicorn, with each kind of
credential its settings can give."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from examples.daemon.daemon import run

from entra_auth.emulator import EntraEmulator

from .helpers import DAEMON, MSAL_IDENTITY_SOURCES, serve_fastapi_demo


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


def test_the_daemon_with_a_certificate(
    entra_emulator: EntraEmulator, demo_api: str, tmp_path: Path
) -> None:
    from entra_auth.testing.certificates import make_client_certificate

    cert_pem, key_pem = make_client_certificate("CN=demo daemon")
    entra_emulator.add_certificate(DAEMON, cert_pem)
    (tmp_path / "daemon.pem").write_text(cert_pem + key_pem)
    settings = daemon_settings(
        entra_emulator, demo_api, ENTRA_CLIENT_CERTIFICATE=str(tmp_path / "daemon.pem")
    )
    answer = run(settings)
    assert answer["credential"].startswith("certificate ")
    assert_called_as_the_app(answer)


def test_the_daemon_with_a_federated_token_file(
    entra_emulator: EntraEmulator, demo_api: str, tmp_path: Path
) -> None:
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(entra_emulator.federated_token("system:serviceaccount:demo:daemon"))
    answer = run(
        daemon_settings(entra_emulator, demo_api, ENTRA_CLIENT_ASSERTION_FILE=str(token_file))
    )
    assert answer["credential"] == "client assertion"
    assert_called_as_the_app(answer)


def test_the_daemon_with_a_managed_identity(
    entra_emulator: EntraEmulator, demo_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in MSAL_IDENTITY_SOURCES:
        monkeypatch.delenv(name, raising=False)
    host = entra_emulator.managed_identity_env("imds")
    monkeypatch.setenv(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST", host["AZURE_POD_IDENTITY_AUTHORITY_HOST"]
    )
    settings = daemon_settings(entra_emulator, demo_api, ENTRA_MANAGED_IDENTITY="system")
    answer = run(settings)
    assert answer["credential"] == "managed identity (system)"
    assert_called_as_the_app(answer)
