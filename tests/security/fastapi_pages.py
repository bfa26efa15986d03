"""``tests/test_signin_pages.py``'s app on FastAPI, as ``make_app`` builds it on Flask.

No ``from __future__ import annotations``: FastAPI reads the endpoints' ``Annotated``
dependencies, which name the local ``auth``.
"""

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse

from entra_auth.config import EntraConfig
from entra_auth.integrations.fastapi import AnonymousUser, EntraAuth, SignedInUser

from .fastapi_web import FastApiWebApp


def pages_app(
    settings: dict[str, Any], *, loader: Any = None, templates: Path | None = None
) -> FastApiWebApp:
    """A home page showing who is signed in and the signed-out notice, ``/page`` (signed in)
    and ``/admin`` (the Admin role)."""
    auth = EntraAuth(EntraConfig.from_mapping(settings), templates=templates)
    app = FastAPI()
    auth.init_app(app, {k: str(v) for k, v in settings.items() if isinstance(v, str)})
    if loader is not None:
        auth.user_loader(loader)

    @app.get("/", response_class=HTMLResponse)
    async def home(
        request: Request, user: Annotated[SignedInUser | AnonymousUser, Depends(auth.current_user)]
    ) -> str:
        who = f'<span id="who">{user.name}</span>' if user.is_authenticated else ""
        notice = '<p id="signed-out">You are signed out.</p>' if auth.signed_out(request) else ""
        return f"{who}{notice}anonymous={user.is_anonymous}"

    @app.get("/page")
    async def page(user: Annotated[SignedInUser, Depends(auth.login_required())]) -> Any:
        return {"key": list(user.key), "record": user.record}

    @app.get("/admin", response_class=HTMLResponse)
    async def admin(
        user: Annotated[SignedInUser, Depends(auth.login_required(roles=["Admin"]))],
    ) -> str:
        return "admin page"

    return FastApiWebApp(app, settings)
