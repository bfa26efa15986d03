"""`make demo`'s code path as a separate process: sign in over real HTTP, then stop cleanly."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from entra_auth.testing.driver import BrowserlessUser

from .helpers import HANG_GUARD, ROOT, DemoProcess

PORTS = ("DEMO_PORT", "DEMO_EMULATOR_PORT", "DEMO_EMULATOR_BROWSER_PORT")


def test_demo_runs_signs_in_and_stops(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ENTRA_")},
        # Port 0 everywhere: the system picks free ports, the demo prints the app's.
        "DEMO_PORT": "0",
        "DEMO_EMULATOR_PORT": "0",
        "DEMO_EMULATOR_BROWSER_PORT": "0",
        "DEMO_STATE_DIR": str(tmp_path / "emulator"),
    }
    demo = DemoProcess(env, cwd=tmp_path)
    try:
        url = demo.wait_ready()
        assert url != "http://localhost:0"
        app = requests.Session()
        app.trust_env = False
        login = app.get(f"{url}/login", allow_redirects=False)
        assert login.status_code == 302, login.text
        answer = BrowserlessUser().authorize(
            login.headers["Location"], user="megan@contoso.example"
        )
        back = app.get(f"{url}/get_token", params=answer, allow_redirects=False)
        assert back.status_code == 302
        profile = app.get(f"{url}/profile")
        assert re.search(r'id="display-name">Megan Bowen<', profile.text)
    finally:
        returncode = demo.stop()
    output = demo.output
    assert returncode == 0, output  # stopped by SIGTERM within the bound, not killed
    assert "Demo stopped." in output
    assert "Traceback" not in output
    assert answer["code"] not in output  # request logs carry no authorization code


def demo_env(tmp_path: Path, **ports: str) -> dict[str, str]:
    """The demo with the local Entra ID, every port the system's pick unless given."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("ENTRA_")},
        **dict.fromkeys(PORTS, "0"),
        "DEMO_STATE_DIR": str(tmp_path / "emulator"),
        "PYTHONPATH": str(ROOT),
        **ports,
    }


def run_demo(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`make demo`'s command, expected to stop by itself; a demo that starts instead is
    killed at the hang guard and the test fails there."""
    return subprocess.run(
        [sys.executable, "-m", "examples.demo.run"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )


@pytest.mark.parametrize("variable", PORTS)
def test_a_busy_port_is_one_line_naming_it_and_its_variable(tmp_path: Path, variable: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)  # busy as a running server is: something listens there
        port = int(held.getsockname()[1])
        result = run_demo(demo_env(tmp_path, **{variable: str(port)}), tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    said = result.stderr.splitlines()
    assert len(said) == 1, result.stderr  # one line: no traceback, no werkzeug message
    found = re.fullmatch(
        rf"Port {port} is in use: set {variable} to another port \({variable}=(\d+) make demo\)",
        said[0],
    )
    assert found is not None, said[0]
    assert int(found.group(1)) not in (port, 0)
    assert not (tmp_path / "emulator").exists()  # stopped before the local Entra ID started


@pytest.mark.parametrize(
    ("ports", "line"),
    [
        (
            {"DEMO_PORT": "five thousand"},
            "DEMO_PORT is 'five thousand', not a port: set it to a number from 1 to 65535 "
            "(0 lets the system pick a free one)",
        ),
        (
            {"DEMO_EMULATOR_PORT": "70000"},
            "DEMO_EMULATOR_PORT is '70000', not a port: set it to a number from 1 to 65535 "
            "(0 lets the system pick a free one)",
        ),
        (
            {"DEMO_EMULATOR_PORT": "18443", "DEMO_EMULATOR_BROWSER_PORT": "18443"},
            "DEMO_EMULATOR_PORT and DEMO_EMULATOR_BROWSER_PORT are both 18443: give each its "
            "own port (DEMO_EMULATOR_BROWSER_PORT=",
        ),
    ],
)
def test_a_bad_port_setting_is_one_line(tmp_path: Path, ports: dict[str, str], line: str) -> None:
    result = run_demo(demo_env(tmp_path, **ports), tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    said = result.stderr.splitlines()
    assert len(said) == 1, result.stderr
    assert said[0].startswith(line), said[0]
