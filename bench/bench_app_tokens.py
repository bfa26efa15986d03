"""App tokens served from cache: ``AppTokenProvider.get_token`` against MSAL's own
``acquire_token_for_client`` (which looks in its cache first), the same app, the same warm
cache, the same run; then 100 threads asking at once for a token not yet cached, counting the
token requests each way. Run: ``make bench``, or ``python -m bench.bench_app_tokens``.

Rounds alternate between the two contenders and the median of the per-round ratios is printed:
this machine's speed drifts more between seconds than the difference measured.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from entra_auth.client.app_tokens import AppTokenProvider  # noqa: E402
from entra_auth.client.http import ProviderSession  # noqa: E402
from entra_auth.config import EntraConfig  # noqa: E402
from entra_auth.emulator import EntraEmulator  # noqa: E402

DAEMON = "d2e4f6a8-1b3c-4d5e-8f70-9a1b2c3d4e5f"
SCOPE = "api://a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c/.default"
ROUNDS, ROUND_SECONDS = 10, 0.5


def per_second(action: Callable[[], object], seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            action()
        count += 100
    return count / (time.perf_counter() - start)


def msal_app(config: EntraConfig) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        config.client_id,
        client_credential=config.client_secret,
        authority=config.authority,
        http_client=ProviderSession(timeout=5, ca_bundle=config.ca_bundle),
        instance_discovery=False,
    )


def concurrent_requests(emulator: EntraEmulator, call: Callable[[], object]) -> int:
    """Token requests made when 100 threads ask at once for a token nobody holds yet."""
    emulator.reset_counts()
    start = threading.Barrier(100)

    def one(_: int) -> object:
        start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=100) as pool:
        list(pool.map(one, range(100)))
    return emulator.request_counts().get("token", 0)


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        EntraEmulator(state_dir=Path(tmp), port=0, browser_port=0) as emulator,
    ):
        config = EntraConfig.from_mapping(emulator.env_for(DAEMON))
        ours, theirs = AppTokenProvider(config), msal_app(config)
        ours.get_token(SCOPE)
        theirs.acquire_token_for_client([SCOPE])
        rates: dict[str, list[float]] = {"ours": [], "msal": []}
        for _ in range(ROUNDS):
            rates["ours"].append(per_second(lambda: ours.get_token(SCOPE), ROUND_SECONDS))
            rates["msal"].append(
                per_second(lambda: theirs.acquire_token_for_client([SCOPE]), ROUND_SECONDS)
            )
        ratios = [o / m for o, m in zip(rates["ours"], rates["msal"], strict=True)]
        fresh = AppTokenProvider(config)
        ours_posts = concurrent_requests(emulator, lambda: fresh.get_token(SCOPE))
        bare = msal_app(config)
        bare.acquire_token_for_client(["https://graph.microsoft.com/.default"])  # discovery read
        msal_posts = concurrent_requests(emulator, lambda: bare.acquire_token_for_client([SCOPE]))
    print(f"# App tokens · {time.strftime('%Y-%m-%d')}")
    print("One process, the local Entra ID on loopback, a client secret; a warm cache.")
    print("| what | AppTokenProvider | MSAL acquire_token_for_client | ratio |")
    print("|---|---|---|---|")
    print(
        f"| tokens/s from cache (median of {ROUNDS} rounds) | "
        f"{statistics.median(rates['ours']):,.0f} | {statistics.median(rates['msal']):,.0f} | "
        f"{statistics.median(ratios):.1f}x |"
    )
    print(f"| token requests for 100 threads at once, cold | {ours_posts} | {msal_posts} | |")
    print()


if __name__ == "__main__":
    main()
