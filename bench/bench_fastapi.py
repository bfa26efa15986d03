"""FastAPI overhead of token checks on loopback: uvicorn (1 and 2 workers), load from wrk.

Requests per second of the same endpoint unprotected, behind a ``Security`` dependency that
does nothing (what FastAPI's resolution of any dependency costs: the floor of every check made
as one), behind entra-auth's ``ApiProtector`` dependency, behind fastapi-azure-auth and behind
a plain PyJWT dependency, each as a ratio to unprotected and to the floor. Then cold
validation (a token never seen before) through the dependency, called in-process as FastAPI
calls it, as a ratio to the core validator's. Loopback only, bounded in time.

This machine's two cores are shared by the server, wrk and anything else running, and a run's
speed drifts by more than the differences measured. So every figure is paired: the routes run
in turn within each round, a ratio is taken within the round, and the median of the rounds'
ratios is printed. With one worker, the server runs on one core and wrk on the other
(``taskset``, when there are two), so they do not take turns on one.
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
from collections.abc import Callable
from pathlib import Path
from statistics import median

import requests
from fastapi.security import SecurityScopes
from starlette.requests import Request

from bench.bench_http import wrk
from bench.common import API, access_token, stop, wait_until_answering
from entra_auth.config import EntraConfig
from entra_auth.emulator import EntraEmulator
from entra_auth.integrations.fastapi import ApiProtector
from entra_auth.keys import StaticKeys
from entra_auth.tokens import AccessTokenValidator

ROOT = Path(__file__).resolve().parents[1]
ROUTES = (
    ("open", "unprotected"),
    ("floor", "a Security dependency doing nothing"),
    ("entra", "entra-auth Security(api)"),
    ("faa", "fastapi-azure-auth"),
    ("pyjwt", "plain PyJWT dependency"),
)
# wrk runs of each route per server, in turn, SECONDS each; the median round's ratio counts.
# Many short rounds rather than a few long ones: the load drifts over seconds.
ROUNDS = 10
SECONDS = 1
# Cold validation: each contender validates every token once, in CHUNKS slices of
# COLD_TOKENS / CHUNKS fresh tokens taken in turn; the median slice's ratio counts.
COLD_TOKENS = 6000
CHUNKS = 60
PINNED = (
    hasattr(os, "sched_getaffinity")
    and len(os.sched_getaffinity(0)) >= 2
    and bool(shutil.which("taskset"))
)


def serve(env: dict[str, str], token: str, workers: int) -> list[dict[str, float]]:
    """Requests per second of each route in each round, from one uvicorn with ``workers``
    workers (one worker: pinned to the second core, wrk to the first, when ``PINNED``).

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
    pinned = PINNED and workers == 1
    server = subprocess.Popen(
        [
            *(["taskset", "-c", "1"] if pinned else []),
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
        wait_until_answering(server, f"{base}/open", "uvicorn")
        for name, _ in ROUTES:
            answer = requests.get(f"{base}/{name}", timeout=5, headers=headers)
            if not answer.ok:
                raise RuntimeError(f"/{name} answered {answer.status_code}: {answer.text}")
        load = ["taskset", "-c", "0"] if pinned else []
        rounds = []
        for _ in range(ROUNDS):  # in turn: a change of load weighs on every route alike
            rounds.append({name: wrk(f"{base}/{name}", token, load, SECONDS) for name, _ in ROUTES})
        return rounds
    finally:
        stop(server)
        listener.close()


def cold(emulator: EntraEmulator) -> dict[str, tuple[float, float]]:
    """Fresh tokens per second of each contender, and its ratio to the core validator's (the
    medians of the slices). The control is a second core validator measured as the first: the
    spread of the measurement itself, which two identical validators show."""
    config = EntraConfig(
        authority=emulator.authority, client_id=API, ca_bundle=str(emulator.ca_path)
    )
    signing = emulator.signing_key
    keys = StaticKeys({signing.kid: signing.private_key.public_key()})
    core, control = AccessTokenValidator(config, keys), AccessTokenValidator(config, keys)
    api = ApiProtector(config, keys=keys)
    tokens = [access_token(emulator, oid=str(uuid.uuid4())) for _ in range(COLD_TOKENS)]
    size = COLD_TOKENS // CHUNKS
    chunks = [tokens[i * size : (i + 1) * size] for i in range(CHUNKS)]
    needs = SecurityScopes(scopes=["access_as_user"])
    loop = asyncio.new_event_loop()

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

    async def dependency_calls(chunk: list[str]) -> float:
        spent, clock = 0.0, time.perf_counter
        for token in chunk:  # each request made just before, as a server makes it
            connection = request(token)
            start = clock()
            await api(connection, needs)  # as FastAPI calls it
            spent += clock() - start
        return spent

    def through_dependency(chunk: list[str]) -> float:
        return len(chunk) / loop.run_until_complete(dependency_calls(chunk))

    def through(validator: AccessTokenValidator) -> Callable[[list[str]], float]:
        def rate(chunk: list[str]) -> float:  # timed token by token, as the dependency is
            spent, clock = 0.0, time.perf_counter
            for token in chunk:
                start = clock()
                validator.validate(token, scopes=["access_as_user"])
                spent += clock() - start
            return len(chunk) / spent

        return rate

    contenders = {"core": through(core), "control": through(control), "api": through_dependency}
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    ratios: dict[str, list[float]] = {name: [] for name in contenders}
    try:
        loop.run_until_complete(api.startup())
        names = list(contenders)
        for i, chunk in enumerate(chunks):  # each goes first in turn: order weighs on none
            turn = names[i % 3 :] + names[: i % 3]
            measured = {name: contenders[name](chunk) for name in turn}
            for name, rate in measured.items():
                rates[name].append(rate)
                ratios[name].append(rate / measured["core"])
        loop.run_until_complete(api.aclose())
    finally:
        loop.close()
    return {name: (median(rates[name]), median(ratios[name])) for name in contenders}


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
            where = "server and wrk on a core each" if PINNED else "server and wrk share the cores"
            print(
                f"# FastAPI overhead · uvicorn · wrk -c8 {SECONDS}s, median of {ROUNDS} rounds "
                f"· {day}"
            )
            print(f"One worker: {where}. Two workers: all share the two cores.")
            print("| workers | endpoint | requests/s | x unprotected | x floor |")
            print("|---|---|---|---|---|")
            for workers in (1, 2):
                rounds = serve(env, token, workers)
                for name, label in ROUTES:
                    rate = median(r[name] for r in rounds)
                    to_open = median(r[name] / r["open"] for r in rounds)
                    to_floor = median(r[name] / r["floor"] for r in rounds)
                    floor = f"{to_floor:.2f}" if name != "open" else ""
                    print(f"| {workers} | {label} | {rate:,.0f} | {to_open:.2f} | {floor} |")
            print()
        figures = cold(emulator)
        print(
            f"# Cold validation through the FastAPI dependency · {COLD_TOKENS:,} fresh tokens, "
            f"median of {CHUNKS} slices"
        )
        print("| what | validations/s | x core |")
        print("|---|---|---|")
        for name, label in (
            ("core", "core AccessTokenValidator.validate"),
            ("control", "the same, a second validator (the measurement's own spread)"),
            ("api", "ApiProtector dependency, called in-process"),
        ):
            rate, ratio = figures[name]
            print(f"| {label} | {rate:,.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
