"""``make demo-fastapi``: the local Entra ID and the demo API at http://localhost:8000, with
Swagger UI at /docs, until Ctrl-C.

With ``ENTRA_AUTHORITY`` set in the environment the API runs against that tenant instead (the
``ENTRA_*`` settings of the API, and ``DEMO_SWAGGER_CLIENT_ID``: see app.py) and no emulator
starts. The ports are the Flask demo's variables and rules (``examples/demo/run.py``, whose
helpers this reuses): ``DEMO_PORT`` (here 8000 by default), ``DEMO_EMULATOR_PORT`` (8443),
``DEMO_EMULATOR_BROWSER_PORT`` (8444); ``0`` picks a free one; a taken port is one line.
On another port than 8000 the local Entra ID registers Swagger UI's redirect URI there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import uvicorn

from entra_auth.cli import wait_for_stop
from entra_auth.emulator import EntraEmulator
from entra_auth.emulator.seed import Seed, load_seed
from entra_auth.errors import EmulatorError
from examples.demo.run import (
    APP_PORT,
    BROWSER_PORT,
    EMULATOR_PORT,
    CannotStart,
    console,
    demo_settings,
    read_ports,
    take_port,
)
from examples.demo.run import main as demo_main

from .app import create_app

API_APP = "a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c"  # the seed's demo API
SWAGGER_APP = "fb7a3631-04c0-45b0-8a7d-57b80994f173"  # its docs' registration (a SPA)
WEB_APP = "4b7d2f1c-3a5e-4c8b-9d61-2e0f7a9b3c15"  # the Flask demo's web app: users sign in
DEFAULT_PORT = 8000
COMMAND = "make demo-fastapi"
STOP_SECONDS = 5.0  # how long open connections (a WebSocket) may delay the stop


def redirect_uri(port: int) -> str:
    """Swagger UI's redirect URI on ``port`` (FastAPI's /docs/oauth2-redirect)."""
    return f"http://localhost:{port}/docs/oauth2-redirect"


def seed_for(port: int, seed: Seed | None = None) -> Seed:
    """The directory with the demo's redirect URIs on ``port``: Swagger UI's for the docs' app,
    on the single-page application platform (``add_redirect_uri`` registers Web ones only),
    and the sign-in's (``/get_token``) and the way back after sign-out (``/``) for the web app
    whose users sign in to the demo's pages."""
    seed = seed or load_seed()
    docs, web = seed.app(SWAGGER_APP), seed.app(WEB_APP)
    changes: dict[str, Any] = {}
    uri = redirect_uri(port)
    if docs is not None and uri not in docs.spa_redirect_uris:
        changes[SWAGGER_APP] = dataclasses.replace(
            docs, spa_redirect_uris=(*docs.spa_redirect_uris, uri)
        )
    here = f"http://localhost:{port}"
    if web is not None and f"{here}/get_token" not in web.redirect_uris:
        changes[WEB_APP] = dataclasses.replace(
            web,
            redirect_uris=(*web.redirect_uris, f"{here}/get_token"),
            post_logout_redirect_uris=(*web.post_logout_redirect_uris, f"{here}/"),
        )
    if not changes:
        return seed
    return dataclasses.replace(seed, apps=tuple(changes.get(a.client_id, a) for a in seed.apps))


def start_emulator(ports: Mapping[str, int], state_dir: str, seed: Seed) -> EntraEmulator:
    """The local Entra ID on its two ports, as the Flask demo starts it, with ``seed``."""
    for name in (EMULATOR_PORT, BROWSER_PORT):  # named in one line when taken
        if ports[name]:
            take_port(name, ports).close()
    emulator = EntraEmulator(
        seed, state_dir=state_dir, port=ports[EMULATOR_PORT], browser_port=ports[BROWSER_PORT]
    )
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # werkzeug's own lines go nowhere
            return emulator.start()
    except EmulatorError as exc:
        for name in (EMULATOR_PORT, BROWSER_PORT):
            if ports[name]:
                take_port(name, ports).close()
        raise CannotStart(f"{exc.message} {exc.remedy}") from None


def settings(emulator: EntraEmulator, port: int = DEFAULT_PORT) -> dict[str, str]:
    """The demo's settings against the local Entra ID, those of the Flask demo (what
    ``entra-auth emulator --env-file`` writes for the web app and its API), on ``port``, and
    the docs' client."""
    web = demo_settings(emulator, f"http://localhost:{port}/get_token")
    return {
        **web,
        "DEMO_SWAGGER_CLIENT_ID": SWAGGER_APP,
    }


@contextlib.contextmanager
def serving(app: Any, listening: socket.socket) -> Iterator[uvicorn.Server]:
    """``app`` served by uvicorn on the ``listening`` socket in a thread, stopped in bounded
    time on the way out (open connections get ``STOP_SECONDS``, then are dropped).

    The socket listens before uvicorn starts: a client that connects early waits in the
    backlog, so there is nothing to poll for."""
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,  # request lines would show Swagger UI's ?code=… redirect
        timeout_graceful_shutdown=int(STOP_SECONDS),
        ws="websockets-sansio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listening]}, daemon=True, name="fastapi-demo"
    )
    thread.start()
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=2 * STOP_SECONDS)
        if thread.is_alive():  # still closing connections: stop waiting for them
            server.force_exit = True
            thread.join(timeout=STOP_SECONDS)


def banner(here: str, emulator: EntraEmulator | None) -> None:
    console.print(f"\n[bold green]entra-auth FastAPI demo[/] → open [bold]{here}/docs[/]")
    if emulator is None:
        console.print(f"  Identity provider: {os.environ['ENTRA_AUTHORITY']}")
    else:
        https = emulator.urls.https_base
        console.print(f"  Identity provider: the local Entra ID at {emulator.authority}")
        console.print(f"  Its sign-in pages: {emulator.urls.browser_base}")
        console.print(
            "  Demo users (password 'demo'): adele@contoso.example (holds the app role "
            "Data.Read.All), megan@contoso.example"
        )
        console.print(
            f"  Swagger UI redeems its code from your browser at {https}: open {https}/ once "
            f"and accept the certificate, or trust {emulator.ca_path} in the browser"
        )
    console.print("Press Ctrl-C to stop.")


def main() -> None:
    demo_main(run, command=COMMAND)  # one line on stderr for a problem, as `make demo` does


def run() -> None:
    with_emulator = not os.environ.get("ENTRA_AUTHORITY")
    environ = {**os.environ, APP_PORT: os.environ.get(APP_PORT, "").strip() or str(DEFAULT_PORT)}
    ports = read_ports(environ, emulator=with_emulator)
    listening = take_port(APP_PORT, ports)  # first: with DEMO_PORT=0 the port is known now
    emulator: EntraEmulator | None = None
    try:
        port = listening.getsockname()[1]
        here = f"http://localhost:{port}"
        config: dict[str, str] = {}
        if with_emulator:
            state_dir = os.environ.get("DEMO_STATE_DIR", ".entra-emulator")
            emulator = start_emulator(ports, state_dir, seed_for(port))
            config = settings(emulator, port)
        app = create_app(config)
    except BaseException:
        listening.close()
        if emulator is not None:
            emulator.stop()
        raise

    try:
        with listening, serving(app, listening):
            banner(here, emulator)
            wait_for_stop()
    finally:
        if emulator is not None:
            emulator.stop()
    console.print("Demo stopped.")


if __name__ == "__main__":
    main()
