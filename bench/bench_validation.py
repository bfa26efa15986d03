"""Token validation speed, single thread, as ratios measured side by side in one run.

The floor is one RSA-2048 PKCS#1 v1.5 / SHA-256 verification with ``cryptography`` alone: no
validator can beat it for a token it has not seen. Peers validate the same tokens with the same
rules (signature, iss, aud, exp). Absolute numbers on this machine are noisy; the ratios are the
result, and every contender is timed in turn within each round, so that a change of load during
the run weighs on all of them alike rather than on whichever ran then. Run: ``make bench`` (or
``.venv/bin/python bench/bench_validation.py``).
"""

from __future__ import annotations

import base64
import contextlib
import platform
import ssl
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, too

from bench.common import API, access_token
from entra_auth.config import EntraConfig
from entra_auth.emulator import EntraEmulator
from entra_auth.tokens import AccessTokenValidator

# Each contender gets ROUNDS slices of SECONDS, interleaved; the best slice counts. Many short
# slices find a quiet moment for each contender more surely than a few long ones.
SECONDS = 0.25
ROUNDS = 12

Contender = Callable[[], object]


def run_for(fn: Contender, seconds: float) -> float:
    """Calls of ``fn`` per second over one slice of about ``seconds``."""
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            fn()
        count += 50
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def rates(contenders: dict[str, Contender]) -> dict[str, float]:
    """Operations per second of each contender: the best of ROUNDS interleaved slices."""
    best = dict.fromkeys(contenders, 0.0)
    for _ in range(ROUNDS):
        for name, fn in contenders.items():
            best[name] = max(best[name], run_for(fn, SECONDS))
    return best


def peer_contenders(
    token: str,
    public_key: object,
    issuer: str,
    stack: contextlib.ExitStack,
    emulator: EntraEmulator | None = None,
) -> dict[str, Contender]:
    """joserfc, Authlib and fastapi-azure-auth with the same rules, when installed."""
    found: dict[str, Contender] = {}
    if emulator is not None:
        found.update(fastapi_azure_auth_contender(token, emulator, stack))
    try:
        from joserfc import jwt as joserfc_jwt
        from joserfc.jwk import RSAKey

        key = RSAKey.import_key(public_key)  # type: ignore[arg-type]
        registry = joserfc_jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": API},
            exp={"essential": True},
        )

        def joserfc_validate(t: str = token) -> None:
            registry.validate(joserfc_jwt.decode(t, key, algorithms=["RS256"]).claims)

        found["joserfc, preloaded key"] = joserfc_validate
    except ImportError:
        pass
    try:
        with warnings.catch_warnings():  # Authlib points to joserfc, measured above
            warnings.simplefilter("ignore")
            from authlib.jose import JsonWebToken

        authlib_jwt = JsonWebToken(["RS256"])
        options = {
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": API},
            "exp": {"essential": True},
        }

        def authlib_validate(t: str = token) -> None:
            authlib_jwt.decode(t, public_key, claims_options=options).validate()

        found["Authlib, preloaded key"] = authlib_validate
    except ImportError:
        pass
    return found


def fastapi_azure_auth_contender(
    token: str, emulator: EntraEmulator, stack: contextlib.ExitStack
) -> dict[str, Contender]:
    """Its real path: ``__call__`` on a Starlette request (one event-loop turn per call), its
    OpenID configuration read from the local Entra ID with the emulator's CA."""
    try:
        import asyncio

        from fastapi.security import SecurityScopes
        from fastapi_azure_auth.auth import AzureAuthorizationCodeBearerBase
        from starlette.requests import Request
    except ImportError:
        return {}
    auth = AzureAuthorizationCodeBearerBase(
        app_client_id=API,
        tenant_id=emulator.tenant_id,
        openid_config_url=f"{emulator.authority}/v2.0/.well-known/openid-configuration",
        openapi_authorization_url=f"{emulator.authority}/oauth2/v2.0/authorize",
        openapi_token_url=f"{emulator.authority}/oauth2/v2.0/token",
    )
    auth.openid_config.http_client_config = {
        "verify": ssl.create_default_context(cafile=str(emulator.ca_path))
    }
    loop = asyncio.new_event_loop()
    stack.callback(loop.close)
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {token}".encode())],
    }
    needs = SecurityScopes(scopes=["access_as_user"])

    def validate() -> None:
        loop.run_until_complete(auth(Request(scope), needs))

    try:
        validate()
    except Exception as exc:
        print(f"(fastapi-azure-auth could not validate here: {type(exc).__name__})")
        return {}
    return {"fastapi-azure-auth (__call__)": validate}


def tokens(emulator: EntraEmulator) -> dict[str, str]:
    """A typical token (~1.5 KB) and one with 110 group ids (~7 KB), as Entra shapes them."""
    common = {
        "oid": str(uuid.uuid4()),
        "uti": "u" * 22,
        "rh": "0." + "r" * 60,
        "aio": "a" * 200,
        "roles": ["Data.Read.All"],
    }
    groups = [str(uuid.uuid4()) for _ in range(110)]
    return {
        "typical": access_token(emulator, **common),
        "groups": access_token(emulator, **common, groups=groups),
    }


def main() -> None:
    with (
        EntraEmulator(state_dir=tempfile.mkdtemp(), port=0, browser_port=0) as emulator,
        contextlib.ExitStack() as stack,
    ):
        config = EntraConfig(
            authority=emulator.authority, client_id=API, ca_bundle=str(emulator.ca_path)
        )
        cold = AccessTokenValidator(config, cache_size=0)
        warm = AccessTokenValidator(config)
        public_key = emulator.signing_key.private_key.public_key()
        jwks_client = jwt.PyJWKClient(
            f"{emulator.authority}/discovery/v2.0/keys",
            ssl_context=ssl.create_default_context(cafile=str(emulator.ca_path)),
        )
        issuer = emulator.issuer()
        print(
            f"# Token validation, single thread · {time.strftime('%Y-%m-%d')} · "
            f"{platform.machine()} · Python {sys.version.split()[0]}"
        )
        for name, token in tokens(emulator).items():
            head, body, sig = token.split(".")
            signature = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
            signing_input = f"{head}.{body}".encode()
            cold.validate(token)
            warm.validate(token)

            def floor(s: bytes = signature, m: bytes = signing_input) -> None:
                public_key.verify(s, m, padding.PKCS1v15(), hashes.SHA256())

            def pyjwt_preloaded(t: str = token) -> None:
                jwt.decode(t, public_key, algorithms=["RS256"], audience=API, issuer=issuer)

            def pyjwt_jwks_client(t: str = token) -> None:
                key = jwks_client.get_signing_key_from_jwt(t)
                jwt.decode(t, key, algorithms=["RS256"], audience=API, issuer=issuer)

            results = rates(
                {
                    "RSA-2048 verify floor (cryptography)": floor,
                    "entra-auth cold (no validated-token cache)": lambda t=token: cold.validate(t),
                    "entra-auth warm (validated-token cache)": lambda t=token: warm.validate(t),
                    "PyJWT, preloaded key": pyjwt_preloaded,
                    "PyJWT + PyJWKClient": pyjwt_jwks_client,
                    **peer_contenders(token, public_key, issuer, stack, emulator),
                }
            )
            base = results["RSA-2048 verify floor (cryptography)"]
            peers = {k: v for k, v in results.items() if not k.startswith(("RSA", "entra"))}
            best_peer = max(peers.values())
            print(f"\n## {name} token ({len(token)} bytes)")
            print(f"| {'what':<44} | {'per second':>11} | {'x floor':>8} | {'x best peer':>11} |")
            print(f"|{'-' * 46}|{'-' * 13}|{'-' * 10}|{'-' * 13}|")
            for what, value in results.items():
                ratios = f"{value / base:>8.2f} | {value / best_peer:>11.2f}"
                print(f"| {what:<44} | {value:>11,.0f} | {ratios} |")


if __name__ == "__main__":
    main()
