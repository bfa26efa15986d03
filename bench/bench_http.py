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
from pathlib import Path

import jwt
import requests

from entra_auth.emulator import EntraEmulator

ROOT = Path(__file__).resolve().parents[1]
API = "a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c"
WEB = "4b7d2f1c-3a5e-4c8b-9d61-2e0f7a9b3c15"
SECONDS = 4


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def token_for(emulator: EntraEmulator) -> str:
    now = int(time.time())
    claims = {
        "aud": API,
        "iss": emulator.issuer(),
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "tid": emulator.tenant_id,
        "oid": "0a9c7b3e-4d2f-4e8a-b1c6-5f3d2e1a0b9c",
        "sub": "s" * 43,
        "scp": "access_as_user",
        "ver": "2.0",
        "azp": WEB,
        "name": "Adele Vance",
    }
    key = emulator.signing_key
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})


def wrk(url: str, token: str) -> float:
    out = subprocess.run(
        ["wrk", "-t1", "-c8", f"-d{SECONDS}s", "-H", f"Authorization: Bearer {token}", url],
        capture_output=True,
        text=True,
        timeout=SECONDS + 30,
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
        token = token_for(emulator)
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
