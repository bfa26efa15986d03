"""`entra-auth doctor`, `explain` and `decode` against the emulator, each fault and each bad token.

Every output is also checked for what must never appear: a client secret or a token.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric import rsa

from entra_auth import aadsts
from entra_auth.cli import main
from entra_auth.config import fingerprint
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
def test_catalogue_covers_entra_facts_and_forty_codes() -> None:
    assert len(aadsts.CATALOGUE) >= 40
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
    assert run("explain", "hello", env={}).exit_code == 1


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
            "accessTokenAcceptedVersion",
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
