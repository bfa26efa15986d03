"""The ``entra-auth`` command."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import click
from dotenv import dotenv_values
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from . import __version__, aadsts, diagnostics
from .config import EntraConfig
from .emulator import EmulatorSettings, EntraEmulator
from .emulator.admin import ADMIN_HEADER
from .emulator.seed import default_seed_path
from .errors import EntraAuthError

console = Console(soft_wrap=True)  # URLs must stay copyable, never wrapped

# Characters a terminal acts on rather than shows: C0 (ESC, CR, LF, TAB, BEL ...), DEL, C1 (CSI,
# OSC ...), bidi marks, embeddings, overrides and isolates, line and paragraph separators, and
# lone surrogates (which would make writing the output fail).
_UNPRINTABLE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _visible_escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def inert(value: object, style: str = "") -> Text:
    """Untrusted text (from a token, a discovery document, a pasted error, an argument) as text
    that prints as itself and nothing more.

    A ``Text`` is never read as rich markup or emoji codes, so ``[green]VERIFIED[/]`` stays those
    characters; control characters are replaced by their Python escapes (ESC shows as the four
    characters ``\\x1b``, a CR as ``\\r``, U+202E as ``\\u202e``), so that no token can style,
    erase, overwrite, reorder or hyperlink its way past the verdict.
    """
    return Text(_UNPRINTABLE.sub(_visible_escape, str(value)), style=style)


@click.group()
@click.version_option(__version__, prog_name="entra-auth")
def main() -> None:
    """Microsoft Entra ID sign-in and API protection for Python apps."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8443, show_default=True, help="HTTPS port (back channel).")
@click.option("--browser-port", default=8444, show_default=True, help="HTTP port (sign-in pages).")
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
    settings = EmulatorSettings()
    if token_lifetime:
        settings.access_token_lifetime = (token_lifetime, token_lifetime)
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
    _print_banner(server, seed)
    try:
        wait_for_stop()
    finally:
        server.stop()
        console.print("Local Entra ID stopped.")


def wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM (what `make demo` and the emulator run until)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


def _print_banner(server: EntraEmulator, seed: Path | None) -> None:
    console.print(f"[bold green]Local Entra ID[/] running · tenant {server.tenant_id}")
    console.print(f"  Authority (ENTRA_AUTHORITY): [bold]{server.authority}[/]")
    console.print(f"  CA certificate to trust (ENTRA_CA_BUNDLE): [bold]{server.ca_path}[/]")
    console.print(
        f"  Sign-in pages (plain http, no certificate warning): {server.urls.browser_base}"
    )
    console.print(f"  Microsoft Graph: {server.graph_base}/v1.0/me")
    console.print(
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
    console.print(apps)
    users = Table("user", "signs in as", "tenant", title="Users", title_justify="left")
    for user in server.seed.users:
        tenant = server.seed.tenant(user.tenant_id)
        users.add_row(user.name, user.sign_in_name, tenant.domain if tenant else user.tenant_id)
    console.print(users)
    console.print(
        f"Passwords and client secrets are in the seed file: {seed or default_seed_path()}\n"
        "Try: curl --cacert "
        f"{server.ca_path} {server.authority}/v2.0/.well-known/openid-configuration\n"
        "Press Ctrl-C to stop."
    )


# -- diagnostics -------------------------------------------------------------------------------
def _config_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The configuration a command reads: flags, then the environment, then ``.env``."""
    options = [
        click.option(
            "--env-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="A .env file to read ENTRA_* from (default: ./.env if present).",
        ),
        click.option("--authority", help="ENTRA_AUTHORITY"),
        click.option("--tenant-id", help="ENTRA_TENANT_ID"),
        click.option("--client-id", help="ENTRA_CLIENT_ID"),
        click.option("--redirect-uri", help="ENTRA_REDIRECT_URI"),
        click.option("--audience", help="ENTRA_API_AUDIENCE (comma-separated)"),
        click.option("--ca-bundle", help="ENTRA_CA_BUNDLE"),
        click.option("--json", "as_json", is_flag=True, help="Machine-readable output."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _config_loader(env_file: Path | None, **flags: str | None) -> Callable[[], EntraConfig]:
    names = {
        "authority": "ENTRA_AUTHORITY",
        "tenant_id": "ENTRA_TENANT_ID",
        "client_id": "ENTRA_CLIENT_ID",
        "redirect_uri": "ENTRA_REDIRECT_URI",
        "audience": "ENTRA_API_AUDIENCE",
        "ca_bundle": "ENTRA_CA_BUNDLE",
    }

    def load() -> EntraConfig:
        path = env_file or (Path(".env") if Path(".env").is_file() else None)
        values: dict[str, str] = {}
        if path is not None:
            values.update({k: v for k, v in dotenv_values(path).items() if v is not None})
        values.update(os.environ)
        values.update({names[k]: v for k, v in flags.items() if v})
        return EntraConfig.from_env(values)

    return load


def _emit(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@main.command()
@_config_options
def doctor(env_file: Path | None, as_json: bool, **flags: str | None) -> None:
    """Check the configuration against the identity provider, each line with its fix."""
    checks = diagnostics.doctor(_config_loader(env_file, **flags))
    failed = [c for c in checks if not c.ok]
    if as_json:
        _emit({"ok": not failed, "checks": [c.as_dict() for c in checks]})
    else:
        for check in checks:
            mark = "✅" if check.ok else "❌"
            # Details quote the discovery document and the configuration: inert.
            console.print(
                Text.assemble(f"{mark} ", (check.name, "bold"), ": ", inert(check.detail))
            )
            if not check.ok and check.fix:
                console.print(Text.assemble("   ", ("fix:", "yellow"), " ", inert(check.fix)))
        verdict = "[red]Problems found.[/]" if failed else "[green]All checks passed.[/]"
        console.print(verdict)
    if failed:
        raise SystemExit(1)


@main.command()
@click.argument("text", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def explain(text: tuple[str, ...], as_json: bool) -> None:
    """What an AADSTS code (or a pasted error_description) means, and the fix."""
    joined = " ".join(text)
    # A bare code: ASCII digits only, and few (str.isdigit() also accepts "²", which int() refuses).
    bare = re.fullmatch(r"[0-9]{1,8}", joined.strip())
    numbers = aadsts.codes_in(joined) or ([int(bare.group())] if bare else [])
    entries = [e for e in (aadsts.lookup(n) for n in numbers) if e is not None]
    unknown = [n for n in numbers if aadsts.lookup(n) is None]
    if as_json:
        _emit(
            {
                "codes": [
                    {
                        "code": e.name,
                        "error": e.error,
                        "meaning": e.meaning,
                        "causes": list(e.causes),
                        "fix": e.fix,
                        "message": e.message,
                    }
                    for e in entries
                ],
                "unknown": [f"AADSTS{n}" for n in unknown],
            }
        )
    else:
        for entry in entries:
            console.print(f"[bold]{entry.name}[/] ({entry.error}): {escape(entry.meaning)}")
            for cause in entry.causes:
                console.print(f"  likely cause: {escape(cause)}")
            console.print(f"  [yellow]fix:[/] {escape(entry.fix)}")
            template = re.sub(r"\{(\w+)\}", r"<\1>", entry.message)
            console.print(f"  Entra says: {escape(template)}", style="dim")
        for number in unknown:
            console.print(
                f"AADSTS{number} is not in the catalogue; Microsoft's error-code "
                "reference lists every code."
            )
        if not numbers:
            console.print(
                "No AADSTS code found: paste the code (AADSTS50011) or the whole error_description."
            )
    if not entries:
        raise SystemExit(1)


@main.command()
@click.argument("token")
@_config_options
@click.option(
    "--verify",
    "do_verify",
    is_flag=True,
    help="Validate with the configuration and say which check refuses it.",
)
@click.option("--id-token", is_flag=True, help="Verify as an ID token (default: access token).")
@click.option("--scope", "scopes", multiple=True, help="A scope the token must carry.")
@click.option("--role", "roles", multiple=True, help="An app role the token must carry.")
def decode(
    token: str,
    env_file: Path | None,
    as_json: bool,
    do_verify: bool,
    id_token: bool,
    scopes: tuple[str, ...],
    roles: tuple[str, ...],
    **flags: str | None,
) -> None:
    """Show a token's header and claims (TOKEN, or - for stdin); --verify checks it."""
    from_stdin = token == "-"  # noqa: S105 - the conventional name for standard input
    raw = (sys.stdin.read() if from_stdin else token).strip()
    try:
        decoded = diagnostics.decode_unverified(raw)
    except EntraAuthError as exc:
        raise click.ClickException(inert(exc).plain) from None
    result: diagnostics.Verification | None = None
    if do_verify:
        try:
            config = _config_loader(env_file, **flags)()
        except EntraAuthError as exc:  # quotes the configuration's values
            raise click.ClickException(inert(exc).plain) from None
        result = diagnostics.verify(raw, config, id_token=id_token, scopes=scopes, roles=roles)
    if as_json:
        _emit(
            {
                **decoded.as_dict(),
                "verified": bool(result and result.ok),
                "verification": result.as_dict() if result else None,
            }
        )
    else:
        _print_decoded(decoded, result)
    if result is not None and not result.ok:
        raise SystemExit(1)


def _print_decoded(
    decoded: diagnostics.DecodedToken, result: diagnostics.Verification | None
) -> None:
    if result is None or not result.ok:
        console.print(
            "[bold white on red] NOT VERIFIED [/] this shows what the token claims, "
            "not that it is true."
            if result is None
            else "[bold white on red] REFUSED [/]"
        )
    else:
        console.print(
            "[bold white on green] VERIFIED [/] signature and claims checked against "
            "the configuration."
        )
    # Everything below but our own words comes from the token (and a refusal may quote a claim
    # or an argument): printed inert.
    console.print(inert(decoded.kind, "bold"))
    console.print(Text.assemble("header: ", inert(json.dumps(decoded.header))))
    now = time.time()
    table = Table("claim", "value", show_header=False)
    for name, value in decoded.claims.items():
        shown = (
            diagnostics.describe_time(value, now)
            if name in ("exp", "nbf", "iat", "auth_time")
            else value
        )
        table.add_row(inert(name), inert(shown))
    console.print(table)
    console.print(f"signature: <{decoded.signature_length} characters, elided>")
    if result is None:
        # Again at the end, where a long token cannot push it off the screen.
        console.print(
            "[bold white on red] NOT VERIFIED [/] run with --verify to check it against the "
            "configuration."
        )
    elif result.ok:
        console.print(Text.assemble(("✅ ", "green"), inert(result.message, "green")))
    else:
        console.print(
            Text.assemble(
                ("❌ ", "red"), inert(result.message, "red"), " (", inert(result.reason), ")"
            )
        )
        if result.remedy:
            console.print(Text.assemble("   ", ("fix:", "yellow"), " ", inert(result.remedy)))
