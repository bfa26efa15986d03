"""`make demo`'s code path as a separate process: sign in over real HTTP, then stop cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from entra_auth.testing.driver import BrowserlessUser

from .helpers import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_signs_in_and_stops(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ENTRA_")},
        "DEMO_PORT": str(port),
        "DEMO_EMULATOR_PORT": str(free_port()),
        "DEMO_EMULATOR_BROWSER_PORT": str(free_port()),
        "DEMO_STATE_DIR": str(tmp_path / "emulator"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.demo.run"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = ""
        deadline = time.monotonic() + 30
        while "Ctrl-C" not in banner and time.monotonic() < deadline:
            banner += process.stdout.readline()
        assert f"http://localhost:{port}" in banner, banner
        app = requests.Session()
        app.trust_env = False
        login = app.get(f"http://localhost:{port}/login", allow_redirects=False)
        answer = BrowserlessUser().authorize(
            login.headers["Location"], user="megan@contoso.example"
        )
        back = app.get(f"http://localhost:{port}/get_token", params=answer, allow_redirects=False)
        assert back.status_code == 302
        profile = app.get(f"http://localhost:{port}/profile")
        assert re.search(r'id="display-name">Megan Bowen<', profile.text)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "Demo stopped." in output
    assert "Traceback" not in output
    assert answer["code"] not in output  # request logs carry no authorization code
