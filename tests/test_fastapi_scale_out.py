"""FastAPI sign-in under real uvicorn: two processes, one Redis. Sign-in starts on one and its
callback lands on the other; concurrent refreshes on both keep the refresh-token chain intact
(strict rotation at the local Entra ID: a lost newer refresh token would show); sign-out on one
ends the session on the other."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests
from cryptography.fernet import Fernet

from entra_auth.emulator import EntraEmulator
from entra_auth.testing.driver import BrowserlessUser

from .helpers import MEGAN, WEB, secret_of

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = "http://localhost"  # the load balancer's address: the test plays the load balancer
READY_POLLS = 300  # bounded readiness: 300 polls, each a bounded request


class Uvicorn:
    """``uvicorn tests.fastapi_web_app:app`` on a socket bound here (port 0, reported by the
    system), ready once it answers; stopped with SIGTERM, killed if it does not exit."""

    def __init__(self, env: dict[str, str]):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--fd",
                str(self.listener.fileno()),
                "--log-level",
                "warning",
                "tests.fastapi_web_app:app",
            ],
            cwd=ROOT,
            env=env,
            pass_fds=[self.listener.fileno()],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_ready(self) -> None:
        for _ in range(READY_POLLS):
            if self.process.poll() is not None:
                raise AssertionError(f"uvicorn exited: {self.process.communicate()[0]}")
            try:
                if requests.get(f"{self.url}/ready", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=0.1)  # a bounded pause that also sees an exit
        raise AssertionError("uvicorn did not answer.")

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            output, _ = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate(timeout=10)
        self.listener.close()
        return self.process.returncode, output


@pytest.fixture
def two_instances(
    entra_emulator: EntraEmulator, redis_url: str, tmp_path: Path
) -> Iterator[tuple[Uvicorn, Uvicorn]]:
    entra_emulator.add_redirect_uri(WEB, f"{PUBLIC}/get_token")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_", "REDIS_"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "ENTRA_AUTHORITY": entra_emulator.authority,
            "ENTRA_CLIENT_ID": WEB,
            "ENTRA_CLIENT_SECRET": secret_of(entra_emulator, WEB),
            "ENTRA_CA_BUNDLE": str(entra_emulator.ca_path),
            "ENTRA_REDIRECT_URI": f"{PUBLIC}/get_token",
            "REDIS_URL": redis_url,
            "ENTRA_TOKEN_CACHE_KEY": Fernet.generate_key().decode(),
            "ENTRA_SESSION_DIR": str(tmp_path / "unused"),
            "SECRET_KEY": "shared-by-every-instance-" + "k" * 32,
        }
    )
    started = [Uvicorn(env), Uvicorn(env)]
    try:
        for server in started:
            server.wait_ready()
        yield started[0], started[1]
    finally:
        results = [server.stop() for server in started]  # every one stopped, even on failure
    for code, output in results:
        # uvicorn shuts down on SIGTERM, then re-raises it: -15, not -9 (killed after 20 s).
        assert code == -signal.SIGTERM, (code, output)
        assert "Traceback" not in output, output


def test_two_uvicorn_processes_behave_as_one(
    two_instances: tuple[Uvicorn, Uvicorn], entra_emulator: EntraEmulator, redis_url: str
) -> None:
    a, b = two_instances
    entra_emulator.settings.access_token_lifetime = (90, 90)  # every token use refreshes
    entra_emulator.settings.refresh_token_rotation = "strict"  # a lost newer RT would show
    user = requests.Session()
    user.trust_env = False

    login = user.get(f"{a.url}/login", allow_redirects=False)
    answer = BrowserlessUser().authorize(login.headers["location"], user=MEGAN)
    callback = user.get(f"{b.url}/get_token", params=answer, allow_redirects=False)
    assert callback.status_code == 302, callback.text

    before = entra_emulator.request_counts()["token"]
    assert user.get(f"{a.url}/profile").json()["name"] == "Megan Bowen"
    assert user.get(f"{b.url}/profile").json()["name"] == "Megan Bowen"
    assert entra_emulator.request_counts()["token"] == before + 2  # one refresh each

    with ThreadPoolExecutor(max_workers=8) as pool:  # both instances refresh at once
        urls = [f"{(a, b)[i % 2].url}/profile" for i in range(12)]
        answers = list(pool.map(lambda url: user.get(url, allow_redirects=False), urls))
    assert [r.status_code for r in answers] == [200] * 12, [r.text for r in answers]
    assert {r.json()["name"] for r in answers} == {"Megan Bowen"}
    assert user.get(f"{a.url}/profile").json()["name"] == "Megan Bowen"

    client = redis.Redis.from_url(redis_url)
    handles = list(entra_emulator.state.refresh_grants)
    values = [client.get(k) or b"" for k in client.keys("entra:tokens:*") if b":lock" not in k]
    assert values
    for value in values:  # encrypted: no refresh token handle in the clear
        assert not any(h.encode() in value for h in handles)

    assert user.post(f"{b.url}/logout", allow_redirects=False).status_code == 302
    gone = user.get(f"{a.url}/profile", allow_redirects=False)
    assert gone.status_code == 302
    assert gone.headers["location"] == "/login?next=%2Fprofile"
    assert client.keys("entra:tokens:*") == []
