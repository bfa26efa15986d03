"""``entra-auth emulator``: the local Entra ID in the foreground (the ``emulator`` extra).

It runs until SIGINT (Ctrl-C) or SIGTERM and then stops within a bounded time, open connections
or not. The handlers are in place before the emulator starts, so a signal that comes while it
starts is not lost, and the banner (which ends with "Press Ctrl-C to stop.") means both that the
emulator answers and that a signal will stop it.

It also hands an app what it needs to point at the emulator: ``--env-file .env`` writes the
``ENTRA_*`` settings of one app of the seed (``--app``) into a ``.env`` (0600: it holds the
app's client secret, a public value of the seed), ``--redirect-uri`` registers the app's
address when it is not the seed's, and ``--write-seed`` copies the bundled seed to edit.
"""

from __future__ import annotations

import logging
import os
import re
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
from ._console import inert, say

if TYPE_CHECKING:
    from ..emulator import App, EntraEmulator

# The first line of every .env this command writes: a file that starts with it is ours to
# rewrite at the next start; any other file is the user's and is replaced only with --force.
ENV_FILE_MARKER = "# Written by `entra-auth emulator --env-file`."


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
@click.option(
    "--app",
    "app_ref",
    metavar="APP",
    help="The app of the seed that --env-file and --redirect-uri are for: client id, App ID "
    "URI or display name (default: the seed's first web app).",
)
@click.option(
    "--api",
    "api_ref",
    metavar="API",
    help="The API whose audience goes in ENTRA_API_AUDIENCE (default: the app's own API, "
    "else the first API of its tenant).",
)
@click.option(
    "--redirect-uri",
    "redirect_uris",
    metavar="URI",
    multiple=True,
    help="Register one more redirect URI for the app (repeatable), e.g. "
    "http://localhost:5001/get_token; kept by the control API's reset. The first is the "
    ".env's ENTRA_REDIRECT_URI.",
)
@click.option(
    "--env-file",
    metavar="PATH",
    help="Write the app's ENTRA_* settings to this .env (0600), or print them with '-'. A file "
    "this command did not write is replaced only with --force.",
)
@click.option("--force", is_flag=True, help="Let --env-file replace a file it did not write.")
@click.option(
    "--write-seed",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the bundled default seed to FILE (a new file) to start your own from, and exit.",
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
    app_ref: str | None,
    api_ref: str | None,
    redirect_uris: tuple[str, ...],
    env_file: str | None,
    force: bool,
    write_seed: Path | None,
    verbose: bool,
) -> None:
    """Run the local Entra ID until Ctrl-C."""
    if write_seed is not None:
        if seed is not None:
            raise click.UsageError("--write-seed writes the bundled default seed: drop --seed.")
        _write_seed(write_seed)
        return
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s")
    try:
        from ..emulator import EmulatorSettings, EntraEmulator
    except ImportError as exc:
        raise click.ClickException(
            f"The local Entra ID needs {exc.name}: pip install 'entra-auth[emulator]'"
        ) from None
    env_path = Path(env_file) if env_file not in (None, "-") else None
    if env_path is not None and not force and not _may_write_env(env_path):
        raise _failure(
            f"Not writing {env_path}: it exists and entra-auth emulator did not write it. "
            "Pass --force to replace it, or name another file with --env-file."
        )
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
            )
            # Only when asked for: a seed need not have a web app to be served.
            wanted = app_ref is not None or bool(redirect_uris) or env_file is not None
            app = server.app(app_ref) if wanted else None
            for uri in redirect_uris:  # before start: in the starting directory, reset keeps them
                assert app is not None
                server.add_redirect_uri(app.client_id, uri)
            if api_ref is not None:
                server.app(api_ref)  # an unknown API fails now, not after the start
            server.start()
        except EntraAuthError as exc:
            raise _failure(str(exc)) from exc
        try:
            env_text = ""
            if env_file is not None and app is not None:
                env = server.env_for(
                    app.client_id,
                    api=api_ref,
                    redirect_uri=redirect_uris[0] if redirect_uris else None,
                )
                env_text = render_env(env, app)
                if env_path is not None:
                    _write_env(env_path, env_text, force=force)
            _print_banner(server, seed, app, env_file, env_text)  # the ports bound, 0 or not
            _wait(stop)
        except EntraAuthError as exc:
            raise _failure(str(exc)) from exc
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


def _print_banner(
    server: EntraEmulator,
    seed: Path | None,
    app: App | None,
    env_file: str | None,
    env_text: str,
) -> None:
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
    if server.directory.managed_identities:  # for MSAL's ManagedIdentityClient (trust the CA)
        imds = server.managed_identity_env("imds")
        app_service = server.managed_identity_env("app_service")
        say(
            "  Managed identity, as a VM's IMDS: "
            f"AZURE_POD_IDENTITY_AUTHORITY_HOST={imds['AZURE_POD_IDENTITY_AUTHORITY_HOST']}"
        )
        say(
            f"    or as App Service's: IDENTITY_ENDPOINT={app_service['IDENTITY_ENDPOINT']} "
            f"IDENTITY_HEADER={app_service['IDENTITY_HEADER']}"
        )
    # Ids and URIs are copied from here: columns that hold them never truncate. The seed's
    # text is the user's file (or --redirect-uri): shown inert, never read as markup.
    apps = Table(title="Apps", title_justify="left")
    apps.add_column("app", overflow="fold")
    apps.add_column("client id", no_wrap=True, min_width=36)
    apps.add_column("redirect URIs", overflow="fold")
    for each in server.directory.apps:
        apps.add_row(
            inert(each.display_name), inert(each.client_id), inert(", ".join(each.redirect_uris))
        )
    say(apps)
    users = Table("user", "signs in as", "tenant", title="Users", title_justify="left")
    for user in server.directory.users:
        tenant = server.directory.tenant(user.tenant_id)
        users.add_row(
            inert(user.name),
            inert(user.sign_in_name),
            inert(tenant.domain if tenant else user.tenant_id),
        )
    say(users)
    say("Passwords and client secrets are in the seed file:", inert(seed or default_seed_path()))
    if seed is None:
        say(
            "  To model your own apps: entra-auth emulator --write-seed my-seed.toml, edit it, "
            "then --seed my-seed.toml"
        )
    if app is None or env_file is None:
        say(
            "Your app's settings: --env-file .env writes them (--app to choose the app, "
            "--env-file - prints them)."
        )
    elif env_file == "-":
        say(
            inert(
                f"Settings for {app.display_name} (a .env; every value is the seed's, local "
                "and public):"
            )
        )
        for line in env_text.splitlines():
            say(inert(line))
    else:
        say(
            inert(
                f"Wrote {env_file}: the ENTRA_* settings for {app.display_name} (0600: it holds "
                "the app's client secret)."
            )
        )
    say(
        "Try: curl --cacert "
        f"{server.ca_path} {server.authority}/v2.0/.well-known/openid-configuration\n"
        "Press Ctrl-C to stop."
    )


# -- files for the user's project -----------------------------------------------------------------
# Values a .env (python-dotenv, or a shell's `.`) holds unquoted; anything else is single-quoted,
# which both read literally as long as the value has no quote, backslash or control character.
_ENV_PLAIN = re.compile(r"[A-Za-z0-9_./:,@+=%-]+")
_ENV_QUOTABLE = re.compile(r"[^'\\\x00-\x1f\x7f-\x9f]+")


def render_env(env: dict[str, str], app: App) -> str:
    """The text of a .env holding ``env`` (``EntraEmulator.env_for``) for ``app``."""
    lines = [
        ENV_FILE_MARKER,
        "# The local Entra ID's settings for one app of its seed; rewritten at each start with",
        "# --env-file. Every value is the seed's, local and public. Keep your own settings in",
        "# another file.",
        # The seed is the user's text: inert, so a newline in a name cannot start a setting.
        f"# App: {inert(app.display_name).plain} ({inert(app.client_id).plain})",
    ]
    for name, value in env.items():
        if _ENV_PLAIN.fullmatch(value):
            lines.append(f"{name}={value}")
        elif _ENV_QUOTABLE.fullmatch(value):
            lines.append(f"{name}='{value}'")
        else:
            raise _failure(
                f"{name} holds a quote, backslash or control character, which a .env cannot "
                "hold as it is. Change the value in the seed (or the --state-dir path)."
            )
    return "\n".join(lines) + "\n"


def _may_write_env(path: Path) -> bool:
    """No file there yet, or one this command wrote (its first line is the marker)."""
    if not os.path.lexists(path):
        return True
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with path.open("rb") as handle:
            first = handle.readline(len(ENV_FILE_MARKER) + 2)
    except OSError:
        return False
    return first.rstrip(b"\r\n") == ENV_FILE_MARKER.encode()


def _write_env(path: Path, text: str, *, force: bool) -> None:
    """Owner-only (0600): the file holds a client secret. Never through a symbolic link."""
    from ..emulator.pki import write_private

    try:
        if force or (os.path.lexists(path) and _may_write_env(path)):
            write_private(path, text.encode())  # the mode is set on an older file too
        else:  # a new file: O_EXCL, so a file that appeared since the check is not replaced
            _create(path, text.encode(), 0o600)
    except FileExistsError:
        raise _failure(
            f"Not writing {path}: it exists. Pass --force to replace it, or name another file "
            "with --env-file."
        ) from None
    except OSError as exc:
        raise _failure(f"Cannot write {path}: {exc.strerror or exc}.") from None


def _write_seed(path: Path) -> None:
    from ..emulator.seed import default_seed_path

    try:
        _create(path, default_seed_path().read_bytes(), 0o644)
    except FileExistsError:
        raise _failure(
            f"Not writing {path}: it exists. Name a new file with --write-seed."
        ) from None
    except OSError as exc:
        raise _failure(f"Cannot write {path}: {exc.strerror or exc}.") from None
    say(
        inert(
            f"Wrote the default seed to {path}. Edit it, then start with: "
            f"entra-auth emulator --seed {path}"
        )
    )
    say(inert(f"For the pytest fixture: entra_emulator_seed = {path} under [pytest]."))


def _create(path: Path, data: bytes, mode: int) -> None:
    """Write a new file; FileExistsError when anything (a link too) is already there."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _failure(message: str) -> click.ClickException:
    """A one-line error; its text (seed values, paths, URIs given) is made inert."""
    return click.ClickException(inert(message).plain)
