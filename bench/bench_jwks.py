"""JWKS behaviour, counted at the local Entra ID: fetches under steady load, rotation, an
unknown-kid storm, and the latency of known-kid validations while the JWKS endpoint hangs."""

from __future__ import annotations

import contextlib
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.common import API, access_token
from entra_auth.config import EntraConfig
from entra_auth.emulator import EntraEmulator, Fault
from entra_auth.errors import EntraAuthError
from entra_auth.keys import JwksCache
from entra_auth.tokens import AccessTokenValidator


def mint(emulator: EntraEmulator, *, kid: str | None = None, key: object = None, i: int = 0) -> str:
    return access_token(emulator, kid=kid, key=key, oid=f"00000000-0000-0000-0000-{i:012d}")


def validator(emulator: EntraEmulator, **jwks: float) -> AccessTokenValidator:
    config = EntraConfig(
        authority=emulator.authority, client_id=API, ca_bundle=str(emulator.ca_path)
    )
    return AccessTokenValidator(config, JwksCache(config, **jwks), cache_size=0)


def fetches(emulator: EntraEmulator) -> int:
    return emulator.request_counts()["jwks"]


def main() -> None:
    rows: list[tuple[str, str, str]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        EntraEmulator(state_dir=Path(tmp), port=0, browser_port=0) as emulator,
    ):
        check = validator(emulator)
        emulator.reset_counts()
        for i in range(2000):
            check.validate(mint(emulator, i=i))
        rows.append(("steady load, 2,000 distinct tokens", f"{fetches(emulator)} fetch", "1"))

        before = fetches(emulator)
        new = emulator.rotate_keys(keep_old=True)
        for i in range(200):
            check.validate(mint(emulator, kid=new.kid, key=new.private_key, i=i))
        rows.append(
            ("key rotation, 200 tokens with the new kid", f"+{fetches(emulator) - before}", "+1")
        )

        storm = validator(emulator, cooldown=60)
        storm.validate(mint(emulator))
        before = fetches(emulator)
        for _ in range(1000):
            with contextlib.suppress(EntraAuthError):
                storm.validate(mint(emulator, kid=secrets.token_urlsafe(8)))
        rows.append(
            (
                "unknown-kid storm, 1,000 tokens in one cooldown",
                f"+{fetches(emulator) - before}",
                "≤ 1",
            )
        )

        steady = validator(emulator, timeout=3.0)
        token = mint(emulator)
        steady.validate(token)

        def latencies(n: int) -> list[float]:
            out = []
            for _ in range(n):
                started = time.perf_counter()
                steady.validate(token)
                out.append((time.perf_counter() - started) * 1e6)
            return out

        baseline = latencies(500)
        emulator.inject_fault("jwks", Fault("hang", delay=5))
        hang = threading.Thread(target=lambda: _swallow(steady, mint(emulator, kid="new-kid")))
        hang.start()
        time.sleep(0.2)  # the refetch is now waiting on the hanging endpoint
        during = latencies(500)
        hang.join()
        emulator.clear_faults()
        p50 = statistics.median
        rows.append(
            (
                "known-kid p50 latency while the JWKS endpoint hangs",
                f"{p50(during):.0f} µs vs {p50(baseline):.0f} µs "
                f"({p50(during) / p50(baseline):.2f}x)",
                "unaffected",
            )
        )
    print(f"# JWKS behaviour, counted at the local Entra ID · {time.strftime('%Y-%m-%d')}")
    print("| scenario | measured | expected |")
    print("|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")


def _swallow(check: AccessTokenValidator, token: str) -> None:
    with contextlib.suppress(EntraAuthError):
        check.validate(token)


if __name__ == "__main__":
    main()
