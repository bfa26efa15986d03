"""The app `bench_http.py` serves with gunicorn: one endpoint three ways.

/open (no check), /entra (entra-auth's decorator), /pyjwt (a plain PyJWT check with a cached
PyJWKClient, as a tutorial would write it). Configuration from ENTRA_* variables.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

import jwt
from flask import Flask, request

from entra_auth.config import EntraConfig
from entra_auth.integrations.flask import ApiProtector

config = EntraConfig.from_env()
app = Flask(__name__)
api = ApiProtector(app, config=config)
ISSUER = os.environ["BENCH_ISSUER"]
_jwks = jwt.PyJWKClient(
    os.environ["BENCH_JWKS_URI"],
    ssl_context=ssl.create_default_context(cafile=config.ca_bundle),
)


@app.get("/open")
def open_endpoint() -> dict[str, Any]:
    return {"ok": True}


@app.get("/entra")
@api.require_token(scopes=["access_as_user"])
def entra_endpoint() -> dict[str, Any]:
    return {"ok": True}


@app.get("/pyjwt")
def pyjwt_endpoint() -> Any:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return {"error": "unauthorized"}, 401
    token = header[7:]
    try:
        key = _jwks.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token, key, algorithms=["RS256"], audience=list(config.audiences), issuer=ISSUER
        )
    except jwt.PyJWTError:
        return {"error": "invalid_token"}, 401
    if "access_as_user" not in str(claims.get("scp", "")).split():
        return {"error": "insufficient_scope"}, 403
    return {"ok": True}
