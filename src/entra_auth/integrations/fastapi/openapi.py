"""OpenAPI for a FastAPI API protected by Entra ID, and its interactive docs served offline.

    api = ApiProtector(config)
    app = FastAPI()
    api.init_app(app)

    @app.get("/secure-data")
    async def secure_data(principal: Principal = Security(api, scopes=["access_as_user"])): ...

    entra_openapi(app, config, scopes={"access_as_user": "Call the API as you"},
                  client_id="<the docs' own app registration: a single-page application>",
                  scheme=api)

The document's security scheme of that name (the protector's, ``EntraID``: every operation
that depends on the protector references it) becomes an OAuth 2.0 authorization-code flow:
``authorizationUrl`` and ``tokenUrl`` are the tenant's discovery document's
``authorization_endpoint`` and ``token_endpoint`` (read with the library's checks when the
document is first asked for), its scopes are the API's by their full names
(``api://<API app id>/access_as_user``: what Entra must be asked for; a bare name is a Microsoft
Graph scope to Entra). Each operation's requirement names its scopes the same way: those of
``Security(api, scopes=[...])`` and of ``api.require(scopes=[...])``. App roles
(``api.require(roles=[...])``) are no OAuth scopes: the operation's description names them.

Swagger UI (``app.docs_url``, with its ``oauth2-redirect`` page) and ReDoc (``app.redoc_url``)
are served from the files fastapi-offline ships, never from a CDN; Swagger UI's online
validator is off. ``Authorize`` signs in with the authorization code and PKCE, as the client
``client_id``, and redeems the code from the browser: Entra allows that only to a redirect URI
registered on the single-page application platform (a Web one gets AADSTS9002326), so the docs
get an app registration of their own (fastapi-azure-auth's guide does the same).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ...config import EntraConfig
from ...discovery import Discovery, ProviderMetadata
from ...errors import ConfigurationError, ProviderUnavailableError

SCHEME_NAME = "EntraID"
# The files of Swagger UI and ReDoc that the pages load, as fastapi-offline ships them.
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
_ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def asset_dir() -> Path:
    """Where fastapi-offline keeps Swagger UI's and ReDoc's files (``ConfigurationError``
    when it is missing or lacks one)."""
    try:
        static = Path(str(resources.files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        raise ConfigurationError(
            "fastapi-offline is not installed: it ships the Swagger UI files the docs serve.",
            remedy="pip install 'entra-auth[fastapi]'",
        ) from None
    missing = [name for name in ASSETS if not (static / name).is_file()]
    if missing:
        raise ConfigurationError(
            f"fastapi-offline at {static} lacks {', '.join(missing)}.",
            remedy="Reinstall it: pip install --force-reinstall 'entra-auth[fastapi]'",
        )
    return static


class EntraOpenAPI:
    """What ``entra_openapi`` installed on an app: the document's scheme and the docs' pages."""

    def __init__(
        self,
        app: FastAPI,
        config: EntraConfig,
        *,
        scopes: Mapping[str, str] | Iterable[str],
        client_id: str | None = None,
        scheme: SecurityBase | str = SCHEME_NAME,
        api_uri: str | None = None,
        discovery: Discovery | None = None,
    ):
        self.app = app
        self.config = config
        self.scheme_name = scheme if isinstance(scheme, str) else scheme.scheme_name
        self.api_uri = (api_uri or _api_uri(config)).rstrip("/")
        described = dict(scopes) if isinstance(scopes, Mapping) else dict.fromkeys(scopes, "")
        if not described:
            raise ConfigurationError(
                "entra_openapi needs the API's scopes (such as access_as_user).",
                remedy="Pass scopes=['access_as_user'] or {'access_as_user': 'description'}.",
            )
        # The full names (what Entra is asked for), and each one's bare name (what a token's
        # scp holds, and what an operation's Security(..., scopes=[...]) names) to it.
        self.scopes = {self.full_name(name): text for name, text in described.items()}
        self.full_names = {full.rsplit("/", 1)[-1]: full for full in self.scopes}
        self.full_names.update({full: full for full in self.scopes})
        self.client_id = client_id
        self.discovery = discovery or Discovery(config)
        self.assets_url = ""  # where install() serves Swagger UI's files
        # The app's own generator (FastAPI's, or one set before): the document to complete.
        self._generate: Callable[[], dict[str, Any]] = app.openapi
        self._document: dict[str, Any] | None = None

    def full_name(self, scope: str) -> str:
        """``access_as_user`` → ``api://<API>/access_as_user``; a full name (``api://…/x``,
        ``https://…/x``, ``<client id>/x``) stays as it is."""
        return scope if "/" in scope else f"{self.api_uri}/{scope}"

    @property
    def init_oauth(self) -> dict[str, Any]:
        """Swagger UI's ``initOAuth``: the docs' client, PKCE, the API's scopes pre-selected."""
        settings: dict[str, Any] = {
            "usePkceWithAuthorizationCodeGrant": True,
            "scopes": list(self.scopes),
        }
        if self.client_id:
            settings["clientId"] = self.client_id
        return settings

    def security_scheme(
        self, metadata: ProviderMetadata, more_scopes: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """The ``components.securitySchemes`` entry, from the tenant's discovery document;
        ``more_scopes``: those operations require beyond the API's given ones."""
        if not metadata.authorization_endpoint or not metadata.token_endpoint:
            raise ProviderUnavailableError(
                "The discovery document names no authorization_endpoint or token_endpoint.",
                remedy="Check ENTRA_AUTHORITY: it must be the tenant's authority.",
                step="discovery",
            )
        text = (
            "Sign in with Microsoft Entra ID: the authorization code flow with PKCE, the code "
            "redeemed by this page. Its client must be registered as a single-page application "
            "with this page's oauth2-redirect URL as a redirect URI."
        )
        if self.config.ca_bundle:  # a private CA: the browser must trust it too
            token_origin = _origin(metadata.token_endpoint)
            text += (
                f" The token endpoint's certificate comes from a CA of your own "
                f"(ENTRA_CA_BUNDLE): if Authorize ends in 'Failed to fetch', your browser does "
                f"not trust it yet: open {token_origin}/ once and accept the certificate, or "
                f"add {self.config.ca_bundle} to the browser's trusted authorities."
            )
        return {
            "type": "oauth2",
            "description": text,
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": metadata.authorization_endpoint,
                    "tokenUrl": metadata.token_endpoint,
                    "refreshUrl": metadata.token_endpoint,
                    "scopes": {**(more_scopes or {}), **self.scopes},
                }
            },
        }

    def document(self) -> dict[str, Any]:
        """The app's OpenAPI document with the scheme; built once, after discovery answered
        (``ProviderUnavailableError`` until it does: nothing half-made is kept)."""
        if self._document is None:
            metadata = self.discovery.metadata
            document = copy.deepcopy(self._generate())
            required = self._route_requirements()
            more_scopes: dict[str, str] = {}
            for path, operations in document.get("paths", {}).items():
                for method, operation in operations.items():
                    if isinstance(operation, dict):
                        scopes, roles = required.get((path, method.upper()), ((), ()))
                        self._secure(operation, scopes, roles, more_scopes)
            schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes[self.scheme_name] = self.security_scheme(metadata, more_scopes)
            self._document = document
            self.app.openapi_schema = document
        return self._document

    def _route_requirements(self) -> dict[tuple[str, str], tuple[list[str], list[str]]]:
        """The scopes and roles of each operation's requirements of the scheme
        (``api.require(scopes=..., roles=...)``): FastAPI's document has one list for both, or
        lists neither, and only the requirement itself tells which is which."""
        found: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
        for route in self.app.routes:
            if not isinstance(route, APIRoute):
                continue
            scopes: list[str] = []
            roles: list[str] = []
            pending = list(route.dependant.dependencies)
            while pending:
                dependant = pending.pop()
                pending.extend(dependant.dependencies)
                call = dependant.call
                if _scheme_of(call) != self.scheme_name:
                    continue
                scopes.extend(_names_of(call, "scopes"))
                roles.extend(_names_of(call, "roles"))
            for method in route.methods or ():
                found[(route.path_format, method)] = (scopes, roles)
        return found

    def _secure(
        self,
        operation: dict[str, Any],
        required_scopes: Iterable[str],
        roles: Iterable[str],
        more_scopes: dict[str, str],
    ) -> None:
        """The operation's requirement of the scheme, its scopes by their full names (one the
        API's were not given with goes into ``more_scopes``); its app roles, which are no OAuth
        scopes and so cannot be in a requirement, said in its description."""
        named = list(dict.fromkeys(roles))
        only_roles = set(named) - set(required_scopes)
        needs_scopes = False
        for requirement in operation.get("security", []):
            if self.scheme_name not in requirement:
                continue
            scopes: list[str] = []
            for name in (*requirement[self.scheme_name], *required_scopes):
                if name in only_roles:
                    continue
                full = self.full_names.get(name) or self.full_name(name)
                if full not in self.scopes:
                    more_scopes.setdefault(full, "")
                scopes.append(full)
            requirement[self.scheme_name] = list(dict.fromkeys(scopes))
            needs_scopes = needs_scopes or bool(scopes)
        if not named:
            return
        listed = ", ".join(f"`{name}`" for name in named)
        role = "role" if len(named) == 1 else "roles"
        if needs_scopes:  # the protector's rule: users' tokens the scopes, daemons' the roles
            note = f"An app-only token (a daemon's) needs the app {role} {listed} instead."
        else:
            note = (
                f"Needs the app {role} {listed} (in the token's `roles`): a daemon's token, or "
                f"a user's who was assigned it."
            )
        operation["description"] = "\n\n".join(
            part for part in (operation.get("description"), note) if part
        )
        operation["x-entra-app-roles"] = named

    # -- installing ---------------------------------------------------------------------------
    def install(self) -> None:
        app = self.app
        app.openapi = self.document  # type: ignore[method-assign]
        if not app.openapi_url:
            return
        replaced = {app.openapi_url, app.docs_url, app.redoc_url}
        if app.docs_url:
            replaced.add(app.swagger_ui_oauth2_redirect_url)
        _remove_routes(app, {path for path in replaced if path})
        app.add_route(app.openapi_url, self._openapi_endpoint, include_in_schema=False)
        if not (app.docs_url or app.redoc_url):
            return
        static = asset_dir()
        base = (app.docs_url or app.redoc_url or "").rstrip("/") + "/assets"
        self.assets_url = base
        for name in ASSETS:
            app.add_route(f"{base}/{name}", _asset(static / name), include_in_schema=False)
        if app.docs_url:
            app.add_route(app.docs_url, self._swagger_ui, include_in_schema=False)
            if app.swagger_ui_oauth2_redirect_url:
                app.add_route(
                    app.swagger_ui_oauth2_redirect_url, _oauth2_redirect, include_in_schema=False
                )
        if app.redoc_url:
            app.add_route(app.redoc_url, self._redoc, include_in_schema=False)

    async def _openapi_endpoint(self, request: Request) -> Response:
        try:  # discovery is blocking I/O: in a worker thread, not on the event loop
            document = await run_in_threadpool(self.document)
        except ProviderUnavailableError as error:
            headers = {"Retry-After": str(error.retry_after or 30), "Cache-Control": "no-store"}
            body = {"error": error.code, "error_description": error.message}
            return JSONResponse(body, status_code=503, headers=headers)
        root_path = _root_path(request)
        if root_path and self.app.root_path_in_servers:
            servers = document.get("servers", [])
            if root_path not in {server.get("url") for server in servers}:
                document = {**document, "servers": [{"url": root_path}, *servers]}
        return JSONResponse(document)

    async def _swagger_ui(self, request: Request) -> HTMLResponse:
        app, root = self.app, _root_path(request)
        redirect = app.swagger_ui_oauth2_redirect_url
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or ""),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{self.assets_url}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{self.assets_url}/swagger-ui.css",
            swagger_favicon_url=f"{root}{self.assets_url}/favicon.png",
            oauth2_redirect_url=root + redirect if redirect else None,
            init_oauth={**(app.swagger_ui_init_oauth or {}), **self.init_oauth},
            # Swagger UI would send the document's URL to validator.swagger.io otherwise.
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
        )

    async def _redoc(self, request: Request) -> HTMLResponse:
        root = _root_path(request)
        return get_redoc_html(
            openapi_url=root + (self.app.openapi_url or ""),
            title=f"{self.app.title} - ReDoc",
            redoc_js_url=f"{root}{self.assets_url}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{self.assets_url}/favicon.png",
            with_google_fonts=False,
        )


def entra_openapi(
    app: FastAPI,
    config: EntraConfig,
    *,
    scopes: Mapping[str, str] | Iterable[str],
    client_id: str | None = None,
    scheme: SecurityBase | str = SCHEME_NAME,
    api_uri: str | None = None,
    discovery: Discovery | None = None,
) -> EntraOpenAPI:
    """Give ``app``'s OpenAPI document the Entra ID scheme and serve its docs offline.

    ``scopes``: the API's delegated scopes, bare (``access_as_user``) or full, as a list or
    ``{name: description}``. ``client_id``: the app registration Swagger UI signs in as (a
    single-page application; None leaves the field for the user to fill). ``scheme``: the
    security dependency the operations depend on (the ``ApiProtector``), or its scheme name.
    ``api_uri``: the API's App ID URI (default: the first ``api://`` audience of ``config``,
    else ``api://<client id>``).
    ``discovery``: share the protector's, else one of its own is made.

    The app's ``docs_url``, ``redoc_url`` and ``swagger_ui_oauth2_redirect_url`` keep their
    places (None still turns a page off); their pages, and ``openapi_url``'s, are replaced.
    """
    installed = EntraOpenAPI(
        app,
        config,
        scopes=scopes,
        client_id=client_id,
        scheme=scheme,
        api_uri=api_uri,
        discovery=discovery,
    )
    installed.install()
    return installed


def _scheme_of(call: object) -> str | None:
    """The security scheme a dependency belongs to: its own (a protector, a scheme), or its
    protector's (``api.require(...)``, which keeps it as ``api``)."""
    name = getattr(call, "scheme_name", None)
    if isinstance(name, str):
        return name
    owner = getattr(call, "api", None)
    return owner.scheme_name if isinstance(owner, SecurityBase) else None


def _names_of(requirement: object, what: str) -> tuple[str, ...]:
    """A requirement's own ``scopes`` or ``roles`` (a tuple of names), if it has them."""
    names = getattr(requirement, what, ())
    if isinstance(names, (tuple, list)) and all(isinstance(n, str) for n in names):
        return tuple(names)
    return ()


def _api_uri(config: EntraConfig) -> str:
    found = next((a for a in config.audiences if a.startswith("api://")), None)
    if found:
        return found
    if not config.client_id:
        raise ConfigurationError(
            "The API's App ID URI is unknown: no api:// audience and no client id.",
            remedy="Set ENTRA_API_AUDIENCE (or ENTRA_CLIENT_ID), or pass api_uri=.",
        )
    return f"api://{config.client_id}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _root_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _remove_routes(app: FastAPI, paths: set[str]) -> None:
    """Drop FastAPI's own pages at ``paths`` (plain routes; never an API operation)."""
    keep: list[BaseRoute] = [
        route
        for route in app.router.routes
        if not (type(route) is Route and route.path in paths)  # APIRoute is a subclass
    ]
    app.router.routes[:] = keep


def _asset(path: Path) -> Callable[[Request], Any]:
    media_type = _ASSET_TYPES[path.suffix]

    async def serve(request: Request) -> FileResponse:
        return FileResponse(
            path, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"}
        )

    return serve


async def _oauth2_redirect(request: Request) -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()
