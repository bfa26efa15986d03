"""A FastAPI app that signs users in, configured by the environment (ENTRA_*, SECRET_KEY,
REDIS_URL), for the tests that run it under real uvicorn processes:
``uvicorn tests.fastapi_web_app:app``.

No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations at runtime.
"""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from entra_auth.integrations.fastapi import EntraAuth, SignedInUser

auth = EntraAuth()
app = FastAPI()
auth.init_app(app)


@app.get("/ready")
async def ready() -> dict[str, bool]:
    return {"ready": True}


@app.get("/profile")
async def profile(
    user: Annotated[SignedInUser, Depends(auth.login_required())], request: Request
) -> dict[str, Any]:
    me = await auth.graph_get(request, "/v1.0/me")  # a token each time: a refresh when it is old
    return {"name": me["displayName"], "key": list(user.key)}
