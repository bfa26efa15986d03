"""`entra-auth doctor`, `explain` and `decode` against the emulator, each fault and each bad token.

Every output is also checked for what must never appear: a client secret or a token.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric import rsa
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter

from entra_auth import aadsts, diagnostics
from entra_auth.cli import main
from entra_auth.config import PUBLIC_CLOUD, EntraConfig, fingerprint
from entra_auth.emulator import EntraEmulator, Fault
from entra_auth.errors import EntraAuthError

from .helpers import ADELE, API, CONTOSO, FABRIKAM, LEGACY_URI, WEB, secret_of
from .security.minting import REMOVE, Mint

# The codes shared/entra-facts.md lists: the catalogue must cover every one.
ENTRA_FACTS_CODES = [
    50011,
    700016,
    90002,
    7000215,
    7000222,
    7000218,
    70008,
    54005,
    501481,
    65001,
    65004,
    50076,
    50079,
    50126,
    50105,
    500011,
    70011,
    50058,
    700082,
    50194,
    90014,
]


def env(emulator: EntraEmulator, **changes: str | None) -> dict[str, str | None]:
    values: dict[str, str | None] = {
        "ENTRA_AUTHORITY": emulator.authority,
        "ENTRA_CLIENT_ID": WEB,
        "ENTRA_CLIENT_SECRET": secret_of(emulator, WEB),
        "ENTRA_CA_BUNDLE": str(emulator.ca_path),
        "ENTRA_REDIRECT_URI": "http://localhost:5000/get_token",
        "ENTRA_API_AUDIENCE": f"{API},api://{API}",
        "ENTRA_TENANT_ID": None,
    }
    values.update(changes)
    return values


def run(*args: str, env: dict[str, str | None], stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=stdin, catch_exceptions=False)


def no_secrets(output: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in output
        for part in secret.split("."):
            if len(part) > 12:
                assert part not in output


def lines(result: Result) -> dict[str, str]:
    """check name → its line (and fix) from doctor's text output."""
    found: dict[str, str] = {}
    current = ""
    for line in result.output.splitlines():
        match = re.match(r"^(✅|❌) ([^:]+): (.*)$", line)
        if match:
            current = match.group(2)
            found[current] = f"{match.group(1)} {match.group(3)}"
        elif current and line.strip().startswith("fix:"):
            found[current] += " | " + line.strip()
    return found


# -- doctor -------------------------------------------------------------------------------------
def certificate_env(
    emulator: EntraEmulator, tmp_path: Path, *, register: bool = True, **certificate: Any
) -> dict[str, str | None]:
    """doctor's settings with a new certificate of the web app instead of its secret."""
    from entra_auth.testing.certificates import make_client_certificate

    cert_pem, key_pem = make_client_certificate("CN=doctor test", **certificate)
    if register:
        emulator.add_certificate(WEB, cert_pem)
    path = tmp_path / "app.pem"
    path.write_text(cert_pem + key_pem)
    return env(emulator, ENTRA_CLIENT_SECRET=None, ENTRA_CLIENT_CERTIFICATE=str(path))


def test_doctor_with_a_certificate(entra_emulator: EntraEmulator, tmp_path: Path) -> None:
    result = run("doctor", env=certificate_env(entra_emulator, tmp_path))
    assert result.exit_code == 0, result.output
    checks = lines(result)
    assert checks["certificate"].startswith("✅ valid until ")
    assert "its key matches" in checks["certificate"]
    assert re.search(r"SHA-256 [0-9A-F]{64}", checks["certificate"])
    assert checks["client credentials"].startswith("✅ the client id and certificate ")
    assert "BEGIN" not in result.output  # no key or certificate printed


def test_doctor_explains_a_certificate_entra_does_not_know(
    entra_emulator: EntraEmulator, tmp_path: Path
) -> None:
    result = run("doctor", env=certificate_env(entra_emulator, tmp_path, register=False))
    assert result.exit_code == 1
    assert "AADSTS700027" in lines(result)["client credentials"]


def test_doctor_refuses_an_expired_certificate_or_another_key(
    entra_emulator: EntraEmulator, tmp_path: Path
) -> None:
    import datetime as dt

    from entra_auth.testing.certificates import make_client_certificate

    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=400)
    expired = run("doctor", env=certificate_env(entra_emulator, tmp_path, not_before=old))
    assert expired.exit_code == 1
    assert lines(expired)["certificate"].startswith("❌ expired on ")
    assert "client credentials" not in lines(expired)  # nothing sent with it
    cert_pem, _ = make_client_certificate("CN=one")
    _, other_key = make_client_certificate("CN=two")
    (tmp_path / "mixed.pem").write_text(cert_pem + other_key)
    mixed = run(
        "doctor",
        env=env(
            entra_emulator,
            ENTRA_CLIENT_SECRET=None,
            ENTRA_CLIENT_CERTIFICATE=str(tmp_path / "mixed.pem"),
        ),
    )
    assert mixed.exit_code == 1
    assert "is not the certificate's" in lines(mixed)["certificate"]


def test_doctor_healthy(entra_emulator: EntraEmulator) -> None:
    result = run("doctor", env=env(entra_emulator))
    assert result.exit_code == 0, result.output
    checks = lines(result)
    assert set(checks) >= {
        "configuration",
        "CA bundle",
        "authority",
        "clock",
        "discovery",
        "signing keys",
        "client credentials",
        "redirect URI",
        "redirect URI registered",
    }
    assert all(line.startswith("✅") for line in checks.values())
    secret = secret_of(entra_emulator, WEB)
    assert fingerprint(secret) in result.output
    no_secrets(result.output, secret)


@pytest.mark.parametrize(
    ("fault", "check", "expected"),
    [
        ("wrong client id", "client credentials", "AADSTS700016"),
        ("wrong tenant", "authority", "AADSTS90002"),
        ("wrong secret", "client credentials", "AADSTS7000215"),
        ("expired secret", "client credentials", "AADSTS7000222"),
        ("unregistered redirect URI", "redirect URI registered", "AADSTS50011"),
        ("JWKS down", "signing keys", "HTTP 503"),
        ("clock ahead", "clock", "behind"),
        ("clock behind", "clock", "ahead of"),
        ("path not the callback route", "redirect URI", "callback route"),
        ("untrusted CA", "authority", "not trusted"),
    ],
)
def test_doctor_names_each_fault_and_its_fix(
    entra_emulator: EntraEmulator, fault: str, check: str, expected: str
) -> None:
    changes: dict[str, str | None] = {}
    if fault == "wrong client id":
        changes["ENTRA_CLIENT_ID"] = "00000000-0000-0000-0000-000000000042"
    elif fault == "wrong tenant":
        changes["ENTRA_AUTHORITY"] = entra_emulator.authority_for("nosuch.example")
    elif fault == "wrong secret":
        changes["ENTRA_CLIENT_SECRET"] = "abc8Q~not-the-secret"
    elif fault == "expired secret":
        changes["ENTRA_CLIENT_SECRET"] = secret_of(entra_emulator, WEB, index=1)
    elif fault == "unregistered redirect URI":
        changes["ENTRA_REDIRECT_URI"] = "http://localhost:5001/get_token"
    elif fault == "JWKS down":
        entra_emulator.inject_fault("jwks", Fault("status", status=503))
    elif fault == "clock ahead":
        entra_emulator.shift_clock(900)
    elif fault == "clock behind":
        entra_emulator.shift_clock(-900)
    elif fault == "path not the callback route":
        changes["ENTRA_REDIRECT_URI"] = "http://localhost:5000/auth/callback"
    elif fault == "untrusted CA":  # the system's CAs do not know the emulator's
        changes["ENTRA_CA_BUNDLE"] = None
    result = run("doctor", env=env(entra_emulator, **changes))
    assert result.exit_code == 1, result.output
    checks = lines(result)
    assert checks[check].startswith("❌"), result.output
    assert expected in checks[check]
    assert "fix:" in checks[check]
    no_secrets(
        result.output,
        secret_of(entra_emulator, WEB),
        secret_of(entra_emulator, WEB, 1),
        "abc8Q~not-the-secret",
    )


ALL_SETTINGS = dict.fromkeys(
    [
        "ENTRA_AUTHORITY",
        "ENTRA_TENANT_ID",
        "ENTRA_CLIENT_ID",
        "ENTRA_CLIENT_SECRET",
        "ENTRA_CA_BUNDLE",
        "ENTRA_REDIRECT_URI",
        "ENTRA_API_AUDIENCE",
    ]
)
CREDENTIAL = (
    "ENTRA_CLIENT_SECRET (or ENTRA_CLIENT_CERTIFICATE, ENTRA_CLIENT_CERTIFICATE_BASE64, "
    "ENTRA_CLIENT_ASSERTION_FILE)"
)
MISSING = ("ENTRA_AUTHORITY (or ENTRA_TENANT_ID)", "ENTRA_CLIENT_ID", CREDENTIAL)


def test_doctor_lists_every_missing_setting_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./.env
    result = run("doctor", env=ALL_SETTINGS)
    assert result.exit_code == 1
    checks = lines(result)
    assert list(checks) == list(MISSING), result.output
    for name, line in checks.items():
        assert line.startswith("❌ not set in the environment (no ./.env here) | fix: Set "), line
        assert name.split()[0] in line.split("fix:")[1]  # the fix names what to set
    assert "Directory (tenant) ID" in checks[MISSING[0]]
    assert "Application (client) ID" in checks["ENTRA_CLIENT_ID"]
    assert "the Value, not the Secret ID" in checks[CREDENTIAL]
    assert "✅" not in result.output
    report = json.loads(run("doctor", "--json", env=ALL_SETTINGS).output)
    assert report["ok"] is False
    assert [(c["name"], c["ok"]) for c in report["checks"]] == [(m, False) for m in MISSING]


def test_doctor_never_says_not_set_in_green(
    entra_emulator: EntraEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half a configuration: what is there is read from ./.env, what is not is a red line."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"ENTRA_AUTHORITY={entra_emulator.authority}\n")
    result = run("doctor", env={**ALL_SETTINGS, "ENTRA_CLIENT_ID": WEB})
    assert result.exit_code == 1
    checks = lines(result)
    assert list(checks) == [CREDENTIAL], result.output
    assert checks[CREDENTIAL].startswith("❌ not set in the environment or ./.env")
    assert "not set" not in "".join(v for v in checks.values() if v.startswith("✅"))
    # Once everything is set, the configuration line says where it was read from.
    (tmp_path / ".env").write_text(
        "".join(f"{k}={v}\n" for k, v in env(entra_emulator).items() if v is not None)
    )
    healthy = run("doctor", env=ALL_SETTINGS)
    assert healthy.exit_code == 0, healthy.output
    configuration = lines(healthy)["configuration"]
    assert configuration.startswith("✅ authority ")
    assert configuration.endswith("(read from the environment and ./.env)")
    assert "not set" not in healthy.output


class ToEmulator(HTTPAdapter):
    """Sends what is addressed to Entra's public cloud to the local Entra ID: the authority
    that ENTRA_TENANT_ID alone makes, answered by the emulator."""

    def __init__(self, emulator: EntraEmulator):
        super().__init__()
        self.base = emulator.urls.https_base

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:
        request.url = str(request.url).replace(PUBLIC_CLOUD, self.base, 1)
        return super().send(request, **kwargs)


def test_doctor_wrong_tenant_fix_names_the_setting_that_was_set(
    entra_emulator: EntraEmulator,
) -> None:
    unknown = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
    # ENTRA_AUTHORITY names a tenant the IdP does not know: the fix is about ENTRA_AUTHORITY.
    by_authority = run(
        "doctor",
        env=env(entra_emulator, ENTRA_AUTHORITY=entra_emulator.authority_for("nosuch.example")),
    )
    fix = lines(by_authority)["authority"]
    assert fix.startswith("❌ AADSTS90002"), by_authority.output
    assert "ENTRA_AUTHORITY names the tenant 'nosuch.example'" in fix
    assert "ENTRA_TENANT_ID" not in fix
    # Both set, to the same unknown tenant: the fix names both.
    both = run(
        "doctor",
        env=env(
            entra_emulator,
            ENTRA_AUTHORITY=entra_emulator.authority_for(unknown),
            ENTRA_TENANT_ID=unknown,
        ),
    )
    fix = lines(both)["authority"]
    assert f"ENTRA_AUTHORITY and ENTRA_TENANT_ID name the tenant {unknown}" in fix
    # ENTRA_TENANT_ID alone (the public cloud's authority): the fix is about ENTRA_TENANT_ID.
    session = requests.Session()
    session.mount(PUBLIC_CLOUD, ToEmulator(entra_emulator))
    settings = {
        "ENTRA_TENANT_ID": unknown,
        "ENTRA_CLIENT_ID": WEB,
        "ENTRA_CLIENT_SECRET": secret_of(entra_emulator, WEB),
        "ENTRA_CA_BUNDLE": str(entra_emulator.ca_path),
    }

    def load() -> EntraConfig:
        return EntraConfig.from_env(settings)

    for given in (set(settings), None):  # from the CLI's settings, or a config built in code
        checks = {c.name: c for c in diagnostics.doctor(load, session=session, given=given)}
        assert checks["authority"].ok is False
        assert checks["authority"].detail.startswith("AADSTS90002")
        assert checks["authority"].fix.startswith(f"ENTRA_TENANT_ID is {unknown}, a tenant ")
        assert "ENTRA_AUTHORITY" not in checks["authority"].fix


@pytest.fixture
def nothing_listening() -> Iterator[int]:
    """A loopback port bound but never listening: connections to it are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_doctor_says_to_start_the_emulator_when_nothing_listens(
    entra_emulator: EntraEmulator, nothing_listening: int, host: str
) -> None:
    authority = f"https://{host}:{nothing_listening}/{CONTOSO}"
    result = run("doctor", env=env(entra_emulator, ENTRA_AUTHORITY=authority))
    assert result.exit_code == 1
    check = lines(result)["authority"]
    assert check.startswith("❌ "), result.output
    assert "connection refused" in check
    assert (
        f"fix: Nothing listens on {host}:{nothing_listening}: start the local Entra ID "
        f"(`entra-auth emulator --port {nothing_listening}`), or set ENTRA_AUTHORITY to the one "
        "it prints."
    ) in check
    # On the emulator's own default port, the plain command is the fix.
    default = diagnostics._reach_fix(
        "connection refused (nothing listens on that port)",
        urlsplit(f"https://localhost:8443/{CONTOSO}"),
    )
    assert "(`entra-auth emulator`)" in default


def test_doctor_bad_configuration_and_json(entra_emulator: EntraEmulator) -> None:
    bad = run("doctor", "--json", env=env(entra_emulator, ENTRA_CLIENT_ID="my-app"))
    assert bad.exit_code == 1
    report = json.loads(bad.output)
    assert report["ok"] is False
    assert report["checks"][0]["name"] == "configuration"
    assert "ENTRA_CLIENT_ID" in report["checks"][0]["detail"]
    good = json.loads(run("doctor", "--json", env=env(entra_emulator)).output)
    assert good["ok"] is True
    assert all(c["ok"] for c in good["checks"])


def test_doctor_reads_a_dotenv_file(entra_emulator: EntraEmulator, tmp_path: Path) -> None:
    dotenv = tmp_path / "settings.env"
    dotenv.write_text(
        "".join(f"{k}={v}\n" for k, v in env(entra_emulator).items() if v is not None)
    )
    empty = dict.fromkeys(env(entra_emulator))
    result = run("doctor", "--env-file", str(dotenv), env=empty)
    assert result.exit_code == 0, result.output
    flagged = run(
        "doctor",
        "--env-file",
        str(dotenv),
        "--client-id",
        "00000000-0000-0000-0000-000000000042",
        env=empty,
    )
    assert "AADSTS700016" in flagged.output  # flags win over the file


# -- explain ------------------------------------------------------------------------------------
ENTRA_FACTS = Path(__file__).resolve().parents[2] / "shared" / "entra-facts.md"


def entra_facts_codes(text: str) -> list[int]:
    """The codes of entra-facts.md's error table: `| AADSTS50076 / 50079 | …` names two."""
    codes: list[int] = []
    for line in text.splitlines():
        row = re.match(r"^\| AADSTS([0-9]+)((?: / [0-9]+)*) \|", line)
        if row:
            codes += [int(row.group(1)), *map(int, re.findall(r"[0-9]+", row.group(2)))]
    return codes


def test_catalogue_covers_entra_facts_and_forty_codes() -> None:
    assert len(aadsts.CATALOGUE) >= 40
    if ENTRA_FACTS.exists():  # only the team's checkout has shared/ beside it: keep the list true
        assert entra_facts_codes(ENTRA_FACTS.read_text()) == ENTRA_FACTS_CODES
    missing = [c for c in ENTRA_FACTS_CODES if aadsts.lookup(c) is None]
    assert missing == []
    for entry in aadsts.CATALOGUE.values():
        assert entry.meaning
        assert entry.fix
        assert entry.error


def test_explain_a_code_and_a_pasted_description() -> None:
    by_code = run("explain", "AADSTS7000215", env={})
    assert by_code.exit_code == 0
    assert "Value" in by_code.output
    assert "Secret ID" in by_code.output
    pasted = (
        "AADSTS50011: The redirect URI 'http://localhost:5001/get_token' specified in the "
        "request does not match. Trace ID: 1 Correlation ID: 2 Timestamp: 2026-01-01"
    )
    result = run("explain", pasted, env={})
    assert "AADSTS50011" in result.output
    assert "localhost vs 127.0.0.1" in result.output
    data = json.loads(run("explain", "--json", "50194", env={}).output)
    assert data["codes"][0]["code"] == "AADSTS50194"
    assert "multi-tenant" in data["codes"][0]["fix"]


def test_explain_unknown_code() -> None:
    result = run("explain", "AADSTS99999999", env={})
    assert result.exit_code == 1
    assert "not in the catalogue" in result.output
    # Microsoft's own lookup, as "Microsoft Entra authentication and authorization error
    # codes" documents it: the page, with the code's digits appended.
    assert "https://login.microsoftonline.com/error?code=99999999" in result.output
    bare = run("explain", "12345", env={})
    assert "https://login.microsoftonline.com/error?code=12345" in bare.output
    nothing = run("explain", "hello", env={})
    assert nothing.exit_code == 1
    assert "https://login.microsoftonline.com/error" in nothing.output
    data = json.loads(run("explain", "--json", "AADSTS99999999 and AADSTS50011", env={}).output)
    assert data["unknown"] == ["AADSTS99999999"]
    assert data["lookups"] == {
        "AADSTS99999999": "https://login.microsoftonline.com/error?code=99999999",
        "AADSTS50011": "https://login.microsoftonline.com/error?code=50011",
    }
    assert data["codes"][0]["lookup"] == "https://login.microsoftonline.com/error?code=50011"


def test_explain_a_known_code_links_microsofts_page_too() -> None:
    result = run("explain", "AADSTS50011", env={})
    assert result.exit_code == 0
    assert "Microsoft's page: https://login.microsoftonline.com/error?code=50011" in result.output
    assert aadsts.lookup_url(7000215) == "https://login.microsoftonline.com/error?code=7000215"


# -- decode -------------------------------------------------------------------------------------
def test_decode_shows_claims_not_verified_and_elides_the_signature(
    entra_emulator: EntraEmulator,
) -> None:
    token = entra_emulator.issue_token(
        client_id=WEB, resource=f"api://{API}", user=ADELE, scopes=["access_as_user"]
    )
    for result in (run("decode", token, env={}), run("decode", "-", env={}, stdin=token + "\n")):
        assert result.exit_code == 0
        assert "NOT VERIFIED" in result.output
        assert "Adele Vance" in result.output
        assert re.search(
            r"exp\s*│ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in (6\d|[789]\d) min\)", result.output
        )
        assert "characters, elided" in result.output
        no_secrets(result.output, token)
    data = json.loads(run("decode", "--json", token, env={}).output)
    assert data["verified"] is False
    assert data["claims"]["oid"] == "0a9c7b3e-4d2f-4e8a-b1c6-5f3d2e1a0b9c"
    assert token.split(".")[2] not in json.dumps(data)


def test_decode_takes_a_pasted_bearer_value_or_header_line(entra_emulator: EntraEmulator) -> None:
    token = entra_emulator.issue_token(
        client_id=WEB, resource=f"api://{API}", user=ADELE, scopes=["access_as_user"]
    )
    pasted = [
        f"Bearer {token}",
        f"bearer {token}",
        f"Authorization: Bearer {token}",
        f"  authorization:BEARER \t{token}  ",
        f"AUTHORIZATION : Bearer {token}",
        f'"Authorization: Bearer {token}"',  # copied with curl's quotes
    ]
    for text in pasted:
        for result in (
            run("decode", text, env={}),
            run("decode", "-", env={}, stdin=f"{text}\r\n"),
        ):
            assert result.exit_code == 0, (text[:30], result.output)
            assert "NOT VERIFIED" in result.output
            assert "Adele Vance" in result.output
            no_secrets(result.output, token)
    # Unquoted, the shell splits the line into words: they are one paste.
    split = run("decode", "Authorization:", "Bearer", token, "--json", env={})
    assert split.exit_code == 0, split.output
    assert json.loads(split.output)["claims"]["name"] == "Adele Vance"
    # --verify checks the token inside the header line.
    settings = env(entra_emulator)
    verified = run("decode", "--verify", f"Authorization: Bearer {token}", env=settings)
    assert verified.exit_code == 0, verified.output
    assert "NOT VERIFIED" not in verified.output


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Bearer", "no token after Bearer"),
        ("Authorization: Bearer", "no token after Bearer"),
        ("Authorization:", "no token here"),
        ("Bearer a.b.c d.e.f", "more than one word after Bearer"),
        ("Authorization: Basic dXNlcjpodW50ZXIy", "the Basic scheme, not Bearer"),
        ("Basic dXNlcjpodW50ZXIy", "the Basic scheme, not Bearer"),
        ("hello world", "more than one word, not a token"),
    ],
)
def test_decode_refuses_what_is_not_one_bearer_token(text: str, says: str) -> None:
    for result in (run("decode", text, env={}), run("decode", "-", env={}, stdin=text)):
        assert result.exit_code != 0
        assert says in result.output, result.output
        assert "Traceback" not in result.output
        assert "dXNlcjpodW50ZXIy" not in result.output  # a Basic credential is never echoed


def test_decode_verify_names_every_missing_setting(
    entra_emulator: EntraEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    token = Mint(entra_emulator).token()
    result = run("decode", token, "--verify", env=ALL_SETTINGS)
    assert result.exit_code != 0
    assert (
        "ENTRA_AUTHORITY (or ENTRA_TENANT_ID) and ENTRA_API_AUDIENCE (or ENTRA_CLIENT_ID) are "
        "not set: looked in the environment (no ./.env here)."
    ) in result.output
    assert "Traceback" not in result.output


def test_decode_expired_shows_ago_and_bad_input(entra_emulator: EntraEmulator) -> None:
    mint = Mint(entra_emulator)
    old = mint.token(exp=int(time.time()) - 180)
    assert re.search(r"\(3 min ago\)", run("decode", old, env={}).output)
    bad = run("decode", "not-a-token", env={})
    assert bad.exit_code != 0
    assert "3" in bad.output
    assert "parts" in bad.output


def _wrong_tokens(emulator: EntraEmulator) -> dict[str, tuple[str, list[str], str]]:
    """kind → (token, extra args, what the verdict must say)."""
    mint = Mint(emulator)
    now = int(time.time())
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "expired": (
            mint.token(exp=now - 600, iat=now - 4000, nbf=now - 4000),
            [],
            "expired 10 min ago",
        ),
        "graph": (mint.token(aud="00000003-0000-0000-c000-000000000000"), [], "Microsoft Graph"),
        "v1 where v2 is expected": (
            mint.token(ver="1.0", iss=f"https://sts.windows.net/{CONTOSO}/", appid=WEB, azp=REMOVE),
            [],
            "requestedAccessTokenVersion",
        ),
        "ID token as access token": (mint.token(scp=REMOVE, azp=REMOVE, nonce="n"), [], "ID token"),
        "wrong tenant": (mint.token(tid=FABRIKAM, iss=emulator.issuer(FABRIKAM)), [], "tenant"),
        "missing scope": (mint.token(), ["--scope", "Data.Write"], "Data.Write"),
        "unknown signing key": (
            mint.token(key=foreign, kid="rotated-away"),
            [],
            "key the tenant does not publish",
        ),
        "another app's token": (mint.token(aud=LEGACY_URI), [], "another application"),
        "forged": (mint.token(key=foreign), [], "signature"),
    }


def test_decode_verify_says_which_check_refuses(entra_emulator: EntraEmulator) -> None:
    settings = env(entra_emulator)
    for kind, (token, extra, says) in _wrong_tokens(entra_emulator).items():
        result = run("decode", token, "--verify", *extra, env=settings)
        assert result.exit_code == 1, (kind, result.output)
        assert "REFUSED" in result.output, kind
        assert says in result.output, (kind, result.output)
        assert "fix:" in result.output, kind
        no_secrets(result.output, token, secret_of(entra_emulator, WEB))
    good = Mint(entra_emulator).token()
    ok = run("decode", good, "--verify", "--scope", "access_as_user", env=settings)
    assert ok.exit_code == 0, ok.output
    assert "VERIFIED" in ok.output
    assert "NOT VERIFIED" not in ok.output


def test_decode_verify_id_token(entra_emulator: EntraEmulator) -> None:
    mint = Mint(entra_emulator)
    id_token = mint.token(aud=WEB, scp=REMOVE, azp=REMOVE, nonce="n")
    settings = env(entra_emulator)
    assert run("decode", id_token, "--verify", "--id-token", env=settings).exit_code == 0
    as_json = json.loads(run("decode", id_token, "--verify", "--json", env=settings).output)
    assert as_json["verification"]["reason"] == "not_an_access_token"


# -- the library's errors carry the same codes and remedies ----------------------------------------
def test_every_error_class_has_a_code_and_a_remedy() -> None:
    from entra_auth import errors

    classes = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, EntraAuthError) and c is not EntraAuthError
    ]
    codes = [c.code for c in classes]
    assert len(set(codes)) == len(codes)
    for cls in classes:
        assert cls.default_remedy or cls.__name__ == "InteractionRequired", cls


def test_api_error_body_carries_reason_and_remedy(entra_emulator: EntraEmulator) -> None:
    from .security.conftest import make_api

    api = make_api(entra_emulator)
    token = Mint(entra_emulator).token(aud="00000003-0000-0000-c000-000000000000")
    body = api.get("/scoped", headers={"Authorization": f"Bearer {token}"}).json
    assert body["reason"] == "graph_token"
    assert "api://" in body["remedy"]
