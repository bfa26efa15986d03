"""`entra-auth emulator` as a newcomer runs it (with a .env for their app, their app's redirect
URI, a seed of their own to start from), and seed files that are wrong fail clearly."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from dotenv import dotenv_values

from entra_auth.cli.emulator import ENV_FILE_MARKER
from entra_auth.config import EntraConfig
from entra_auth.emulator import load_seed
from entra_auth.emulator.admin import ADMIN_HEADER
from entra_auth.emulator.seed import default_seed_path
from entra_auth.errors import EmulatorError

BIN = Path(sys.executable).parent / "entra-auth"
PATIENCE = 30.0  # seconds: far beyond a healthy start or stop, reached only by a hang


class Command:
    """``entra-auth emulator`` on ports 0, in a process of its own; killed if a test fails."""

    def __init__(self, tmp_path: Path, *extra: str, cwd: Path | None = None):
        self.process = subprocess.Popen(
            [
                str(BIN),
                "emulator",
                "--port",
                "0",
                "--browser-port",
                "0",
                "--state-dir",
                str(tmp_path),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=cwd,
        )
        self.banner = self._read_banner()

    def _read_banner(self) -> str:
        """The output up to "Press Ctrl-C to stop.": the readiness signal of the command.

        Read in a thread so that a command that prints nothing fails the test after PATIENCE
        seconds instead of blocking it.
        """
        lines: list[str] = []
        done = threading.Event()

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                lines.append(line)
                if "Ctrl-C" in line:
                    break
            done.set()

        threading.Thread(target=read, daemon=True).start()
        assert done.wait(PATIENCE), "no banner from `entra-auth emulator`:\n" + "".join(lines)
        return "".join(lines)

    def field(self, pattern: str) -> str:
        found = re.search(pattern, self.banner)
        assert found, self.banner
        return found.group(1)

    def stop(self, signum: int) -> int:
        """Send ``signum`` and return the exit code; a process still running at PATIENCE fails."""
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=PATIENCE)
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def test_emulator_command_starts_prints_and_stops(tmp_path: Path) -> None:
    command = Command(tmp_path)
    silent: socket.socket | None = None
    try:
        authority = command.field(r"Authority \(ENTRA_AUTHORITY\): (\S+)")
        ca = command.field(r"CA certificate to trust \(ENTRA_CA_BUNDLE\): (\S+)")
        pages = command.field(r"Sign-in pages \(plain http, no certificate warning\): (\S+)")
        assert Path(ca) == tmp_path / "ca.pem"
        assert "adele@contoso.example" in command.banner
        assert "4b7d2f1c-3a5e-4c8b-9d61-2e0f7a9b3c15" in command.banner  # ids printed whole
        assert "Dem8Q~" not in command.banner  # no client secret on the console
        # Asked for port 0, the banner shows the ports bound, and they answer.
        assert urlsplit(authority).port not in (None, 0)
        assert urlsplit(pages).port not in (None, 0)
        back_channel = requests.Session()
        back_channel.trust_env = False
        back_channel.verify = ca
        doc = back_channel.get(
            f"{authority}/v2.0/.well-known/openid-configuration", timeout=PATIENCE
        ).json()
        assert doc["issuer"] == f"{authority}/v2.0"
        browser = requests.Session()
        browser.trust_env = False
        assert browser.get(f"{pages}/", timeout=PATIENCE).status_code == 200
        # Stopped with connections open: both sessions keep theirs alive, and one client is
        # connected to the HTTPS port without ever starting TLS.
        silent = socket.create_connection(
            ("127.0.0.1", urlsplit(authority).port or 0), timeout=PATIENCE
        )
        assert command.stop(signal.SIGINT) == 0
    finally:
        if silent is not None:
            silent.close()
        command.close()
    # A second start keeps the CA and signing key: clients configured once stay valid.
    ca_before = (tmp_path / "ca.pem").read_bytes()
    key_before = (tmp_path / "signing-key.pem").read_bytes()
    rerun = Command(tmp_path)
    try:
        assert rerun.stop(signal.SIGTERM) == 0
    finally:
        rerun.close()
    assert (tmp_path / "ca.pem").read_bytes() == ca_before
    assert (tmp_path / "signing-key.pem").read_bytes() == key_before
    assert oct((tmp_path / "signing-key.pem").stat().st_mode & 0o777) == "0o600"


def test_emulator_command_refuses_a_bad_seed_naming_the_value(tmp_path: Path) -> None:
    seed = _write(
        tmp_path,
        TENANT + '[[apps]]\nclient_id = "22222222-2222-2222-2222-222222222222"\n'
        'tenant = "t.example"\ndisplay_name = "a"\nmulti_tenant = "false"\n',
    )
    result = subprocess.run(
        [str(BIN), "emulator", "--port", "0", "--browser-port", "0", "--seed", str(seed)],
        capture_output=True,
        text=True,
        timeout=PATIENCE * 2,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "apps[0].multi_tenant: expected bool, got str" in result.stderr
    assert "Press Ctrl-C" not in result.stdout  # the banner never came: it never started


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    # The port is held (bound and listening) for the whole test, never released before use.
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
        (
            "[[tenants]]\nid = 'not-a-guid'\ndomain = 'x'\n",
            r"tenants\[0\]\.id: must be a GUID .*\(got 'not-a-guid'\)",
        ),
        (
            TENANT
            + '[[apps]]\nclient_id = "22222222-2222-2222-2222-222222222222"\ntenant = "nope"\n'
            'display_name = "a"\n',
            r"apps\[0\]\.tenant: names no tenant of the seed \('nope'\)",
        ),
        (
            TENANT + '[[apps]]\nclient_id = "22222222-2222-2222-2222-222222222222"\n'
            'tenant = "t.example"\ndisplay_name = "a"\naccess_token_accepted_version = 3\n',
            r"apps\[0\]\.access_token_accepted_version: must be one of 1, 2 \(got 3\)",
        ),
        (
            TENANT
            + "[[users]]\noid = '33333333-3333-3333-3333-333333333333'\ntenant = 't.example'\n"
            "upn = 'u@t.example'\nname = 'U'\n",
            r"users\[0\]\.password: missing",
        ),
        ("tenants = [", "is not valid"),
        ("", r"Seed .*seed\.toml: tenants: missing"),
        ("tenants = 3", r"tenants: expected array, got int"),
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


# -- what the command gives the user's project ----------------------------------------------------
WEB = "4b7d2f1c-3a5e-4c8b-9d61-2e0f7a9b3c15"
API = "a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c"
WEB_SECRET = "Dem8Q~local-web-app-secret.not-for-production"  # the seed's, public
ON_FREE_PORTS = ("emulator", "--port", "0", "--browser-port", "0")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``entra-auth`` run to its end (a refusal, or a command that exits), bounded in time."""
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, timeout=PATIENCE * 2, cwd=cwd
    )


def project(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


def test_env_file_is_written_private_and_points_an_app_at_the_emulator(tmp_path: Path) -> None:
    here = project(tmp_path)
    state = tmp_path / "state"
    extra = ("--env-file", ".env", "--redirect-uri", "http://localhost:5001/get_token")
    command = Command(state, *extra, cwd=here)
    try:
        authority = command.field(r"Authority \(ENTRA_AUTHORITY\): (\S+)")
        admin_key = command.field(rf"{ADMIN_HEADER}: (\S+)")
        assert "Wrote .env: the ENTRA_* settings for entra-auth demo web app" in command.banner
        assert WEB_SECRET not in command.banner  # written to the file, not shown
        env_file = here / ".env"
        assert oct(env_file.stat().st_mode & 0o777) == "0o600"  # it holds the client secret
        assert env_file.read_text().splitlines()[0] == ENV_FILE_MARKER
        assert dotenv_values(env_file) == {
            "ENTRA_AUTHORITY": authority,
            "ENTRA_CLIENT_ID": WEB,
            "ENTRA_CA_BUNDLE": str((state / "ca.pem").resolve()),
            "ENTRA_CLIENT_SECRET": WEB_SECRET,
            "ENTRA_REDIRECT_URI": "http://localhost:5001/get_token",  # the --redirect-uri
            "ENTRA_API_AUDIENCE": f"{API},api://{API}",
        }
        # What an app reads from it reaches the emulator, trusting its CA.
        config = EntraConfig.from_mapping(dotenv_values(env_file))
        http = requests.Session()
        http.trust_env = False
        http.verify = str(config.ca_bundle)
        assert http.get(config.metadata_url, timeout=PATIENCE).json()["issuer"] == (
            f"{authority}/v2.0"
        )
        # A URI given on the command line is part of the start: the control API's reset keeps
        # it, and drops one added while running.
        apps = f"{authority.rsplit('/', 1)[0]}/_emulator/apps/{WEB}/redirect-uris"
        key = {ADMIN_HEADER: admin_key}
        http.post(apps, json={"uri": "http://localhost:5002/get_token"}, headers=key)
        assert http.post(apps.replace(f"apps/{WEB}/redirect-uris", "reset"), headers=key).ok
        after = http.post(apps, json={"uri": "http://localhost:5003/"}, headers=key).json()
        assert after["redirect_uris"] == [
            "http://localhost:5000/get_token",
            "http://localhost:5001/get_token",
            "http://localhost:5003/",
        ]
        assert command.stop(signal.SIGTERM) == 0
    finally:
        command.close()
    # The next start rewrites the file it wrote (new ports), without --force.
    again = Command(state, *extra, cwd=here)
    try:
        authority = again.field(r"Authority \(ENTRA_AUTHORITY\): (\S+)")
        assert dotenv_values(here / ".env")["ENTRA_AUTHORITY"] == authority
        assert oct((here / ".env").stat().st_mode & 0o777) == "0o600"
        assert again.stop(signal.SIGTERM) == 0
    finally:
        again.close()


def test_env_file_never_replaces_the_users_own_file_without_force(tmp_path: Path) -> None:
    here = project(tmp_path)
    state = str(tmp_path / "state")
    mine = here / ".env"
    mine.write_text("FLASK_SECRET_KEY=mine\n")
    mine.chmod(0o644)
    refused = run(*ON_FREE_PORTS, "--state-dir", state, "--env-file", ".env", cwd=here)
    assert refused.returncode != 0
    assert "Press Ctrl-C" not in refused.stdout  # refused before starting
    assert refused.stderr.strip() == (
        "Error: Not writing .env: it exists and entra-auth emulator did not write it. "
        "Pass --force to replace it, or name another file with --env-file."
    )
    assert mine.read_text() == "FLASK_SECRET_KEY=mine\n"
    # Never through a link, --force or not: the target stays as it was.
    target = tmp_path / "elsewhere"
    target.write_text("untouched\n")
    (here / "linked.env").symlink_to(target)
    linked = run(
        *ON_FREE_PORTS, "--state-dir", state, "--env-file", "linked.env", "--force", cwd=here
    )
    assert linked.returncode != 0
    assert "Cannot write linked.env" in linked.stderr
    assert "Local Entra ID stopped." in linked.stdout  # it had started: stopped, then the error
    assert target.read_text() == "untouched\n"
    # --force replaces the user's file, and makes it private.
    forced = Command(tmp_path / "state", "--env-file", ".env", "--force", cwd=here)
    try:
        assert dotenv_values(mine)["ENTRA_CLIENT_ID"] == WEB
        assert oct(mine.stat().st_mode & 0o777) == "0o600"
        assert forced.stop(signal.SIGTERM) == 0
    finally:
        forced.close()


def test_env_file_dash_prints_the_settings_of_the_app_chosen(tmp_path: Path) -> None:
    here = project(tmp_path)
    command = Command(
        tmp_path / "state", "--env-file", "-", "--app", "entra-auth demo API", cwd=here
    )
    try:
        authority = command.field(r"Authority \(ENTRA_AUTHORITY\): (\S+)")
        printed = command.banner.split("local and public):\n", 1)[1].split("Try: curl")[0]
        assert dotenv_values(stream=io.StringIO(printed)) == {
            "ENTRA_AUTHORITY": authority,
            "ENTRA_CLIENT_ID": API,  # an API: no redirect URI
            "ENTRA_CA_BUNDLE": str((tmp_path / "state" / "ca.pem").resolve()),
            # a middle tier too: its secret for the on-behalf-of flow
            "ENTRA_CLIENT_SECRET": "Api8Q~local-demo-api-secret.not-for-production",
            "ENTRA_API_AUDIENCE": f"{API},api://{API}",
        }
        assert command.stop(signal.SIGINT) == 0
    finally:
        command.close()
    assert list(here.iterdir()) == []  # printed, not written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--redirect-uri", "http://app.example/get_token"),
            "Error: The redirect URI 'http://app.example/get_token' is plain http on a host "
            "other than localhost or 127.0.0.1.",
        ),
        (("--redirect-uri", "https://app.example/#x"), "has a fragment"),
        (("--app", "nope", "--env-file", ".env"), "Error: The seed has no app 'nope'."),
        (("--api", "nope"), "Error: The seed has no app 'nope'."),
    ],
)
def test_a_wrong_app_or_redirect_uri_is_refused_before_the_start(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    here = project(tmp_path)
    state = str(tmp_path / "state")
    result = run(*ON_FREE_PORTS, "--state-dir", state, *args, cwd=here)
    assert result.returncode != 0
    assert message in result.stderr
    assert "What to do:" in result.stderr
    assert "Press Ctrl-C" not in result.stdout
    assert list(here.iterdir()) == []


def test_write_seed_gives_a_seed_to_start_from(tmp_path: Path) -> None:
    result = run("emulator", "--write-seed", "my-seed.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "entra-auth emulator --seed my-seed.toml" in result.stdout
    assert "entra_emulator_seed = my-seed.toml" in result.stdout
    written = tmp_path / "my-seed.toml"
    assert written.read_bytes() == default_seed_path().read_bytes()  # its comments too
    assert load_seed(written) == load_seed()
    # It never overwrites: the user's edits stay.
    written.write_text(written.read_text() + "# my edits\n")
    edited = written.read_text()
    again = run("emulator", "--write-seed", "my-seed.toml", cwd=tmp_path)
    assert again.returncode != 0
    assert "Not writing my-seed.toml: it exists" in again.stderr
    assert written.read_text() == edited
    both = run("emulator", "--write-seed", "x.toml", "--seed", "my-seed.toml", cwd=tmp_path)
    assert both.returncode == 2  # a usage error
    assert "drop --seed" in both.stderr
    assert not (tmp_path / "x.toml").exists()
