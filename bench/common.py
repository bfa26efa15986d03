"""What the benchmarks share: the demo directory's ids and access tokens minted like Entra's."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import jwt
import requests

from entra_auth.emulator import EntraEmulator

API = "a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c"
WEB = "4b7d2f1c-3a5e-4c8b-9d61-2e0f7a9b3c15"


def access_claims(emulator: EntraEmulator, **changes: Any) -> dict[str, Any]:
    """A v2 delegated access token's claims for the demo API, valid for an hour."""
    now = int(time.time())
    claims: dict[str, Any] = {
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
        "azpacr": "1",
        "name": "Adele Vance",
        "preferred_username": "adele@contoso.example",
    }
    claims.update(changes)
    return claims


def access_token(
    emulator: EntraEmulator, *, kid: str | None = None, key: Any = None, **changes: Any
) -> str:
    signing = emulator.signing_key
    return jwt.encode(
        access_claims(emulator, **changes),
        key or signing.private_key,
        algorithm="RS256",
        headers={"typ": "JWT", "kid": kid or signing.kid},
    )


def wait_until_answering(server: subprocess.Popen[bytes], url: str, what: str) -> None:
    """Until ``url`` answers 2xx (bounded: 200 tries, 20 s at most); raises if ``server`` exits."""
    for _ in range(200):
        if server.poll() is not None:
            raise RuntimeError(f"{what} exited with {server.returncode}")
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer in 20 s")


def stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 20 s."""
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=5)
