"""The OpenAPI document of a FastAPI API protected by Entra ID, and its docs served offline
(``entra_auth.integrations.fastapi.openapi``); the local Entra ID's side of Swagger UI's
browser flow (CORS preflight, AADSTS9002326 before any client authentication); the FastAPI
demo (``make demo-fastapi``) as a process. The browser journey is tests/e2e/test_fastapi_swagger.py.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at runtime,
# and those of api_app name its local protector.
import base64
import hashlib
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import pytest
import requests
from fastapi import Depends, FastAPI, Security
from fastapi.testclient import TestClient

from entra_auth.config import EntraConfig
from entra_auth.emulator import EntraEmulator
from entra_auth.emulator.faults import Fault
from entra_auth.integrations.fastapi import ApiProtector, Principal
from entra_auth.integrations.fastapi.openapi import (
    ASSETS,
    EntraOpenAPI,
    asset_dir,
    entra_openapi,
)
from entra_auth.testing.driver import BrowserlessUser

from .helpers import HANG_GUARD, ROOT, DemoProcess

API = "a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c"
API_URI = f"api://{API}"
SCOPE = f"{API_URI}/access_as_user"
DOCS_CLIENT = "fb7a3631-04c0-45b0-8a7d-57b80994f173"  # the seed's "demo API - OpenAPI" (a SPA)
WEB = "4b7d2f1c-3a5e-4c8b-9d61-2e0f7a9b3c15"
ADELE = "adele@contoso.example"
# A URL to another host: http(s)://… or protocol-relative //… (api://… is a scope's name).
ABSOLUTE_URL = re.compile(r"""(?:https?:|(?<![\w:]))//[^\s"'<>)]+""")


def api_app(config: EntraConfig, **fastapi: Any) -> tuple[FastAPI, ApiProtector]:
    """An API as a user of the library writes one: a scope, an app role, a public route."""
    api = ApiProtector(config)
    app = FastAPI(title="test API", **fastapi)
    api.init_app(app)

    @app.get("/secure-data")
    async def secure_data(
        principal: Annotated[Principal, Security(api, scopes=["access_as_user"])],
    ) -> dict[str, str]:
        return {"name": principal.name or ""}

    @app.get("/all-data")
    async def all_data(
        principal: Annotated[Principal, Depends(api.require(roles=["Data.Read.All"]))],
    ) -> dict[str, str]:
        """Everything."""
        return {"name": principal.name or ""}

    @app.get("/either")
    async def either(
        principal: Annotated[
            Principal, Depends(api.require(scopes=["access_as_user"], roles=["Data.Read.All"]))
        ],
    ) -> dict[str, str]:
        return {"name": principal.name or ""}

    @app.get("/public")
    async def public() -> dict[str, str]:
        return {"hello": "world"}

    return app, api


@pytest.fixture
def config(entra_emulator: EntraEmulator) -> EntraConfig:
    return entra_emulator.config_for(API)  # the API's own settings (--env-file --app <API>)


@pytest.fixture
def documented(config: EntraConfig) -> tuple[FastAPI, EntraOpenAPI]:
    app, api = api_app(config)
    installed = entra_openapi(
        app,
        config,
        scopes={"access_as_user": "Call the API as you"},
        client_id=DOCS_CLIENT,
        scheme=api,
    )
    return app, installed


def discovery_of(emulator: EntraEmulator) -> dict[str, Any]:
    answer = emulator.http_session().get(
        f"{emulator.authority}/v2.0/.well-known/openid-configuration", timeout=HANG_GUARD
    )
    return dict(answer.json())


# -- the document ---------------------------------------------------------------------------
def test_the_scheme_is_the_tenants_authorization_code_flow_from_discovery(
    documented: tuple[FastAPI, EntraOpenAPI], entra_emulator: EntraEmulator
) -> None:
    app, _ = documented
    document = TestClient(app).get("/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["EntraID"]
    assert scheme["type"] == "oauth2"
    flow = scheme["flows"]["authorizationCode"]
    discovered = discovery_of(entra_emulator)
    assert flow["authorizationUrl"] == discovered["authorization_endpoint"]
    assert flow["tokenUrl"] == discovered["token_endpoint"] == flow["refreshUrl"]
    # The browser's page on the emulator's plain-http port, the token endpoint on HTTPS.
    assert flow["authorizationUrl"].startswith(entra_emulator.urls.browser_base + "/")
    assert flow["tokenUrl"].startswith(entra_emulator.urls.https_base + "/")
    assert flow["scopes"] == {SCOPE: "Call the API as you"}  # full names: what Entra is asked
    # The CA the browser must trust too, named where Swagger UI shows the scheme.
    assert str(entra_emulator.ca_path) in scheme["description"]


def test_protected_operations_reference_it_with_their_scopes_and_roles(
    documented: tuple[FastAPI, EntraOpenAPI],
) -> None:
    app, _ = documented
    paths = TestClient(app).get("/openapi.json").json()["paths"]
    assert paths["/secure-data"]["get"]["security"] == [{"EntraID": [SCOPE]}]
    # An app role is no OAuth scope: the requirement names none, the description says it.
    role_only = paths["/all-data"]["get"]
    assert role_only["security"] == [{"EntraID": []}]
    assert role_only["x-entra-app-roles"] == ["Data.Read.All"]
    assert role_only["description"] == (
        "Everything.\n\nNeeds the app role `Data.Read.All` (in the token's `roles`): a "
        "daemon's token, or a user's who was assigned it."
    )
    either = paths["/either"]["get"]  # api.require(scopes=...) names its scope too
    assert either["security"] == [{"EntraID": [SCOPE]}]
    assert either["x-entra-app-roles"] == ["Data.Read.All"]
    assert either["description"] == (
        "An app-only token (a daemon's) needs the app role `Data.Read.All` instead."
    )
    assert "security" not in paths["/public"]["get"]


def test_a_scope_the_api_was_not_given_with_is_listed_too(config: EntraConfig) -> None:
    app, api = api_app(config)

    @app.get("/write")
    async def write(
        principal: Annotated[Principal, Security(api, scopes=["Data.Write"])],
    ) -> None:
        return None

    entra_openapi(app, config, scopes={"access_as_user": "Call the API as you"}, scheme=api)
    document = TestClient(app).get("/openapi.json").json()
    assert document["paths"]["/write"]["get"]["security"] == [
        {"EntraID": [f"{API_URI}/Data.Write"]}
    ]
    flow = document["components"]["securitySchemes"]["EntraID"]["flows"]["authorizationCode"]
    assert flow["scopes"] == {SCOPE: "Call the API as you", f"{API_URI}/Data.Write": ""}


def test_app_openapi_gives_the_same_document_built_once(
    documented: tuple[FastAPI, EntraOpenAPI], entra_emulator: EntraEmulator
) -> None:
    app, _ = documented
    first = app.openapi()
    assert app.openapi() is first
    assert TestClient(app).get("/openapi.json").json() == first
    assert entra_emulator.request_counts()["discovery"] == 1


def test_while_discovery_fails_the_document_is_503_then_served(
    documented: tuple[FastAPI, EntraOpenAPI], entra_emulator: EntraEmulator
) -> None:
    app, _ = documented
    client = TestClient(app)
    entra_emulator.inject_fault("discovery", Fault("status", status=503, times=1))
    refused = client.get("/openapi.json")
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"].isdigit()
    assert refused.json()["error"] == "key_set_unavailable"
    served = client.get("/openapi.json")  # nothing half-made was kept
    assert served.status_code == 200
    assert "EntraID" in served.json()["components"]["securitySchemes"]


def test_scope_names_bare_or_full_and_the_app_id_uri(config: EntraConfig) -> None:
    app, _ = api_app(config)
    installed = EntraOpenAPI(
        app, config, scopes=["access_as_user", "api://other/Read", f"{API}/Write"]
    )
    assert installed.api_uri == API_URI  # the first api:// audience of the settings
    assert installed.scopes == {SCOPE: "", "api://other/Read": "", f"{API}/Write": ""}
    assert installed.full_names["access_as_user"] == SCOPE
    assert installed.full_names[SCOPE] == SCOPE
    bare = EntraConfig(authority=config.authority, client_id=API)
    assert EntraOpenAPI(app, bare, scopes=["x"]).api_uri == API_URI  # api://<client id>
    given = EntraOpenAPI(app, config, scopes=["x"], api_uri="api://contoso/api/")
    assert given.scopes == {"api://contoso/api/x": ""}
    with pytest.raises(Exception, match="needs the API's scopes"):
        EntraOpenAPI(app, config, scopes=[])


# -- Swagger UI and ReDoc, offline ----------------------------------------------------------
@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_the_docs_pages_load_nothing_from_another_host(
    documented: tuple[FastAPI, EntraOpenAPI], page: str
) -> None:
    app, _ = documented
    answer = TestClient(app).get(page)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert ABSOLUTE_URL.findall(answer.text) == []  # every URL is this app's own
    for url in re.findall(r"""(?:src|href)="([^"]+)\"""", answer.text):
        assert url.startswith("/"), url


def test_fastapis_own_docs_page_would_load_a_cdn() -> None:
    """The check above sees a CDN: FastAPI's page, without entra_openapi, loads jsDelivr."""
    html = TestClient(FastAPI()).get("/docs").text
    assert any("cdn.jsdelivr.net" in url for url in ABSOLUTE_URL.findall(html))


def test_swagger_ui_signs_in_as_the_docs_client_with_pkce(
    documented: tuple[FastAPI, EntraOpenAPI],
) -> None:
    app, _ = documented
    html = TestClient(app).get("/docs").text
    assert '<script src="/docs/assets/swagger-ui-bundle.js">' in html
    assert 'href="/docs/assets/swagger-ui.css"' in html
    assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in html
    assert '"validatorUrl": null' in html  # no call to validator.swagger.io
    assert (
        'ui.initOAuth({"usePkceWithAuthorizationCodeGrant": true, '
        f'"scopes": ["{SCOPE}"], "clientId": "{DOCS_CLIENT}"}})'
    ) in html
    redoc = TestClient(app).get("/redoc").text
    assert '<script src="/docs/assets/redoc.standalone.js">' in redoc


def test_the_assets_are_served_from_fastapi_offline(
    documented: tuple[FastAPI, EntraOpenAPI],
) -> None:
    app, installed = documented
    client = TestClient(app)
    types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for name in ASSETS:
        answer = client.get(f"{installed.assets_url}/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"].startswith(types[Path(name).suffix])
        assert answer.content == (asset_dir() / name).read_bytes()
    assert b"SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").content
    # Only those files: nothing else of the package's directory, nor of the disk.
    for path in ("/docs/assets/core.py", "/docs/assets/..%2F__init__.py", "/docs/assets/"):
        assert client.get(path).status_code == 404, path


def test_fastapi_settings_decide_which_pages_exist(config: EntraConfig) -> None:
    app, api = api_app(
        config, docs_url="/api-docs", redoc_url=None, swagger_ui_oauth2_redirect_url="/cb"
    )
    entra_openapi(app, config, scopes=["access_as_user"], scheme=api)
    client = TestClient(app)
    html = client.get("/api-docs").text
    assert '<script src="/api-docs/assets/swagger-ui-bundle.js">' in html
    assert "window.location.origin + '/cb'" in html
    assert '"clientId"' not in html  # no client given: Swagger UI asks for one
    assert client.get("/cb").status_code == 200
    assert client.get("/redoc").status_code == 404
    assert client.get("/docs").status_code == 404

    hidden, api = api_app(config, openapi_url=None)
    entra_openapi(hidden, config, scopes=["access_as_user"], scheme=api)
    assert TestClient(hidden).get("/docs").status_code == 404


# -- the local Entra ID's side of Swagger UI's flow -----------------------------------------
def test_the_token_endpoints_preflight_lets_swagger_uis_headers_through(
    entra_emulator: EntraEmulator,
) -> None:
    # Swagger UI sends X-Requested-With: the browser asks first (a CORS preflight).
    answer = entra_emulator.http_session().options(
        f"{entra_emulator.authority}/oauth2/v2.0/token",
        headers={
            "Origin": "http://localhost:8000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-requested-with,content-type",
        },
        timeout=HANG_GUARD,
    )
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert answer.headers["Access-Control-Allow-Headers"] == "x-requested-with,content-type"
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    assert entra_emulator.request_counts().get("token", 0) == 0  # a preflight is no request
    # A header list that is not header names is not echoed.
    odd = entra_emulator.http_session().options(
        f"{entra_emulator.authority}/oauth2/v2.0/token",
        headers={"Origin": "http://x", "Access-Control-Request-Headers": "a b; c=<d>"},
        timeout=HANG_GUARD,
    )
    assert "Access-Control-Allow-Headers" not in odd.headers


def test_a_page_redeeming_a_web_apps_code_without_secret_gets_9002326(
    entra_emulator: EntraEmulator,
) -> None:
    """Swagger UI (or MSAL.js) with a Web redirect URI: Entra says which platform is wrong
    (AADSTS9002326), not that a secret is missing (AADSTS7000218)."""
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "client_id": WEB,
        "response_type": "code",
        "redirect_uri": "http://localhost:5000/get_token",
        "scope": SCOPE,
        "code_challenge": challenge.decode().rstrip("="),
        "code_challenge_method": "S256",
    }
    authorize = f"{entra_emulator.urls.browser_base}/contoso.example/oauth2/v2.0/authorize"
    answer = BrowserlessUser().authorize(f"{authorize}?{urlencode(query)}", user=ADELE)
    form = {
        "grant_type": "authorization_code",
        "client_id": WEB,
        "code": answer["code"],
        "redirect_uri": query["redirect_uri"],
        "code_verifier": verifier,
    }
    refused = entra_emulator.http_session().post(
        f"{entra_emulator.authority}/oauth2/v2.0/token",
        data=form,
        headers={"Origin": "http://localhost:8000", "X-Requested-With": "XMLHttpRequest"},
        timeout=HANG_GUARD,
    )
    assert refused.status_code == 400
    assert refused.json()["error_codes"] == [9002326]
    assert refused.headers["Access-Control-Allow-Origin"] == "*"  # the page can read why


# -- the demo ---------------------------------------------------------------------------------
def test_the_demo_registers_swagger_uis_redirect_uri_as_a_spa_one() -> None:
    from examples.fastapi_demo import run

    seed = run.seed_for(8000)
    docs = seed.app(run.SWAGGER_APP)
    assert docs is not None
    assert docs.spa_redirect_uris == ("http://localhost:8000/docs/oauth2-redirect",)
    assert docs.redirect_uris == ()  # nothing on the Web platform
    assert not docs.secrets  # a public client
    elsewhere = run.seed_for(8123, seed).app(run.SWAGGER_APP)
    assert elsewhere is not None
    assert elsewhere.spa_redirect_uris[-1] == "http://localhost:8123/docs/oauth2-redirect"


def test_the_demo_app_takes_the_docs_client_from_the_environment(
    entra_emulator: EntraEmulator,
) -> None:
    from examples.fastapi_demo.app import create_app

    settings = entra_emulator.env_for(API)
    html = TestClient(create_app(settings)).get("/docs").text
    assert f'"clientId": "{API}"' in html  # DEMO_SWAGGER_CLIENT_ID unset: ENTRA_CLIENT_ID
    html = (
        TestClient(create_app({**settings, "DEMO_SWAGGER_CLIENT_ID": DOCS_CLIENT}))
        .get("/docs")
        .text
    )
    assert f'"clientId": "{DOCS_CLIENT}"' in html


class FastApiDemoProcess(DemoProcess):
    """``python -m examples.fastapi_demo.run`` (what ``make demo-fastapi`` runs)."""

    def __init__(self, env: dict[str, str], cwd: Path):  # DemoProcess's, another module
        self.process = subprocess.Popen(
            [sys.executable, "-m", "examples.fastapi_demo.run"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True, name="demo-output")
        self._reader.start()


def demo_env(tmp_path: Path, **ports: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_", "DEMO_"))},
        "DEMO_PORT": "0",
        "DEMO_EMULATOR_PORT": "0",
        "DEMO_EMULATOR_BROWSER_PORT": "0",
        "DEMO_STATE_DIR": str(tmp_path / "emulator"),
        "PYTHONPATH": str(ROOT),
        **ports,
    }


def test_make_demo_fastapi_serves_the_docs_and_stops_on_sigterm(tmp_path: Path) -> None:
    demo = FastApiDemoProcess(demo_env(tmp_path), cwd=tmp_path)
    try:
        url = demo.wait_ready()
        http = requests.Session()
        http.trust_env = False
        assert http.get(f"{url}/docs", timeout=HANG_GUARD).status_code == 200
        document = http.get(f"{url}/openapi.json", timeout=HANG_GUARD).json()
        port = url.rsplit(":", 1)[1]
        assert f"http://localhost:{port}/docs" in demo.output
        assert document["components"]["securitySchemes"]["EntraID"]["type"] == "oauth2"
        assert http.get(f"{url}/secure-data", timeout=HANG_GUARD).status_code == 401
    finally:
        returncode = demo.stop()
    assert returncode == 0, demo.output
    assert "Demo stopped." in demo.output
    assert "Traceback" not in demo.output


def test_make_demo_fastapi_says_a_busy_port_in_one_line(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "examples.fastapi_demo.run"],
            cwd=tmp_path,
            env=demo_env(tmp_path, DEMO_PORT=str(port)),
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    said = result.stderr.splitlines()
    assert len(said) == 1, result.stderr
    assert re.fullmatch(
        rf"Port {port} is in use: set DEMO_PORT to another port "
        r"\(DEMO_PORT=\d+ make demo-fastapi\)",
        said[0],
    ), said[0]
    assert not (tmp_path / "emulator").exists()  # stopped before the local Entra ID started
