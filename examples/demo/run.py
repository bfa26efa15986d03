"""``make demo``: the local Entra ID and the demo app at http://localhost:5000, until Ctrl-C.

With ``ENTRA_AUTHORITY`` set in the environment, the demo runs against that tenant instead and
no emulator starts (see the README for the registration steps).

Three ports, each its own variable: ``DEMO_PORT`` (the app, default 5000),
``DEMO_EMULATOR_PORT`` (the local Entra ID's HTTPS, 8443) and ``DEMO_EMULATOR_BROWSER_PORT``
(its sign-in pages over plain http, 8444). ``0`` lets the system pick a free one (what the tests
do): the app's address is printed once it listens, its redirect URI registered with the local
Entra ID on that port. A port that is taken stops the demo with one line naming the port and
the variable to set, never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console
from werkzeug.serving import make_server

from entra_auth.cli import wait_for_stop
from entra_auth.emulator import EntraEmulator
from entra_auth.errors import EmulatorError

from .app import create_app

WEB_APP = "4b7d2f1c-3a5e-4c8b-9d61-2e0f7a9b3c15"
API_APP = "a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c"
HOST = "127.0.0.1"  # the app's and the local Entra ID's: loopback only
APP_PORT = "DEMO_PORT"
EMULATOR_PORT = "DEMO_EMULATOR_PORT"
BROWSER_PORT = "DEMO_EMULATOR_BROWSER_PORT"
DEFAULT_PORTS = {APP_PORT: 5000, EMULATOR_PORT: 8443, BROWSER_PORT: 8444}

console = Console(soft_wrap=True)


class CannotStart(Exception):
    """The demo cannot start (a port taken, a bad port setting): the message is the one line
    the user sees."""


def _not_yet(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Never called: the demo app replaces this before the server serves a request."""
    raise RuntimeError("the demo app is not set up yet")


def read_ports(environ: Mapping[str, str], *, emulator: bool) -> dict[str, int]:
    """The ports from the environment (the emulator's only when it runs), each checked."""
    names = list(DEFAULT_PORTS) if emulator else [APP_PORT]
    ports: dict[str, int] = {}
    for name in names:
        raw = environ.get(name, "").strip() or str(DEFAULT_PORTS[name])
        if not (raw.isascii() and raw.isdigit() and int(raw) <= 65535):
            raise CannotStart(
                f"{name} is {raw[:20]!r}, not a port: set it to a number from 1 to 65535 "
                f"(0 lets the system pick a free one)"
            )
        port = int(raw)
        same = [other for other, taken in ports.items() if port and taken == port]
        if same:
            raise CannotStart(
                f"{same[0]} and {name} are both {port}: give each its own port "
                f"({name}={_suggest(name, ports)} make demo)"
            )
        ports[name] = port
    return ports


def demo_settings(emulator: EntraEmulator, redirect_uri: str) -> dict[str, str]:
    """The seed's settings for the web app and the demo API (what ``--env-file`` writes), and
    the API's own registration (``DEMO_API_CLIENT_ID``/``_SECRET``: its /secure-data calls
    Graph on behalf of the caller). Both declare CP1: Continuous Access Evaluation, whose claims
    challenges the demo handles (``entra-auth`` meets them)."""
    config = emulator.env_for(WEB_APP, api=API_APP, redirect_uri=redirect_uri)
    api = emulator.env_for(API_APP)
    config["ENTRA_CLIENT_CAPABILITIES"] = "CP1"
    if "ENTRA_CLIENT_SECRET" in api:
        config["DEMO_API_CLIENT_ID"] = API_APP
        config["DEMO_API_CLIENT_SECRET"] = api["ENTRA_CLIENT_SECRET"]
    return config


def _listen(port: int) -> socket.socket:
    """A listening socket on the loopback ``port``, as werkzeug would make it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # As werkzeug: a port left in TIME_WAIT by the demo's previous run is free to take.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _suggest(name: str, ports: Mapping[str, int]) -> int:
    """A port to offer instead: the next one up that is free now and not another setting's."""
    start = ports.get(name) or DEFAULT_PORTS[name]
    taken = {p for other, p in ports.items() if other != name} | set(DEFAULT_PORTS.values())
    for candidate in range(start + 1, min(start + 50, 65536)):
        if candidate in taken:
            continue
        try:
            _listen(candidate).close()
        except OSError:
            continue
        return candidate
    return start + 1 if start < 65535 else 5001


def _problem(name: str, ports: Mapping[str, int], exc: OSError) -> CannotStart:
    port = ports[name]
    if exc.errno == errno.EADDRINUSE:
        said = f"Port {port} is in use"
    elif exc.errno == errno.EACCES:
        said = f"Port {port} needs privileges this user does not have"
    else:  # the OS's own words (no address, too many files …), still one line
        said = f"Port {port} cannot be used ({exc.strerror or type(exc).__name__})"
    return CannotStart(
        f"{said}: set {name} to another port ({name}={_suggest(name, ports)} make demo)"
    )


def take_port(name: str, ports: Mapping[str, int]) -> socket.socket:
    """Listen on the named setting's port, or say in one line which port and what to set."""
    try:
        return _listen(ports[name])
    except OSError as exc:
        raise _problem(name, ports, exc) from None


def start_emulator(ports: Mapping[str, int], state_dir: str) -> EntraEmulator:
    """The local Entra ID on its two ports; a taken one is a CannotStart naming it."""
    # Checked first, to name the port and its variable: the emulator's own error names both
    # ports at once, and werkzeug prints two lines of its own before it.
    for name in (EMULATOR_PORT, BROWSER_PORT):
        if ports[name]:
            take_port(name, ports).close()
    emulator = EntraEmulator(
        state_dir=state_dir, port=ports[EMULATOR_PORT], browser_port=ports[BROWSER_PORT]
    )
    try:
        # Taken between the check and now: werkzeug's own lines go nowhere, ours says it.
        with contextlib.redirect_stderr(io.StringIO()):
            return emulator.start()
    except EmulatorError as exc:
        for name in (EMULATOR_PORT, BROWSER_PORT):
            if ports[name]:
                take_port(name, ports).close()
        raise CannotStart(f"{exc.message} {exc.remedy}") from None


def main(start: Callable[[], None] | None = None, *, command: str = "make demo") -> None:
    """Run a demo (``start``, by default this one's ``run``): a problem starting it is one line
    on stderr and a failing exit status, no traceback; a fix it suggests names ``command``."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        (start or run)()
    except CannotStart as problem:
        print(str(problem).replace(" make demo)", f" {command})"), file=sys.stderr)
        raise SystemExit(1) from None


USERS = "adele@contoso.example, megan@contoso.example, bob@fabrikam.example (a guest)"


def run(
    build: Callable[[dict[str, str]], Any] = create_app,
    *,
    name: str = "entra-auth demo",
    users: str = USERS,
) -> None:
    """Serve the WSGI app ``build(settings)`` makes (the Flask demo; the Django demo's run.py
    passes its own) with the local Entra ID, until Ctrl-C."""
    with_emulator = not os.environ.get("ENTRA_AUTHORITY")
    ports = read_ports(os.environ, emulator=with_emulator)
    # Listen first: with DEMO_PORT=0 the port is known only now, and the redirect URI needs it.
    # Our own socket, handed to werkzeug: its make_server prints lines of its own and exits when
    # the port is taken, where the demo says it in one line.
    listening = take_port(APP_PORT, ports)
    try:
        server = make_server(HOST, 0, _not_yet, threaded=True, fd=listening.fileno())
    finally:
        listening.close()  # werkzeug listens on its own duplicate of it
    port = server.port
    here = f"http://localhost:{port}"
    emulator: EntraEmulator | None = None
    config: dict[str, str] = {}
    try:
        if with_emulator:
            emulator = start_emulator(ports, os.environ.get("DEMO_STATE_DIR", ".entra-emulator"))
            if port != 5000:  # the seed registers the tutorial's http://localhost:5000
                emulator.add_redirect_uri(WEB_APP, f"{here}/get_token")
                emulator.add_redirect_uri(WEB_APP, f"{here}/")
            # The seed's settings for the web app and the demo API (what --env-file writes).
            config = demo_settings(emulator, f"{here}/get_token")
        server.app = build(config)
    except BaseException:
        server.server_close()
        if emulator is not None:
            emulator.stop()
        raise
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    console.print(f"\n[bold green]{name}[/] → open [bold]{here}[/]")
    if emulator is not None:
        console.print(f"  Identity provider: the local Entra ID at {emulator.authority}")
        console.print(f"  Control API key: {emulator.admin_key}")
        console.print(f"  Its sign-in pages: {emulator.urls.browser_base}")
        console.print(f"  Demo users (password 'demo'): {users.format(here=here)}")
    else:
        console.print(f"  Identity provider: {os.environ['ENTRA_AUTHORITY']}")
    console.print("Press Ctrl-C to stop.")

    try:
        wait_for_stop()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        if emulator is not None:
            emulator.stop()
        console.print("Demo stopped.")


if __name__ == "__main__":
    main()
