"""Web sign-in, Flask against FastAPI, in one run: the same demo pages over HTTP on loopback.

The Flask demo under gunicorn (one sync worker) and the FastAPI demo under uvicorn (one
worker), each configured by the same ``ENTRA_*`` settings against the local Entra ID. Measured
by one closed-loop client in this process (requests; the IdP's pages walked by
BrowserlessUser): sign-in round trips per second (``/login`` → the local Entra ID's pages →
the callback: MSAL redeems the code in the server, the ID token is verified, the session
stored) and signed-in page requests per second (``/claims``: the session read, its seal
checked, a page rendered). Sessions in files. Loopback only, bounded in time.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from entra_auth.emulator import EntraEmulator
from entra_auth.testing.driver import BrowserlessUser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import WEB, demo_config  # noqa: E402

from bench.bench_sessions import per_second  # noqa: E402
from bench.common import stop, wait_until_answering  # noqa: E402

ADELE = "adele@contoso.example"


@contextmanager
def served(kind: str, emulator: EntraEmulator, tmp: Path) -> Iterator[str]:
    """The ``kind`` demo ("flask" or "fastapi") on a loopback port, until the block ends."""
    listener = socket.socket()
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    base = f"http://localhost:{port}"
    emulator.add_redirect_uri(WEB, f"{base}/get_token")
    emulator.add_redirect_uri(WEB, f"{base}/")
    settings = demo_config(
        emulator, ENTRA_REDIRECT_URI=f"{base}/get_token", ENTRA_SESSION_DIR=str(tmp / kind)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_", "REDIS_"))}
    env.update({k: str(v) for k, v in settings.items()})
    env["FLASK_SECRET_KEY"] = str(settings["SECRET_KEY"])
    env["PYTHONPATH"] = str(ROOT)
    fd = str(listener.fileno())
    command = (
        ["-m", "gunicorn", "-w", "1", "-b", f"fd://{fd}", "examples.demo.app:app"]
        if kind == "flask"
        else ["-m", "uvicorn", "--fd", fd, "--no-access-log", "examples.fastapi_demo.app:app"]
    )
    server = subprocess.Popen(
        [sys.executable, *command, "--log-level", "warning"],
        env=env,
        cwd=ROOT,
        pass_fds=[listener.fileno()],
    )
    try:
        wait_until_answering(server, f"{base}/", f"the {kind} demo")
        yield base
    finally:
        stop(server)
        listener.close()


def measure(base: str) -> tuple[float, float]:
    idp = BrowserlessUser()

    def sign_in() -> requests.Session:
        browser = requests.Session()
        browser.trust_env = False
        start = browser.get(f"{base}/login", allow_redirects=False, timeout=10)
        answer = idp.authorize(start.headers["Location"], user=ADELE)
        back = browser.get(f"{base}/get_token", params=answer, allow_redirects=False, timeout=10)
        if back.status_code != 302:
            raise RuntimeError(f"the sign-in answered {back.status_code}: {back.text[:300]}")
        return browser

    signed_in = sign_in()

    def page() -> None:
        answer = signed_in.get(f"{base}/claims", allow_redirects=False, timeout=10)
        if answer.status_code != 200:
            raise RuntimeError(f"/claims answered {answer.status_code}")

    return per_second(sign_in), per_second(page)


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        EntraEmulator(state_dir=Path(tmp) / "emulator", port=0, browser_port=0) as emulator,
    ):
        emulator.grant_consent(ADELE, WEB, "User.Read")
        figures = {}
        for kind in ("flask", "fastapi"):
            with served(kind, emulator, Path(tmp)) as base:
                figures[kind] = measure(base)
    print(f"# Web sign-in: Flask (gunicorn) and FastAPI (uvicorn) · {time.strftime('%Y-%m-%d')}")
    print("One worker each, sessions in files, one closed-loop client on loopback.")
    print("| what | Flask /s | FastAPI /s | FastAPI / Flask |")
    print("|---|---|---|---|")
    for i, name in enumerate(("sign-in round trip", "signed-in page (/claims)")):
        flask, fastapi = figures["flask"][i], figures["fastapi"][i]
        print(f"| {name} | {flask:,.0f} | {fastapi:,.0f} | {fastapi / flask:.2f} |")


if __name__ == "__main__":
    main()
