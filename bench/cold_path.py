"""Where a cold validation's microseconds go, measured in place rather than under a profiler.

cProfile charges its own overhead to every Python call, and timing one step alone in a loop
flatters it: after an RSA verification has run, the interpreter's code and data are no longer in
the CPU caches, and each step costs more (here, up to twice as much) than it does on its own.
So this times the cold path cut short after each step, every cut in turn within each round
(best of all rounds), and reports what each step adds. Run:
``.venv/bin/python bench/cold_path.py``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_validation import API, tokens
from entra_auth import _jws
from entra_auth.config import EntraConfig
from entra_auth.emulator import EntraEmulator
from entra_auth.tokens import _PKCS1, _SHA256, AccessTokenValidator

CALLS = 100
ROUNDS = 300


def best_microseconds(steps: dict[str, Callable[[], object]]) -> dict[str, float]:
    best = dict.fromkeys(steps, float("inf"))
    clock = time.perf_counter
    for _ in range(ROUNDS):
        for name, fn in steps.items():
            start = clock()
            for _ in range(CALLS):
                fn()
            best[name] = min(best[name], (clock() - start) / CALLS * 1e6)
    return best


def cuts(validator: AccessTokenValidator, token: str) -> dict[str, Callable[[], object]]:
    """The cold path, cut after each step (the steps of ``_verified_claims`` written out)."""
    header, signing_input, signature, _ = _jws.parse(token, {})
    public_key = validator.jwks.get(header["kid"]).public_key
    now = time.time()

    def floor() -> None:
        public_key.verify(signature, signing_input, _PKCS1, _SHA256)

    def verified() -> str:
        header, signing_input, signature, payload = _jws.parse(token, validator._headers)
        key = validator.jwks.get(header["kid"])
        key.public_key.verify(signature, signing_input, _PKCS1, _SHA256)
        return payload

    return {
        "RSA-2048 verify (the floor)": floor,
        "+ split, header, signature, key": verified,
        "+ payload base64url": lambda: _jws.b64decode(verified(), "payload"),
        "+ payload JSON": lambda: _jws.decode_payload(verified()),
        "+ claim checks and Principal": lambda: validator._validate_uncached(token, now),
        "+ validate() itself": lambda: validator.validate(token),
    }


def main() -> None:
    with EntraEmulator(state_dir=tempfile.mkdtemp(), port=0, browser_port=0) as emulator:
        config = EntraConfig(
            authority=emulator.authority, client_id=API, ca_bundle=str(emulator.ca_path)
        )
        validator = AccessTokenValidator(config, cache_size=0)
        for name, token in tokens(emulator).items():
            validator.validate(token)
            best = best_microseconds(cuts(validator, token))
            floor = next(iter(best.values()))
            print(f"\n## Cold path, {name} token ({len(token)} bytes), µs (best of {ROUNDS})")
            print("| step | adds | total | x floor |")
            print("|---|---|---|---|")
            previous = 0.0
            for step, total in best.items():
                print(f"| {step} | {total - previous:.1f} | {total:.1f} | {floor / total:.2f} |")
                previous = total


if __name__ == "__main__":
    main()
