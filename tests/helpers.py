"""Shared test helpers: the demo directory's ids and a real MSAL client on the emulator."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msal
from flask import Flask
from werkzeug.serving import make_server

from entra_auth.config import EntraConfig
from entra_auth.emulator import EntraEmulator
from entra_auth.testing.driver import BrowserlessUser

WEB = "4b7d2f1c-3a5e-4c8b-9d61-2e0f7a9b3c15"
API = "a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c"
API_URI = f"api://{API}"
API_SCOPE = f"{API_URI}/access_as_user"
LEGACY = "b2d4f6a8-3c5e-4f70-9b1d-2e4f6a8b0c3d"
LEGACY_URI = "api://legacy-api.contoso.example"
DAEMON = "d2e4f6a8-1b3c-4d5e-8f70-9a1b2c3d4e5f"
REDIRECT = "http://localhost:5000/get_token"
ADELE = "adele@contoso.example"
MEGAN = "megan@contoso.example"
GUEST = "bob@fabrikam.example"
CONTOSO = "8c3dad1d-b6bc-4f8b-939b-8263372eced6"
FABRIKAM = "f4d2b1a0-6e2c-4f8e-9a57-3c1d2e4b5a69"


def secret_of(emulator: EntraEmulator, client_id: str, index: int = 0) -> str:
    return emulator.app(client_id).secrets[index].value


def confidential_client(
    emulator: EntraEmulator,
    client_id: str = WEB,
    secret: str | None = None,
    authority: str | None = None,
    **kwargs: Any,
) -> msal.ConfidentialClientApplication:
    """The unpatched MSAL, told only what a user would tell it."""
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=secret if secret is not None else secret_of(emulator, client_id),
        authority=authority or emulator.authority,
        instance_discovery=False,
        http_client=emulator.http_session(),
        **kwargs,
    )


def sign_in(
    emulator: EntraEmulator,
    app: msal.ConfidentialClientApplication,
    scopes: list[str],
    *,
    user: str = ADELE,
    browser: BrowserlessUser | None = None,
    **flow_kwargs: Any,
) -> dict[str, Any]:
    """Authorization code flow with PKCE, the authorize pages walked over HTTP."""
    flow = app.initiate_auth_code_flow(scopes, redirect_uri=REDIRECT, **flow_kwargs)
    response = (browser or BrowserlessUser()).authorize(flow["auth_uri"], user=user)
    result: dict[str, Any] = app.acquire_token_by_auth_code_flow(flow, response)
    return result


def emulator_config(emulator: EntraEmulator, **changes: Any) -> EntraConfig:
    """EntraConfig for the demo API on the emulator's default tenant; ``changes`` win."""
    values: dict[str, Any] = {
        "authority": emulator.authority_for(CONTOSO),
        "client_id": API,
        "ca_bundle": str(emulator.ca_path),
    }
    values.update(changes)
    return EntraConfig(**values)


def demo_config(emulator: EntraEmulator, **extra: Any) -> dict[str, Any]:
    """The demo app's configuration against the emulator (as examples/demo/run.py builds it)."""
    config: dict[str, Any] = {
        "ENTRA_AUTHORITY": emulator.authority,
        "ENTRA_CLIENT_ID": WEB,
        "ENTRA_CLIENT_SECRET": secret_of(emulator, WEB),
        "ENTRA_REDIRECT_URI": REDIRECT,
        "ENTRA_API_AUDIENCE": f"{API},{API_URI}",
        "ENTRA_CA_BUNDLE": str(emulator.ca_path),
        "SECRET_KEY": "test-secret-key-" + "x" * 32,
    }
    config.update(extra)
    return config


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_demo(emulator: EntraEmulator, session_dir: Path) -> Iterator[tuple[str, Flask]]:
    """The demo app served by werkzeug on a free port, registered with the emulator."""
    port = free_port()
    base = f"http://localhost:{port}"
    emulator.add_redirect_uri(WEB, f"{base}/get_token")
    emulator.add_redirect_uri(WEB, f"{base}/")
    from examples.demo.app import create_app

    app = create_app(
        demo_config(
            emulator, ENTRA_REDIRECT_URI=f"{base}/get_token", ENTRA_SESSION_DIR=str(session_dir)
        )
    )
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield base, app
    finally:
        server.shutdown()
