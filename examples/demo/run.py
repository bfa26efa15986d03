"""``make demo``: the local Entra ID and the demo app at http://localhost:5000, until Ctrl-C.

With ``ENTRA_AUTHORITY`` set in the environment, the demo runs against that tenant instead and
no emulator starts (see the README for the registration steps).

``DEMO_PORT`` picks the app's port; ``DEMO_PORT=0`` lets the system pick a free one (what the
tests do): the app's address is printed once it listens, its redirect URI registered with the
local Entra ID on that port.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from rich.console import Console
from werkzeug.serving import make_server

from entra_auth.cli import wait_for_stop
from entra_auth.emulator import EntraEmulator

from .app import create_app

WEB_APP = "4b7d2f1c-3a5e-4c8b-9d61-2e0f7a9b3c15"
API_APP = "a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c"
PORT = int(os.environ.get("DEMO_PORT", "5000"))

console = Console(soft_wrap=True)


def _not_yet(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Never called: the demo app replaces this before the server serves a request."""
    raise RuntimeError("the demo app is not set up yet")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Listen first: with DEMO_PORT=0 the port is known only now, and the redirect URI needs it.
    server = make_server("127.0.0.1", PORT, _not_yet, threaded=True)
    port = server.port
    here = f"http://localhost:{port}"
    emulator: EntraEmulator | None = None
    config: dict[str, str] = {}
    try:
        if not os.environ.get("ENTRA_AUTHORITY"):
            emulator = EntraEmulator(
                state_dir=os.environ.get("DEMO_STATE_DIR", ".entra-emulator"),
                port=int(os.environ.get("DEMO_EMULATOR_PORT", "8443")),
                browser_port=int(os.environ.get("DEMO_EMULATOR_BROWSER_PORT", "8444")),
            ).start()
            if port != 5000:  # the seed registers the tutorial's http://localhost:5000
                emulator.add_redirect_uri(WEB_APP, f"{here}/get_token")
                emulator.add_redirect_uri(WEB_APP, f"{here}/")
            web = emulator.app(WEB_APP)
            config = {
                "ENTRA_AUTHORITY": emulator.authority,
                "ENTRA_CLIENT_ID": WEB_APP,
                "ENTRA_CLIENT_SECRET": web.secrets[0].value,
                "ENTRA_REDIRECT_URI": f"{here}/get_token",
                "ENTRA_API_AUDIENCE": f"{API_APP},api://{API_APP}",
                "ENTRA_CA_BUNDLE": str(emulator.ca_path),
            }
        server.app = create_app(config)
    except BaseException:
        server.server_close()
        if emulator is not None:
            emulator.stop()
        raise
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    console.print(f"\n[bold green]entra-auth demo[/] → open [bold]{here}[/]")
    if emulator is not None:
        console.print(f"  Identity provider: the local Entra ID at {emulator.authority}")
        console.print(f"  Control API key: {emulator.admin_key}")
        console.print(f"  Its sign-in pages: {emulator.urls.browser_base}")
        console.print(
            "  Demo users (password 'demo'): adele@contoso.example, "
            "megan@contoso.example, bob@fabrikam.example (a guest)"
        )
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
