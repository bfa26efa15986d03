"""FastAPI overhead of token checks on loopback: uvicorn (1 and 2 workers), load from wrk.

Requests per second of the same endpoint unprotected, behind entra-auth's ``ApiProtector``
dependency, behind fastapi-azure-auth and behind a plain PyJWT dependency, each as a ratio to
unprotected. Then cold validation (a token never seen before) through the dependency, called
in-process as FastAPI calls it, as a ratio to the core validator's. Loopback only, bounded in
time.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
from fastapi.security import SecurityScopes
from starlette.requests import Request

from bench.bench_http import SECONDS, wrk
from bench.common import API, access_token
from entra_auth.config import EntraConfig
from entra_auth.emulator import EntraEmulator
from entra_auth.integrations.fastapi import ApiProtector
from entra_auth.keys import StaticKeys
from entra_auth.tokens import AccessTokenValidator

ROOT = Path(__file__).resolve().parents[1]
ROUTES = (
    ("open", "unprotected"),
    ("entra", "entra-auth Security(api)"),
    ("faa", "fastapi-azure-auth"),
    ("pyjwt", "plain PyJWT dependency"),
)
ROUNDS = 2  # wrk runs of each route per server, interleaved; the best counts
# Cold validation: each contender validates every token once, in CHUNKS interleaved slices of
# COLD_TOKENS / CHUNKS fresh tokens; the best slice counts.
COLD_TOKENS = 3000
CHUNKS = 10


def serve(env: dict[str, str], token: str, workers: int) -> dict[str, float]:
    """Requests per second of each route, from one uvicorn with ``workers`` workers.

    The listening socket is made here with TCP_NODELAY, which Linux passes on to the accepted
    connections: uvicorn's own socket for several workers lacks it (asyncio sets it only on a
    socket whose protocol is IPPROTO_TCP), and its two writes per response then wait out the
    client's delayed ACK, about 40 ms a request. One socket for both counts, so they compare.
    """
    listener = socket.socket()
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--workers",
            str(workers),
            "--fd",
            str(listener.fileno()),
            "--log-level",
            "warning",
            "--no-access-log",
            "bench.fastapi_app:app",
        ],
        env=env,
        cwd=ROOT,
        pass_fds=[listener.fileno()],
    )
    try:
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(200):
            if server.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {server.returncode}")
            try:
                if requests.get(f"{base}/open", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise RuntimeError("uvicorn did not answer in 20 s")
        for name, _ in ROUTES:
            answer = requests.get(f"{base}/{name}", timeout=5, headers=headers)
            if not answer.ok:
                raise RuntimeError(f"/{name} answered {answer.status_code}: {answer.text}")
        best = {name: 0.0 for name, _ in ROUTES}
        for _ in range(ROUNDS):  # interleaved: a change of load weighs on every route alike
            for name, _ in ROUTES:
                best[name] = max(best[name], wrk(f"{base}/{name}", token))
        return best
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
        listener.close()


def cold(emulator: EntraEmulator) -> tuple[float, float]:
    """Fresh tokens per second: the core validator's, and through the FastAPI dependency."""
    config = EntraConfig(
        authority=emulator.authority, client_id=API, ca_bundle=str(emulator.ca_path)
    )
    signing = emulator.signing_key
    keys = StaticKeys({signing.kid: signing.private_key.public_key()})
    core = AccessTokenValidator(config, keys)
    api = ApiProtector(config, keys=keys)
    tokens = [access_token(emulator, oid=str(uuid.uuid4())) for _ in range(COLD_TOKENS)]
    size = COLD_TOKENS // CHUNKS
    chunks = [tokens[i * size : (i + 1) * size] for i in range(CHUNKS)]
    needs = SecurityScopes(scopes=["access_as_user"])

    def request(token: str) -> Request:
        return Request(
            {
                "type": "http",
                "method": "GET",
                "path": "/entra",
                "query_string": b"",
                "headers": [(b"authorization", f"Bearer {token}".encode())],
            }
        )

    async def through_dependency(requests_: list[Request]) -> float:
        start = time.perf_counter()
        for req in requests_:  # as FastAPI resolves it: authenticate, then the scopes
            await api(req, needs, principal=await api.authenticate(req))
        return len(requests_) / (time.perf_counter() - start)

    def through_core(chunk: list[str]) -> float:
        start = time.perf_counter()
        for token in chunk:
            core.authorize(core.validate(token), scopes=["access_as_user"])
        return len(chunk) / (time.perf_counter() - start)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(api.startup())
        best_core = best_dependency = 0.0
        for i, chunk in enumerate(chunks):  # each goes first in turn: order weighs on neither
            prepared = [request(token) for token in chunk]
            if i % 2:
                best_core = max(best_core, through_core(chunk))
            best_dependency = max(
                best_dependency, loop.run_until_complete(through_dependency(prepared))
            )
            if not i % 2:
                best_core = max(best_core, through_core(chunk))
        loop.run_until_complete(api.aclose())
    finally:
        loop.close()
    return best_core, best_dependency


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        EntraEmulator(state_dir=Path(tmp), port=0, browser_port=0) as emulator,
    ):
        day = time.strftime("%Y-%m-%d")
        if shutil.which("wrk") is None:
            print("wrk is missing (apt-get install wrk): FastAPI HTTP benchmark skipped.")
        else:
            token = access_token(emulator)
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "ENTRA_AUTHORITY": emulator.authority,
                "ENTRA_API_AUDIENCE": f"{API},api://{API}",
                "ENTRA_CA_BUNDLE": str(emulator.ca_path),
                "BENCH_ISSUER": emulator.issuer(),
                "BENCH_JWKS_URI": f"{emulator.authority}/discovery/v2.0/keys",
                "BENCH_CLIENT_ID": API,
                "BENCH_TENANT_ID": emulator.tenant_id,
            }
            print(f"# FastAPI overhead · uvicorn · wrk -c8 {SECONDS}s, best of {ROUNDS} · {day}")
            print("| workers | endpoint | requests/s | x unprotected |")
            print("|---|---|---|---|")
            for workers in (1, 2):
                results = serve(env, token, workers)
                for name, label in ROUTES:
                    print(
                        f"| {workers} | {label} | {results[name]:,.0f} | "
                        f"{results[name] / results['open']:.2f} |"
                    )
            print()
        core, dependency = cold(emulator)
        print(f"# Cold validation through the FastAPI dependency · {COLD_TOKENS:,} fresh tokens")
        print("| what | validations/s | x core |")
        print("|---|---|---|")
        print(f"| core AccessTokenValidator.validate | {core:,.0f} | 1.00 |")
        print(
            f"| ApiProtector dependency, called in-process | {dependency:,.0f} | "
            f"{dependency / core:.2f} |"
        )


if __name__ == "__main__":
    main()
