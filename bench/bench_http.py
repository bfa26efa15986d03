"""HTTP overhead of token checks on loopback: gunicorn (1 and 2 workers), load from wrk.

Requests per second of the same endpoint unprotected, behind entra-auth's decorator, and behind
a plain PyJWT check, each as a ratio to unprotected. Loopback only, bounded in time.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import requests

from bench.common import API, access_token
from entra_auth.emulator import EntraEmulator

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 4


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wrk(url: str, token: str, prefix: Sequence[str] = (), seconds: int = SECONDS) -> float:
    """Requests per second of ``url`` from wrk (``prefix``: e.g. taskset, to pin it)."""
    out = subprocess.run(
        [
            *prefix,
            "wrk",
            "-t1",
            "-c8",
            f"-d{seconds}s",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if found is None or non2xx is not None:
        raise RuntimeError(f"wrk failed or saw errors:\n{out}")
    return float(found.group(1))


def main() -> None:
    if shutil.which("wrk") is None:
        print("wrk is missing (apt-get install wrk): HTTP benchmark skipped.")
        return
    with (
        tempfile.TemporaryDirectory() as tmp,
        EntraEmulator(state_dir=Path(tmp), port=0, browser_port=0) as emulator,
    ):
        token = access_token(emulator)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "ENTRA_AUTHORITY": emulator.authority,
            "ENTRA_API_AUDIENCE": f"{API},api://{API}",
            "ENTRA_CA_BUNDLE": str(emulator.ca_path),
            "BENCH_ISSUER": emulator.issuer(),
            "BENCH_JWKS_URI": f"{emulator.authority}/discovery/v2.0/keys",
        }
        day = time.strftime("%Y-%m-%d")
        print(f"# HTTP overhead · gunicorn sync workers · wrk -c8 {SECONDS}s · {day}")
        print("| workers | endpoint | requests/s | x unprotected |")
        print("|---|---|---|---|")
        for workers in (1, 2):
            port = free_port()
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-w",
                    str(workers),
                    "-b",
                    f"127.0.0.1:{port}",
                    "--log-level",
                    "warning",
                    "bench.http_app:app",
                ],
                env=env,
                cwd=ROOT,
            )
            try:
                base = f"http://127.0.0.1:{port}"
                for _ in range(100):
                    try:
                        if requests.get(
                            f"{base}/entra", timeout=1, headers={"Authorization": f"Bearer {token}"}
                        ).ok:
                            break
                    except requests.RequestException:
                        time.sleep(0.1)
                results = {
                    name: wrk(f"{base}/{name}", token) for name in ("open", "entra", "pyjwt")
                }
            finally:
                server.terminate()
                server.wait(timeout=20)
            for name, label in (
                ("open", "unprotected"),
                ("entra", "entra-auth @require_token"),
                ("pyjwt", "plain PyJWT check"),
            ):
                print(
                    f"| {workers} | {label} | {results[name]:,.0f} | "
                    f"{results[name] / results['open']:.2f} |"
                )


if __name__ == "__main__":
    main()
