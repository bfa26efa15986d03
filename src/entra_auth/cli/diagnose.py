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
from ..config import ENVIRONMENT, EntraConfig
from ..errors import EntraAuthError
from ._console import inert, say


def _config_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The configuration a command reads: flags, then the environment, then ``.env``."""
    options = [
        click.option(
            "--env-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
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


_FLAG_SETTINGS = {
    "authority": "ENTRA_AUTHORITY",
    "tenant_id": "ENTRA_TENANT_ID",
    "client_id": "ENTRA_CLIENT_ID",
    "redirect_uri": "ENTRA_REDIRECT_URI",
    "audience": "ENTRA_API_AUDIENCE",
    "ca_bundle": "ENTRA_CA_BUNDLE",
}


def _settings(
    env_file: Path | None, flags: dict[str, str | None]
) -> tuple[dict[str, str], tuple[str, ...]]:
    """The settings a command reads (flags over the environment over the .env file), and
    where it looked, in that order, as the messages name it."""
    path = env_file or (Path(".env") if Path(".env").is_file() else None)
    values: dict[str, str] = {}
    if path is not None:
        values.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    values.update(os.environ)
    flagged = {_FLAG_SETTINGS[k]: v for k, v in flags.items() if v}
    values.update(flagged)
    sources = ["the command line"] if flagged else []
    if path is None:
        # Said where it helps: a .env file in another directory is the usual surprise.
        sources.append(f"{ENVIRONMENT} (no ./.env here)")
    else:
        sources += [ENVIRONMENT, str(env_file) if env_file else "./.env"]
    return values, tuple(sources)


def _config_loader(
    env_file: Path | None, require: tuple[str, ...] = (), **flags: str | None
) -> tuple[Callable[[], EntraConfig], frozenset[str]]:
    """A loader of the configuration, and the ENTRA_* names it was given (not derived)."""
    values, sources = _settings(env_file, flags)
    given = frozenset(k for k, v in values.items() if k.startswith("ENTRA_") and v.strip())

    def load() -> EntraConfig:
        return EntraConfig.from_mapping(values, sources=sources, require=require)

    return load, given


def _emit(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.command()
@_config_options
def doctor(env_file: Path | None, as_json: bool, **flags: str | None) -> None:
    """Check the configuration against the identity provider, each line with its fix."""
    # What doctor checks needs both: a client id and a credential (client credentials, redirect
    # URI): a secret, a certificate, a federated assertion or a managed identity.
    load, given = _config_loader(env_file, ("client_id", "credential"), **flags)
    checks = diagnostics.doctor(load, given=given)
    failed = [c for c in checks if not c.ok]
    if as_json:
        _emit({"ok": not failed, "checks": [c.as_dict() for c in checks]})
    else:
        for check in checks:
            # ⚠️: not known (the identity provider could not be asked); its fix says where to look.
            mark = "❌" if not check.ok else "⚠️" if check.warn else "✅"
            # Details quote the discovery document and the configuration: inert.
            say(Text.assemble(f"{mark} ", (check.name, "bold"), ": ", inert(check.detail)))
            if (not check.ok or check.warn) and check.fix:
                label = "fix:" if not check.ok else "check:"
                say(Text.assemble("   ", (label, "yellow"), " ", inert(check.fix)))
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
                        "lookup": aadsts.lookup_url(e.code),
                    }
                    for e in entries
                ],
                "unknown": [f"AADSTS{n}" for n in unknown],
                "lookups": {f"AADSTS{n}": aadsts.lookup_url(n) for n in numbers},
            }
        )
    else:
        # The codes and URLs below are our own digits (at most 8, ASCII), never pasted text.
        for entry in entries:
            say(f"[bold]{entry.name}[/] ({entry.error}): {escape(entry.meaning)}")
            for cause in entry.causes:
                say(f"  likely cause: {escape(cause)}")
            say(f"  [yellow]fix:[/] {escape(entry.fix)}")
            template = re.sub(r"\{(\w+)\}", r"<\1>", entry.message)
            say(f"  Entra says: {escape(template)}", style="dim")
            say(f"  Microsoft's page: {aadsts.lookup_url(entry.code)}", style="dim")
        for number in unknown:
            say(
                f"AADSTS{number} is not in the catalogue: look it up on Microsoft's error-code "
                f"page, {aadsts.lookup_url(number)}"
            )
        if not numbers:
            say(
                "No AADSTS code found: paste the code (AADSTS50011) or the whole "
                f"error_description. Microsoft's error-code page: {aadsts.ERROR_LOOKUP}"
            )
    if not entries:
        raise SystemExit(1)


@click.command()
@click.argument("token", nargs=-1, required=True)
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
    token: tuple[str, ...],
    env_file: Path | None,
    as_json: bool,
    do_verify: bool,
    id_token: bool,
    scopes: tuple[str, ...],
    roles: tuple[str, ...],
    **flags: str | None,
) -> None:
    """Show a token's header and claims; --verify checks it.

    TOKEN is the token, `Bearer <token>`, or a whole `Authorization: Bearer <token>` line
    (quoted or not); - reads any of them from stdin.
    """
    # Several words: a pasted `Bearer eyJ…` or header line that the shell split, unquoted.
    from_stdin = token == ("-",)
    pasted = sys.stdin.read() if from_stdin else " ".join(token)
    try:
        raw = diagnostics.token_from_paste(pasted)
        decoded = diagnostics.decode_unverified(raw)
    except EntraAuthError as exc:
        raise click.ClickException(inert(exc).plain) from None
    result: diagnostics.Verification | None = None
    if do_verify:
        # What the validator needs, all missing ones named at once and where they were sought.
        needs = ("client_id",) if id_token else ("api_audiences",)
        try:
            config = _config_loader(env_file, needs, **flags)[0]()
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
