"""``make demo-django``: the local Entra ID and the Django demo at http://localhost:5000, until
Ctrl-C.

As ``make demo`` (``examples/demo/run.py``, whose helpers this reuses): with ``ENTRA_AUTHORITY``
set the demo runs against that tenant and no emulator starts; ``DEMO_PORT`` (5000),
``DEMO_EMULATOR_PORT`` (8443) and ``DEMO_EMULATOR_BROWSER_PORT`` (8444), ``0`` for a free one;
a port that is taken is one line naming it. The settings reach Django through the environment
(``settings.py`` reads ``ENTRA_*`` there); the database is migrated before the first request
and the project's system checks run (a setting that would fail stops the start, in one line).
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
from pathlib import Path

from werkzeug.serving import make_server

from entra_auth.cli import wait_for_stop
from entra_auth.emulator import EntraEmulator
from entra_auth.logs import redact_logger
from examples.demo.run import (
    APP_PORT,
    HOST,
    WEB_APP,
    CannotStart,
    _not_yet,
    console,
    demo_settings,
    read_ports,
    start_emulator,
    take_port,
)

COMMAND = "make demo-django"
SETTINGS = "examples.django_demo.settings"


def prepare_django(config: dict[str, str]) -> object:
    """Django set up with ``config`` in the environment, the database migrated, the checks
    passed; its WSGI app, serving the static files (the admin's, the demo's) too."""
    os.environ.update(config)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    state = Path(os.environ.get("DEMO_STATE_DIR") or ".entra-emulator")
    database = Path(os.environ.get("DJANGO_DB_PATH") or state / "django-demo.sqlite3")
    database.parent.mkdir(parents=True, exist_ok=True)

    import django
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError
    from django.core.wsgi import get_wsgi_application

    django.setup()
    try:
        call_command("check", fail_level="ERROR", stdout=io.StringIO())
    except SystemCheckError as problem:
        lines = [line.strip() for line in str(problem).splitlines() if line.strip()]
        raise CannotStart(" ".join(lines[1:]) or str(problem)) from None
    call_command("migrate", interactive=False, verbosity=0)
    return StaticFilesHandler(get_wsgi_application())


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        run()
    except CannotStart as problem:
        print(str(problem).replace(" make demo)", f" {COMMAND})"), file=sys.stderr)
        raise SystemExit(1) from None


def run() -> None:
    with_emulator = not os.environ.get("ENTRA_AUTHORITY")
    ports = read_ports(os.environ, emulator=with_emulator)
    # Listen first: with DEMO_PORT=0 the port is known only now, and the redirect URI needs it.
    listening = take_port(APP_PORT, ports)
    try:
        server = make_server(HOST, 0, _not_yet, threaded=True, fd=listening.fileno())
    finally:
        listening.close()  # werkzeug listens on its own duplicate of it
    redact_logger("werkzeug")  # its request lines carry the callback's ?code=…&state=…
    port = server.port
    here = f"http://localhost:{port}"
    emulator: EntraEmulator | None = None
    try:
        config: dict[str, str] = {}
        if with_emulator:
            emulator = start_emulator(ports, os.environ.get("DEMO_STATE_DIR", ".entra-emulator"))
            if port != 5000:  # the seed registers the tutorial's http://localhost:5000
                emulator.add_redirect_uri(WEB_APP, f"{here}/get_token")
                emulator.add_redirect_uri(WEB_APP, f"{here}/")
            config = demo_settings(emulator, f"{here}/get_token")
        server.app = prepare_django(config)  # type: ignore[assignment]
    except BaseException:
        server.server_close()
        if emulator is not None:
            emulator.stop()
        raise
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    console.print(f"\n[bold green]entra-auth Django demo[/] → open [bold]{here}[/]")
    if emulator is not None:
        console.print(f"  Identity provider: the local Entra ID at {emulator.authority}")
        console.print(f"  Control API key: {emulator.admin_key}")
        console.print(f"  Its sign-in pages: {emulator.urls.browser_base}")
        console.print(
            "  Demo users (password 'demo'): adele@contoso.example (app role Admin: the Django "
            f"admin at {here}/admin/), megan@contoso.example, bob@fabrikam.example (a guest)"
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
