"""`entra-auth emulator` as a newcomer runs it, and seed files that are wrong fail clearly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from entra_auth.emulator import load_seed
from entra_auth.errors import EmulatorError

BIN = Path(sys.executable).parent / "entra-auth"


def test_emulator_command_starts_prints_and_stops(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [str(BIN), "emulator", "--port", "0", "--browser-port", "0", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 30
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Ctrl-C" in line or not line:
                break
        banner = "".join(lines)
        authority = re.search(r"Authority \(ENTRA_AUTHORITY\): (\S+)", banner)
        ca = re.search(r"CA certificate to trust \(ENTRA_CA_BUNDLE\): (\S+)", banner)
        assert authority, banner
        assert ca, banner
        assert Path(ca.group(1)) == tmp_path / "ca.pem"
        assert "adele@contoso.example" in banner
        assert "4b7d2f1c-3a5e-4c8b-9d61-2e0f7a9b3c15" in banner  # ids printed whole
        assert "Dem8Q~" not in banner  # no client secret on the console
        doc = requests.get(
            f"{authority.group(1)}/v2.0/.well-known/openid-configuration", verify=ca.group(1)
        ).json()
        assert doc["issuer"] == f"{authority.group(1)}/v2.0"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
    # A second start keeps the CA and signing key: clients configured once stay valid.
    ca_before = (tmp_path / "ca.pem").read_bytes()
    key_before = (tmp_path / "signing-key.pem").read_bytes()
    rerun = subprocess.Popen(
        [str(BIN), "emulator", "--port", "0", "--browser-port", "0", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(1.5)
    rerun.send_signal(signal.SIGTERM)
    assert rerun.wait(timeout=15) == 0
    assert (tmp_path / "ca.pem").read_bytes() == ca_before
    assert (tmp_path / "signing-key.pem").read_bytes() == key_before
    assert oct((tmp_path / "signing-key.pem").stat().st_mode & 0o777) == "0o600"


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [str(BIN), "emulator", "--port", str(port), "--state-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert "cannot listen" in result.stderr
    assert "--port" in result.stderr


def _write(tmp_path: Path, text: str, name: str = "seed.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


TENANT = '[[tenants]]\nid = "11111111-1111-1111-1111-111111111111"\ndomain = "t.example"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[tenants]]\nid = 'not-a-guid'\ndomain = 'x'\n", r"tenants\[0\]\.id must be a GUID"),
        (
            TENANT
            + '[[apps]]\nclient_id = "22222222-2222-2222-2222-222222222222"\ntenant = "nope"\n'
            'display_name = "a"\n',
            r"apps\[0\]\.tenant names no tenant",
        ),
        (
            TENANT + '[[apps]]\nclient_id = "22222222-2222-2222-2222-222222222222"\n'
            'tenant = "t.example"\ndisplay_name = "a"\naccess_token_accepted_version = 3\n',
            "access_token_accepted_version must be 1, 2",
        ),
        (
            TENANT
            + "[[users]]\noid = '33333333-3333-3333-3333-333333333333'\ntenant = 't.example'\n"
            "upn = 'u@t.example'\nname = 'U'\n",
            r"users\[0\]\.password must be a non-empty string",
        ),
        ("tenants = [", "is not valid"),
        ("", "tenants must be a list of tables"),
    ],
)
def test_bad_seed_files_name_the_bad_value(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(EmulatorError, match=message) as caught:
        load_seed(_write(tmp_path, text))
    assert caught.value.remedy


def test_json_seed_and_missing_file(tmp_path: Path) -> None:
    data = {
        "tenants": [{"id": "11111111-1111-1111-1111-111111111111", "domain": "t.example"}],
        "users": [],
        "apps": [],
    }
    seed = load_seed(_write(tmp_path, json.dumps(data), "seed.json"))
    assert seed.default_tenant == "11111111-1111-1111-1111-111111111111"
    with pytest.raises(EmulatorError, match="Cannot read the seed file"):
        load_seed(tmp_path / "missing.toml")


def test_default_seed_has_the_demo_directory() -> None:
    seed = load_seed()
    web = seed.app("4b7d2f1c-3a5e-4c8b-9d61-2e0f7a9b3c15")
    assert web is not None
    assert web.redirect_uris == ("http://localhost:5000/get_token",)
    api = seed.app_by_identifier("api://a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c")
    assert api is not None
    assert api.scope("access_as_user")
    assert api.role("Data.Read.All")
    assert sum(not u.is_guest for u in seed.users_of(seed.default_tenant)) == 2
    assert [u.name for u in seed.users_of(seed.default_tenant) if u.is_guest] == [
        "Bob Kelly (Fabrikam)"
    ]
    assert os.path.basename(str(seed.tenant("contoso.example"))) != ""
