"""`make demo`'s code path as a separate process: sign in over real HTTP, then stop cleanly."""

from __future__ import annotations

import os
import re
from pathlib import Path

import requests

from entra_auth.testing.driver import BrowserlessUser

from .helpers import DemoProcess


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
