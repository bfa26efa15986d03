"""Sessions in Redis against sessions in files, measured side by side in one run.

Sign-in round trips per second (login → the local Entra ID's pages over HTTP → callback with
MSAL redemption and ID-token verification) and protected-page requests per second (a
``login_required`` page reading the session), each in-process with Flask's test client, so the
ratio isolates the session store. Run: ``make bench`` (needs redis-server).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet

from entra_auth.emulator import EntraEmulator
from entra_auth.testing.driver import BrowserlessUser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from examples.demo.app import create_app  # noqa: E402
from tests.helpers import demo_config  # noqa: E402
from tests.redis_support import RedisServer  # noqa: E402

SECONDS = 3.0


def per_second(action: Callable[[], object], seconds: float = SECONDS) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        action()
        count += 1
    return count / (time.perf_counter() - start)


def measure(emulator: EntraEmulator, **config: str) -> tuple[float, float]:
    app = create_app(demo_config(emulator, **config))
    emulator.grant_consent(
        "adele@contoso.example", demo_config(emulator)["ENTRA_CLIENT_ID"], "User.Read"
    )
    idp = BrowserlessUser()

    def sign_in() -> None:
        client = app.test_client()
        auth_uri = client.get("/login").headers["Location"]
        answer = idp.authorize(auth_uri, user="adele@contoso.example")
        assert client.get("/get_token", query_string=answer).status_code == 302

    signed_in = app.test_client()
    answer = idp.authorize(
        signed_in.get("/login").headers["Location"], user="adele@contoso.example"
    )
    signed_in.get("/get_token", query_string=answer)

    def protected_page() -> None:
        assert signed_in.get("/claims").status_code == 200

    return per_second(sign_in), per_second(protected_page)


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        EntraEmulator(state_dir=Path(tmp) / "emulator", port=0, browser_port=0) as emulator,
    ):
        server = RedisServer(Path(tmp)).start()
        try:
            files = measure(emulator, ENTRA_SESSION_DIR=str(Path(tmp) / "sessions"))
            in_redis = measure(
                emulator, REDIS_URL=server.url, ENTRA_TOKEN_CACHE_KEY=Fernet.generate_key().decode()
            )
        finally:
            server.stop()
    print(f"# Sessions: Redis against files · {time.strftime('%Y-%m-%d')} · one process")
    print("| what | files /s | Redis /s | Redis / files |")
    print("|---|---|---|---|")
    for name, f, r in (
        ("sign-in round trip", files[0], in_redis[0]),
        ("protected page", files[1], in_redis[1]),
    ):
        print(f"| {name} | {f:,.0f} | {r:,.0f} | {r / f:.2f} |")


if __name__ == "__main__":
    main()
