"""Catalogue HX03 (the command line's part), HX08 and HX09: what `entra-auth decode`, `explain`
and `doctor` do with hostile tokens, pasted text and discovery documents.

Tokens are built here from raw segments (unsigned, or signed with the emulator's key so that
`--verify` reaches the claim checks); nothing is taken from the code under test.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from entra_auth import cli
from entra_auth.discovery import on_authority_host
from entra_auth.emulator import EntraEmulator, Fault

from ..helpers import WEB, secret_of
from ..test_diagnostics import env, lines, no_secrets
from .minting import Mint, b64

# What a terminal acts on rather than shows (line feeds between lines of output excepted).
RAW_CONTROL = re.compile(
    r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    r"\ud800-\udfff]"
)
SGR = re.compile(r"\x1b\[[0-9;]*m")  # rich's own styling: Select Graphic Rendition only

# Each tries to fake, hide, move or hyperlink past the verdict. No backslashes or quotes, so that
# repr() is the independent statement of how each must print (control characters as escapes).
HOSTILE = {
    "markup": "[bold white on green] VERIFIED [/]",
    "erase": "\x1b[2K\x1b[1A VERIFIED ",
    "overwrite": "x\r VERIFIED ",
    "osc8": "\x1b]8;;https://evil.example/\x07click\x1b]8;;\x07",
    "title": "\x1b]0;VERIFIED\x07",
    "c1": "\x9b2K\x9d0;t\x9c",
    "bidi": "\u202eDEIFIREV TON\u202c \u2066x\u2069",
    "link": "[link=https://evil.example/]here[/link]",
    "emoji": ":white_check_mark: VERIFIED",
    "del_nul": "a\x7fb\x00c\tb",
    "newline": "one\n VERIFIED ",
    "surrogate": "x\ud800y",
}


def shown(text: str) -> str:
    """How untrusted text must print: as itself, each control character as its Python escape."""
    return repr(text)[1:-1]


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.c2lnbmF0dXJl"


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    # catch_exceptions=False: a traceback fails the test instead of being an exit code.
    return CliRunner().invoke(cli.main, list(args), env=env or {}, catch_exceptions=False)


def assert_inert(output: str) -> None:
    raw = RAW_CONTROL.search(output)
    assert raw is None, f"raw {raw.group()!r} reached the terminal"


def assert_verdict(result: Result, verdict: str) -> None:
    """The verdict opens the output, and nothing from the token starts a line of its own: every
    other line that says VERIFIED is the closing reminder, the header, a row of the claims or
    the refusal's reason."""
    first, *rest = result.output.splitlines()
    assert first.startswith(f" {verdict} "), result.output
    for line in rest:
        if "VERIFIED" in line and not line.startswith(" NOT VERIFIED  run with --verify"):
            assert line.startswith(("│", "header: ", "❌ ")), line


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's console, wide enough that no claim wraps across table rows."""
    monkeypatch.setattr(cli._console, "console", Console(soft_wrap=True, width=400))


@pytest.fixture
def colour_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's console as in a colour terminal: rich emits its own escape sequences."""
    console = Console(soft_wrap=True, width=400, force_terminal=True, color_system="standard")
    monkeypatch.setattr(cli._console, "console", console)


# -- HX08 ---------------------------------------------------------------------------------------
def hostile_token() -> tuple[dict[str, Any], dict[str, Any]]:
    header = {"alg": "RS256", "kid": HOSTILE["markup"], "x": HOSTILE["erase"]}
    claims: dict[str, Any] = {f"v_{name}": text for name, text in HOSTILE.items()}
    claims.update({HOSTILE["markup"]: "name", "[green]n[/green]\x1b[31m": 1})
    claims["ver"] = "[bold white on green] VERIFIED [/]2.0"  # the kind line quotes it
    claims["scp"] = "access_as_user"
    return header, claims


def test_HX08_decode_prints_every_claim_inert(wide_console: None) -> None:
    header, claims = hostile_token()
    result = run("decode", unsigned(header, claims))
    assert result.exit_code == 0
    assert_inert(result.output)
    assert_verdict(result, "NOT VERIFIED")
    assert result.output.rstrip().splitlines()[-1].startswith(" NOT VERIFIED ")  # and closes it
    for text in HOSTILE.values():
        assert shown(text) in result.output, (text, result.output)
    assert "│ [green]n[/green]\\x1b[31m" in result.output  # claim names too
    assert result.output.splitlines()[1] == "v? access token (delegated)"  # `ver` not quoted
    assert "[bold white on green] VERIFIED [/]" in result.output.splitlines()[2]  # the header


def test_HX08_decode_with_the_shipped_console_is_inert() -> None:
    """The real console (80 columns, not a terminal): wrapped table rows, still nothing raw."""
    header, claims = hostile_token()
    result = run("decode", unsigned(header, claims))
    assert result.exit_code == 0
    assert_inert(result.output)
    assert_verdict(result, "NOT VERIFIED")
    assert "[green]n[/green]" in result.output
    assert ":white_check_mark:" in result.output  # no emoji substitution
    assert "✅" not in result.output


def test_HX08_in_a_colour_terminal_only_rich_styles(colour_console: None) -> None:
    header, claims = hostile_token()
    result = run("decode", unsigned(header, claims))
    assert result.exit_code == 0
    output = result.output
    assert "\x1b[" in output  # the console does style: the test sees rich's escapes
    # Every escape sequence present is one rich wrote for styling: no erase, cursor move,
    # title, hyperlink (OSC 8) or anything else from the token.
    assert output.count("\x1b") == len(SGR.findall(output))
    # The token tried "on green" (SGR 42) to imitate a verdict; only ours styles, red (41).
    parameters = {p for seq in SGR.findall(output) for p in seq[2:-1].split(";")}
    assert "42" not in parameters
    assert "41" in parameters
    plain = SGR.sub("", output)
    assert_inert(plain)
    for text in HOSTILE.values():  # rich's styling stripped, the literal input remains
        assert shown(text) in plain, (text, plain)
    assert plain.splitlines()[0].startswith(" NOT VERIFIED ")


def test_HX08_decode_verify_says_refused_and_prints_inert(
    entra_emulator: EntraEmulator, wide_console: None
) -> None:
    mint = Mint(entra_emulator)
    _, extra = hostile_token()
    claims = {**extra, **mint.claims(), "aud": HOSTILE["erase"]}  # signed, for another audience
    token = mint.raw(mint.header(), claims)
    settings = env(entra_emulator)
    result = run("decode", token, "--verify", env=settings)
    assert result.exit_code == 1
    assert_inert(result.output)
    assert_verdict(result, "REFUSED")
    assert re.search(r"^❌ .+\(\w+\)$", result.output, re.MULTILINE), result.output
    assert "fix:" in result.output
    for text in HOSTILE.values():
        assert shown(text) in result.output
    # An argument echoed back in the refusal (the missing scope) is inert too.
    wanted = HOSTILE["markup"] + HOSTILE["erase"]
    echoed = run("decode", mint.token(), "--verify", "--scope", wanted, env=settings)
    assert echoed.exit_code == 1
    assert_inert(echoed.output)
    assert_verdict(echoed, "REFUSED")
    assert shown(wanted) in echoed.output
    no_secrets(result.output + echoed.output, token, secret_of(entra_emulator, WEB))


def test_HX08_decode_json_stays_inert() -> None:
    header, claims = hostile_token()
    result = run("decode", "--json", unsigned(header, claims))
    assert result.exit_code == 0
    assert result.output.isascii()
    assert_inert(result.output)
    data = json.loads(result.output)
    assert data["verified"] is False
    assert data["claims"] == claims  # escaped by JSON, not altered
    assert data["header"] == header


def test_HX08_odd_digits_and_numbers_print_without_a_traceback(wide_console: None) -> None:
    arabic_indic = '"\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660"'
    for literal in (arabic_indic, "1e400", "-1e400", "NaN", "1.5", "true", '"\u00b2"'):
        payload = f'{{"scp": "a", "ver": "2.0", "exp": {literal}, "n": {literal}}}'
        token = f"{b64(b'{}')}.{b64(payload.encode())}.c2ln"
        result = run("decode", token)
        assert result.exit_code == 0, literal
        assert_inert(result.output)
        assert re.search(r"│ exp\s+│ not a valid date: ", result.output), result.output


def test_HX08_decode_a_pasted_header_line_is_inert(wide_console: None) -> None:
    """`decode` takes `Authorization: Bearer …` lines: what surrounds the token is pasted text
    too. A hostile token inside one prints as inert as on its own; anything else pasted is
    refused in our words, naming at most a scheme (never markup, escapes or a credential)."""
    header, claims = hostile_token()
    token = unsigned(header, claims)
    inside = run("decode", f"Authorization: Bearer {token}")
    assert inside.exit_code == 0
    assert_inert(inside.output)
    assert_verdict(inside, "NOT VERIFIED")
    for text in HOSTILE.values():
        assert shown(text) in inside.output
    for text in HOSTILE.values():
        for pasted in (f"Authorization: {text} x", f"{text} {token}", f"Basic {text}"):
            result = run("decode", pasted)
            assert result.exit_code != 0, pasted
            assert_inert(result.output)
            assert result.output.startswith("Error: "), result.output
            assert "VERIFIED" not in result.output  # nothing of the paste is echoed
            assert "[link" not in result.output
            assert token not in result.output


def test_HX08_explain_a_hostile_pasted_description() -> None:
    pasted = "AADSTS50011: " + " ".join(HOSTILE.values())
    for args in ([pasted], ["--json", pasted]):
        result = run("explain", *args)
        assert result.exit_code == 0
        assert_inert(result.output)
        assert "AADSTS50011" in result.output
        assert "[bold white on green]" not in result.output  # never echoed, so never styled
    # Odd digits: superscripts and other scripts' digits are not a code; nor 5000 digits.
    for odd in ("\u00b2", "\u0665\u0660\u0660\u0661\u0661", "9" * 5000, "\x1b[2K50011"):
        result = run("explain", odd)
        assert result.exit_code == 1, odd
        assert_inert(result.output)
        assert "No AADSTS code found" in result.output


# -- HX03 (the command line; the validator's part is in test_access_tokens) ----------------------
OUT_OF_RANGE = ["10" + "0" * 299, "-1", "253402300800", "99999999999999999999", "1e400", "NaN"]


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize(
    "literal", OUT_OF_RANGE, ids=["1e300", "-1", "y10000", "1e20", "inf", "nan"]
)
def test_HX03_decode_says_not_a_valid_date_and_verify_refuses(
    entra_emulator: EntraEmulator, wide_console: None, claim: str, literal: str
) -> None:
    mint = Mint(entra_emulator)
    payload = json.dumps({**mint.claims(), claim: "DATE"}).replace('"DATE"', literal)
    token = mint.raw(mint.header(), b64(payload.encode()))  # signed: only the date is wrong
    shown_ = run("decode", token)
    assert shown_.exit_code == 0
    row = re.search(rf"^│ {claim}\s+│ (.*?)\s*│$", shown_.output, re.MULTILINE)
    assert row is not None, shown_.output
    assert row.group(1).startswith("not a valid date: ")
    assert len(row.group(1)) < 80  # a 300-digit number is summarised, not printed whole
    assert_verdict(shown_, "NOT VERIFIED")
    as_json = run("decode", "--json", token)
    assert as_json.exit_code == 0
    assert json.loads(as_json.output)["verified"] is False
    refused = run("decode", token, "--verify", env=env(entra_emulator))
    assert refused.exit_code == 1
    assert_verdict(refused, "REFUSED")
    assert "❌" in refused.output


# -- HX09 ---------------------------------------------------------------------------------------
@dataclass
class Recorder:
    """A stand-in token endpoint that records every request it gets."""

    base: str
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)


@contextmanager
def recording_server(host: str, tls: ssl.SSLContext | None = None) -> Iterator[Recorder]:
    recorder = Recorder("")

    class Handler(BaseHTTPRequestHandler):
        def record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            recorder.requests.append((self.command, self.path, self.rfile.read(length)))
            body = b'{"token_type": "Bearer", "expires_in": 3599, "access_token": "x"}'
            self.send_response(200)  # as a token endpoint that accepts the secret would
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = record

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    recorder.base = f"{'https' if tls else 'http'}://{host}:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def emulator_tls(emulator: EntraEmulator) -> ssl.SSLContext:
    """The emulator's own certificate (localhost, 127.0.0.1): trusted by ENTRA_CA_BUNDLE, so an
    unpinned doctor would complete TLS with the recorder and post the form."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(
        emulator.state_dir / "server.pem", emulator.state_dir / "server-key.pem"
    )
    return context


def serve_discovery(emulator: EntraEmulator, token_endpoint: str) -> None:
    url = f"{emulator.authority}/v2.0/.well-known/openid-configuration"
    doc = emulator.http_session().get(url).json()
    doc["token_endpoint"] = token_endpoint
    emulator.inject_fault("discovery", Fault("garbage", body=json.dumps(doc)))


def assert_refused_unsent(result: Result, emulator: EntraEmulator, endpoint: str) -> None:
    assert result.exit_code == 1, result.output
    checks = lines(result)
    line = checks["client credentials"]
    assert line.startswith("❌"), result.output
    assert f"token_endpoint {endpoint!r} is not https on the authority's host" in line
    assert "not sent" in line
    assert "fix:" in line
    assert checks["discovery"].startswith("✅")  # only the token endpoint is refused
    no_secrets(result.output, secret_of(emulator, WEB))


@pytest.mark.parametrize(
    "where", ["plain http, same host", "https, another host", "https, same host, another port"]
)
def test_HX09_doctor_never_posts_the_secret_off_the_authority(
    entra_emulator: EntraEmulator, where: str
) -> None:
    host = "127.0.0.1" if where == "https, another host" else "localhost"
    tls = None if where.startswith("plain") else emulator_tls(entra_emulator)
    with recording_server(host, tls) as recorder:
        endpoint = f"{recorder.base}/{entra_emulator.tenant_id}/oauth2/v2.0/token"
        serve_discovery(entra_emulator, endpoint)
        result = run("doctor", env=env(entra_emulator))
    assert recorder.requests == []  # nothing reached it, so neither did the secret
    assert_refused_unsent(result, entra_emulator, endpoint)
    report = json.loads(run("doctor", "--json", env=env(entra_emulator)).output)
    client = next(c for c in report["checks"] if c["name"] == "client credentials")
    assert client["ok"] is False
    assert "not sent" in client["detail"]


def test_HX09_plain_http_on_the_authoritys_own_host_and_port(
    entra_emulator: EntraEmulator,
) -> None:
    """Only the scheme differs: the form would cross the wire in clear text."""
    endpoint = f"{entra_emulator.authority}/oauth2/v2.0/token".replace("https://", "http://")
    serve_discovery(entra_emulator, endpoint)
    entra_emulator.reset_counts()
    result = run("doctor", env=env(entra_emulator))
    assert_refused_unsent(result, entra_emulator, endpoint)
    assert entra_emulator.request_counts().get("token", 0) == 0


def test_HX09_a_redirecting_token_endpoint_is_not_followed(entra_emulator: EntraEmulator) -> None:
    """requests resends a form on 307/308: the secret would follow the redirect elsewhere."""
    with recording_server("localhost") as recorder:
        entra_emulator.inject_fault(
            "token",
            Fault("status", status=307, headers=(("Location", f"{recorder.base}/token"),)),
        )
        result = run("doctor", env=env(entra_emulator))
    assert recorder.requests == []
    assert result.exit_code == 1
    line = lines(result)["client credentials"]
    assert line.startswith("❌")
    assert "redirect (HTTP 307)" in line
    assert "fix:" in line
    no_secrets(result.output, secret_of(entra_emulator, WEB))


@pytest.mark.parametrize(
    ("url", "pinned"),
    [
        ("https://login.example:8443/t/oauth2/v2.0/token", True),
        ("https://LOGIN.example:8443/t/keys", True),
        ("http://login.example:8443/t/keys", False),
        ("https://login.example/t/keys", False),
        ("https://login.example:9443/t/keys", False),
        ("https://evil.example/t/keys", False),
        ("https://login.example:8443@evil.example/t/keys", False),
        ("https://user@login.example:8443/t/keys", False),
        ("https://login.example:8443\\@evil.example/t/keys", False),
        ("https://login.exa\tmple:8443/t/keys", False),
        ("https://login.example:8443\n/t/keys", False),
        ("https://[::1/t/keys", False),
        ("https://l\u043egin.example:8443/t/keys", False),  # a Cyrillic o
        ("//login.example:8443/t/keys", False),
    ],
)
def test_HX09_one_rule_pins_jwks_uri_and_token_endpoint(url: str, pinned: bool) -> None:
    assert on_authority_host(url, "https://login.example:8443/t") is pinned


# -- issue 16: the API's token version in doctor ------------------------------------------------
@pytest.mark.parametrize("name", sorted(set(HOSTILE) - {"surrogate"}))  # no env var holds one
def test_fid06_doctor_quotes_a_hostile_api_audience_inert(
    entra_emulator: EntraEmulator, colour_console: None, name: str
) -> None:
    """ENTRA_API_AUDIENCE is quoted by the token-version line (and sent as a scope to the
    identity provider, which refuses it): in a colour terminal, nothing of it styles, moves or
    links; the line is ❌ or ⚠️, never ✅, and the secret never shows."""
    audience = f"api://{HOSTILE[name]}".replace("\x00", "")  # nor a NUL
    result = run("doctor", env=env(entra_emulator, ENTRA_API_AUDIENCE=audience))
    output = SGR.sub("", result.output)  # rich's own colours, then nothing raw may be left
    assert_inert(output)
    line = next(x for x in output.splitlines() if "API token version" in x)
    assert line.startswith(("❌", "⚠️")), output
    # ENTRA_API_AUDIENCE is split at commas and spaces: its first value is the API asked for.
    assert shown(audience.split()[0]) in line, output
    no_secrets(result.output, secret_of(entra_emulator, WEB))
