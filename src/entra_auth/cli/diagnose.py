"""``entra-auth doctor | explain | decode``: diagnostics that say the fix."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from dotenv import dotenv_values
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .. import aadsts, diagnostics
from ..config import EntraConfig
from ..errors import EntraAuthError
from ._console import inert, say


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


@click.command()
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
            say(Text.assemble(f"{mark} ", (check.name, "bold"), ": ", inert(check.detail)))
            if not check.ok and check.fix:
                say(Text.assemble("   ", ("fix:", "yellow"), " ", inert(check.fix)))
        verdict = "[red]Problems found.[/]" if failed else "[green]All checks passed.[/]"
        say(verdict)
    if failed:
        raise SystemExit(1)


@click.command()
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
            say(f"[bold]{entry.name}[/] ({entry.error}): {escape(entry.meaning)}")
            for cause in entry.causes:
                say(f"  likely cause: {escape(cause)}")
            say(f"  [yellow]fix:[/] {escape(entry.fix)}")
            template = re.sub(r"\{(\w+)\}", r"<\1>", entry.message)
            say(f"  Entra says: {escape(template)}", style="dim")
        for number in unknown:
            say(
                f"AADSTS{number} is not in the catalogue; Microsoft's error-code "
                "reference lists every code."
            )
        if not numbers:
            say(
                "No AADSTS code found: paste the code (AADSTS50011) or the whole error_description."
            )
    if not entries:
        raise SystemExit(1)


@click.command()
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
        say(
            "[bold white on red] NOT VERIFIED [/] this shows what the token claims, "
            "not that it is true."
            if result is None
            else "[bold white on red] REFUSED [/]"
        )
    else:
        say(
            "[bold white on green] VERIFIED [/] signature and claims checked against "
            "the configuration."
        )
    # Everything below but our own words comes from the token (and a refusal may quote a claim
    # or an argument): printed inert.
    say(inert(decoded.kind, "bold"))
    say(Text.assemble("header: ", inert(json.dumps(decoded.header))))
    now = time.time()
    table = Table("claim", "value", show_header=False)
    for name, value in decoded.claims.items():
        shown = (
            diagnostics.describe_time(value, now)
            if name in ("exp", "nbf", "iat", "auth_time")
            else value
        )
        table.add_row(inert(name), inert(shown))
    say(table)
    say(f"signature: <{decoded.signature_length} characters, elided>")
    if result is None:
        # Again at the end, where a long token cannot push it off the screen.
        say(
            "[bold white on red] NOT VERIFIED [/] run with --verify to check it against the "
            "configuration."
        )
    elif result.ok:
        say(Text.assemble(("✅ ", "green"), inert(result.message, "green")))
    else:
        say(
            Text.assemble(
                ("❌ ", "red"), inert(result.message, "red"), " (", inert(result.reason), ")"
            )
        )
        if result.remedy:
            say(Text.assemble("   ", ("fix:", "yellow"), " ", inert(result.remedy)))
