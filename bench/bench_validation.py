"""Token validation speed, single thread, as ratios measured side by side in one run.

The floor is one RSA-2048 PKCS#1 v1.5 / SHA-256 verification with ``cryptography`` alone: no
validator can beat it for a token it has not seen. Peers validate the same tokens with the same
rules (signature, iss, aud, exp). Absolute numbers on this machine are noisy; the ratios are the
result. Run: ``make bench`` (or ``.venv/bin/python -m bench.bench_validation``).
"""

from __future__ import annotations

import base64
import platform
import ssl
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from bench.common import API, access_token
from entra_auth.config import EntraConfig
from entra_auth.emulator import EntraEmulator
from entra_auth.tokens import AccessTokenValidator

SECONDS = 0.6
ROUNDS = 5


def rate(fn: Callable[[], object]) -> float:
    """Best of ROUNDS runs of SECONDS each: operations per second."""
    best = 0.0
    for _ in range(ROUNDS):
        count, start = 0, time.perf_counter()
        deadline = start + SECONDS
        while True:
            for _ in range(50):
                fn()
            count += 50
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, count / (now - start))
    return best


def peer_rates(
    token: str, public_key: object, issuer: str, emulator: EntraEmulator | None = None
) -> dict[str, float]:
    """joserfc, Authlib and fastapi-azure-auth with the same rules, when installed."""
    found: dict[str, float] = {}
    if emulator is not None:
        found.update(fastapi_azure_auth_rate(token, emulator))
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

        found["joserfc, preloaded key"] = rate(joserfc_validate)
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

        found["Authlib, preloaded key"] = rate(authlib_validate)
    except ImportError:
        pass
    return found


def fastapi_azure_auth_rate(token: str, emulator: EntraEmulator) -> dict[str, float]:
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
    try:
        return {"fastapi-azure-auth (__call__)": rate(validate)}
    finally:
        loop.close()


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
    with EntraEmulator(state_dir=tempfile.mkdtemp(), port=0, browser_port=0) as emulator:
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

            results = {
                "RSA-2048 verify floor (cryptography)": rate(floor),
                "entra-auth cold (no validated-token cache)": rate(
                    lambda t=token: cold.validate(t)
                ),
                "entra-auth warm (validated-token cache)": rate(lambda t=token: warm.validate(t)),
                "PyJWT, preloaded key": rate(pyjwt_preloaded),
                "PyJWT + PyJWKClient": rate(pyjwt_jwks_client),
                **peer_rates(token, public_key, issuer, emulator),
            }
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
