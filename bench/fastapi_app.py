"""The app `bench_fastapi.py` serves with uvicorn: one endpoint five ways.

/open (no check), /floor (a security dependency doing nothing: FastAPI's own cost of any
check made as a dependency), /entra (entra-auth's ``ApiProtector`` dependency), /faa
(fastapi-azure-auth, its OpenID configuration read from the local Entra ID), /pyjwt (a plain
PyJWT dependency, the keys fetched once at startup). Configuration from ENTRA_* and BENCH_*
variables.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import jwt
from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.security import SecurityScopes
from fastapi_azure_auth.auth import AzureAuthorizationCodeBearerBase

from entra_auth.config import EntraConfig
from entra_auth.integrations.fastapi import ApiProtector, Principal

config = EntraConfig.from_env()
ISSUER = os.environ["BENCH_ISSUER"]
CLIENT_ID = os.environ["BENCH_CLIENT_ID"]
_context = ssl.create_default_context(cafile=config.ca_bundle)
api = ApiProtector(config)
faa = AzureAuthorizationCodeBearerBase(
    app_client_id=CLIENT_ID,
    tenant_id=os.environ["BENCH_TENANT_ID"],
    openid_config_url=f"{config.authority}/v2.0/.well-known/openid-configuration",
    openapi_authorization_url=f"{config.authority}/oauth2/v2.0/authorize",
    openapi_token_url=f"{config.authority}/oauth2/v2.0/token",
)
faa.openid_config.http_client_config = {"verify": _context}
_keys: dict[str, Any] = {}  # kid -> public key, for the plain PyJWT dependency


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with httpx.AsyncClient(verify=_context) as client:
        response = await client.get(os.environ["BENCH_JWKS_URI"])
        response.raise_for_status()
    for key in jwt.PyJWKSet.from_dict(response.json()).keys:
        _keys[str(key.key_id)] = key.key
    await faa.openid_config.load_config()
    yield


app = FastAPI(lifespan=lifespan)
api.init_app(app)


async def pyjwt_claims(request: Request) -> dict[str, Any]:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise HTTPException(401, "unauthorized")
    token = header[7:]
    try:
        key = _keys[jwt.get_unverified_header(token).get("kid", "")]
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=["RS256"], audience=list(config.audiences), issuer=ISSUER
        )
    except (jwt.PyJWTError, KeyError):
        raise HTTPException(401, "invalid_token") from None
    if "access_as_user" not in str(claims.get("scp", "")).split():
        raise HTTPException(403, "insufficient_scope")
    return claims


@app.get("/open")
async def open_endpoint() -> dict[str, Any]:
    return {"ok": True}


async def nothing(security_scopes: SecurityScopes) -> None:
    """The floor: a security dependency that checks nothing, resolved as FastAPI resolves any."""


@app.get("/floor")
async def floor_endpoint(_: Annotated[None, Security(nothing, scopes=["access_as_user"])]) -> Any:
    return {"ok": True}


@app.get("/entra")
async def entra_endpoint(
    principal: Annotated[Principal, Security(api, scopes=["access_as_user"])],
) -> Any:
    return {"ok": True}


@app.get("/faa")
async def faa_endpoint(user: Annotated[Any, Security(faa, scopes=["access_as_user"])]) -> Any:
    return {"ok": True}


@app.get("/pyjwt")
async def pyjwt_endpoint(claims: Annotated[dict[str, Any], Depends(pyjwt_claims)]) -> Any:
    return {"ok": True}
