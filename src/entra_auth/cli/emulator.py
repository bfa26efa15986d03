"""``entra-auth emulator``: the local Entra ID in the foreground (the ``emulator`` extra).

It runs until SIGINT (Ctrl-C) or SIGTERM and then stops within a bounded time, open connections
or not. The handlers are in place before the emulator starts, so a signal that comes while it
starts is not lost, and the banner (which ends with "Press Ctrl-C to stop.") means both that the
emulator answers and that a signal will stop it.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from ..errors import EntraAuthError
from ._console import say

if TYPE_CHECKING:
    from ..emulator import EntraEmulator


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8443,
    show_default=True,
    help="HTTPS port (back channel); 0 picks a free one, which the banner shows.",
)
@click.option(
    "--browser-port",
    default=8444,
    show_default=True,
    help="HTTP port (sign-in pages); 0 picks a free one, which the banner shows.",
)
@click.option(
    "--state-dir",
    default=".entra-emulator",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the CA, certificates and signing key are kept.",
)
@click.option(
    "--seed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Seed file (TOML or JSON) with tenants, apps and users.",
)
@click.option(
    "--public-host",
    default="localhost",
    show_default=True,
    help="Host name put in the URLs the emulator advertises.",
)
@click.option(
    "--token-lifetime",
    type=click.IntRange(30, 86400),
    help="Access-token lifetime in seconds (default: Entra's random 60-90 minutes).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log each request (method and path only).")
def emulator(
    host: str,
    port: int,
    browser_port: int,
    state_dir: Path,
    seed: Path | None,
    public_host: str,
    token_lifetime: int | None,
    verbose: bool,
) -> None:
    """Run the local Entra ID until Ctrl-C."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s")
    try:
        from ..emulator import EmulatorSettings, EntraEmulator
    except ImportError as exc:
        raise click.ClickException(
            f"The local Entra ID needs {exc.name}: pip install 'entra-auth[emulator]'"
        ) from None
    settings = EmulatorSettings()
    if token_lifetime:
        settings.access_token_lifetime = (token_lifetime, token_lifetime)
    with stop_signals() as stop:
        try:
            server = EntraEmulator(
                seed,
                state_dir=state_dir,
                host=host,
                port=port,
                browser_port=browser_port,
                public_host=public_host,
                settings=settings,
            ).start()
        except EntraAuthError as exc:
            raise click.ClickException(str(exc)) from exc
        try:
            _print_banner(server, seed)  # the ports bound, also when 0 was asked for
            _wait(stop)
        finally:
            # Still inside: a second signal does not cut the stop short, which is bounded anyway
            # (open connections and requests held by a fault do not keep it).
            server.stop()
            say("Local Entra ID stopped.")


@contextmanager
def stop_signals() -> Iterator[threading.Event]:
    """An event that SIGINT (Ctrl-C) and SIGTERM set while inside; the old handlers after.

    A handler rather than KeyboardInterrupt: the interrupt could land anywhere, in the middle of
    starting or stopping, while the event is only looked at where the caller waits. Once out,
    Ctrl-C raises KeyboardInterrupt again as usual.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, on_signal)
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _wait(stop: threading.Event) -> None:
    # Short waits in a loop: the main thread runs Python signal handlers between them.
    while not stop.wait(0.5):
        pass


def wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM (what `make demo` and the emulator run until)."""
    with stop_signals() as stop:
        _wait(stop)


def _print_banner(server: EntraEmulator, seed: Path | None) -> None:
    from ..emulator.admin import ADMIN_HEADER
    from ..emulator.seed import default_seed_path

    say(f"[bold green]Local Entra ID[/] running · tenant {server.tenant_id}")
    say(f"  Authority (ENTRA_AUTHORITY): [bold]{server.authority}[/]")
    say(f"  CA certificate to trust (ENTRA_CA_BUNDLE): [bold]{server.ca_path}[/]")
    say(f"  Sign-in pages (plain http, no certificate warning): {server.urls.browser_base}")
    say(f"  Microsoft Graph: {server.graph_base}/v1.0/me")
    say(
        f"  Control API: {server.urls.https_base}/_emulator/… with header {ADMIN_HEADER}: "
        f"{server.admin_key}"
    )
    # Ids and URIs are copied from here: columns that hold them never truncate.
    apps = Table(title="Apps", title_justify="left")
    apps.add_column("app", overflow="fold")
    apps.add_column("client id", no_wrap=True, min_width=36)
    apps.add_column("redirect URIs", overflow="fold")
    for app in server.seed.apps:
        apps.add_row(app.display_name, app.client_id, ", ".join(app.redirect_uris))
    say(apps)
    users = Table("user", "signs in as", "tenant", title="Users", title_justify="left")
    for user in server.seed.users:
        tenant = server.seed.tenant(user.tenant_id)
        users.add_row(user.name, user.sign_in_name, tenant.domain if tenant else user.tenant_id)
    say(users)
    say(
        f"Passwords and client secrets are in the seed file: {seed or default_seed_path()}\n"
        "Try: curl --cacert "
        f"{server.ca_path} {server.authority}/v2.0/.well-known/openid-configuration\n"
        "Press Ctrl-C to stop."
    )
