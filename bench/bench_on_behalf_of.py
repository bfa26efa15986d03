"""On-behalf-of for repeat requests: ``OnBehalfOfProvider.get_token`` against MSAL's own
``acquire_token_on_behalf_of`` (which never reads its cache, so every request is a token POST),
the same middle tier, the same caller's token, the same run; then 50 threads asking at once with
one caller's token, counting the exchanges each way. Run: ``make bench``, or
``python -m bench.bench_on_behalf_of``.

Rounds alternate between the two contenders and the median of the per-round ratios is printed.
MSAL's rounds include its token request to the local Entra ID on loopback: the cheapest a token
POST ever is.
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

from entra_auth.client.http import ProviderSession  # noqa: E402
from entra_auth.client.on_behalf_of import OnBehalfOfProvider  # noqa: E402
from entra_auth.config import EntraConfig  # noqa: E402
from entra_auth.emulator import EntraEmulator  # noqa: E402
from entra_auth.keys import JwksCache  # noqa: E402
from entra_auth.tokens import AccessTokenValidator, Principal  # noqa: E402

WEB = "4b7d2f1c-3a5e-4c8b-9d61-2e0f7a9b3c15"
API = "a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c"
GRAPH = ["https://graph.microsoft.com/User.Read"]
ROUNDS, ROUND_SECONDS = 6, 0.5


def per_second(action: Callable[[], object], seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            action()
        count += 10
    return count / (time.perf_counter() - start)


def exchanges(emulator: EntraEmulator, call: Callable[[], object]) -> int:
    """Token requests made when 50 threads ask at once with one caller's token."""
    emulator.reset_counts()
    start = threading.Barrier(50)

    def one(_: int) -> object:
        start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=50) as pool:
        list(pool.map(one, range(50)))
    return emulator.request_counts().get("token", 0)


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        EntraEmulator(state_dir=Path(tmp), port=0, browser_port=0) as emulator,
    ):
        config = EntraConfig.from_mapping(emulator.env_for(API))
        validator = AccessTokenValidator(config, JwksCache(config))

        def caller() -> Principal:
            token = emulator.issue_token(
                client_id=WEB,
                resource=f"api://{API}",
                user="adele@contoso.example",
                scopes=["access_as_user"],
            )
            return validator.validate(token)

        adele = caller()
        ours = OnBehalfOfProvider(config)
        theirs = msal.ConfidentialClientApplication(
            API,
            client_credential=config.client_secret,
            authority=config.authority,
            http_client=ProviderSession(timeout=5, ca_bundle=config.ca_bundle),
            instance_discovery=False,
        )
        ours.get_token(adele, GRAPH)
        theirs.acquire_token_on_behalf_of(str(adele.token), GRAPH)
        rates: dict[str, list[float]] = {"ours": [], "msal": []}
        for _ in range(ROUNDS):
            rates["ours"].append(per_second(lambda: ours.get_token(adele, GRAPH), ROUND_SECONDS))
            rates["msal"].append(
                per_second(
                    lambda: theirs.acquire_token_on_behalf_of(str(adele.token), GRAPH),
                    ROUND_SECONDS,
                )
            )
        ratios = [o / m for o, m in zip(rates["ours"], rates["msal"], strict=True)]
        fresh, megan = OnBehalfOfProvider(config), caller()
        ours_posts = exchanges(emulator, lambda: fresh.get_token(megan, GRAPH))
        msal_posts = exchanges(
            emulator, lambda: theirs.acquire_token_on_behalf_of(str(megan.token), GRAPH)
        )
    print(f"# On-behalf-of · {time.strftime('%Y-%m-%d')}")
    print("One process, the local Entra ID on loopback, the demo API as the middle tier.")
    print("| what | OnBehalfOfProvider | MSAL acquire_token_on_behalf_of | ratio |")
    print("|---|---|---|---|")
    print(
        f"| tokens/s for a repeat request (median of {ROUNDS} rounds) | "
        f"{statistics.median(rates['ours']):,.0f} | {statistics.median(rates['msal']):,.0f} | "
        f"{statistics.median(ratios):.0f}x |"
    )
    print(
        f"| token requests for 50 threads with one caller's token | {ours_posts} | {msal_posts} | |"
    )
    print()


if __name__ == "__main__":
    main()
