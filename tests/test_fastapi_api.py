"""The FastAPI and Starlette adapter: the Flask adapter's answers, from FastAPI's own idioms.

Every answer is compared with the Flask API's (tests/security/conftest.py ``make_api``) for the
same token in the same test: status, ``WWW-Authenticate``, ``Cache-Control``, ``Retry-After``
and the JSON body. Tokens are the local Entra ID's (``issue_token``) or, for claims it would
never issue, the suite's own ``Mint`` signed with its key.

No ``from __future__ import annotations``: FastAPI reads the ``Annotated`` dependencies of the
endpoints (which name local protectors) from their annotations at runtime.
"""

import inspect
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Security, WebSocket
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import WebSocketDenialResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from entra_auth.emulator import EntraEmulator
from entra_auth.emulator.faults import Fault
from entra_auth.errors import MissingSettingError
from entra_auth.integrations.fastapi import (
    ApiProtector,
    BearerAuthenticationMiddleware,
    Principal,
)
from entra_auth.integrations.fastapi.testing import fake_principal, override_principal

from .fastapi_support import FastApiClient, build_fastapi_app, fastapi_api, who
from .helpers import ADELE, API, API_URI, DAEMON, LEGACY_URI, WEB, emulator_config
from .security.conftest import make_api
from .security.minting import REMOVE, Mint, b64

GRAPH = "00000003-0000-0000-c000-000000000000"
DAEMON_OID = "7f3e2d1c-0b9a-4876-9543-210fedcba987"
COMPARED = ("WWW-Authenticate", "Cache-Control", "Retry-After", "Content-Type")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fastapi(entra_emulator: EntraEmulator) -> Iterator[FastApiClient]:
    with fastapi_api(entra_emulator) as client:
        yield client


def user_token(emulator: EntraEmulator, scopes: tuple[str, ...] = ("access_as_user",)) -> str:
    return emulator.issue_token(client_id=WEB, resource=API_URI, user=ADELE, scopes=list(scopes))


def daemon_token(emulator: EntraEmulator) -> str:
    return emulator.issue_token(client_id=DAEMON, resource=API_URI, roles=["Data.Read.All"])


def app_only(mint: Mint, roles: list[str]) -> str:
    """An app-only token (``idtyp`` app, no ``scp``) with these roles, which Entra only issues
    for roles the app was granted."""
    return mint.token(
        scp=REMOVE, roles=roles, oid=DAEMON_OID, sub=DAEMON_OID, azp=DAEMON, idtyp="app"
    )


def forged(mint: Mint) -> str:
    """A valid token's signature over other claims (someone else's ``oid``)."""
    header, _, signature = mint.token().split(".")
    claims = b64(json.dumps(mint.claims(oid="someone-else")).encode())
    return f"{header}.{claims}.{signature}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_same_answer(fast: Any, flask: Any) -> None:
    """A FastAPI (httpx or ``Answer``) and a Flask answer are one answer."""
    fast_json = fast.json() if callable(fast.json) else fast.json
    assert (fast.status_code, fast_json) == (flask.status_code, flask.json)
    for name in COMPARED:
        assert fast.headers.get(name) == flask.headers.get(name), name


def token_kinds(emulator: EntraEmulator) -> dict[str, list[tuple[str, str]]]:
    """Authorization headers, by what they are: every refusal RFC 6750 names, and acceptances."""
    mint = Mint(emulator)
    tokens = {
        "delegated": user_token(emulator),
        "delegated-other-scope": mint.token(scp="Files.Read"),
        "delegated-role-no-scope": mint.token(scp="Files.Read", roles=["Data.Read.All"]),
        "app-only-with-role": daemon_token(emulator),
        "app-only-without-role": app_only(mint, []),
        "graph-token": mint.token(aud=GRAPH),
        "other-audience": mint.token(aud="api://someone-else"),
        "expired": mint.token(exp=int(time.time()) - 3600),
        "forged": forged(mint),
        "id-token": mint.token(nonce="n", scp=REMOVE, azp=REMOVE, aud=API),
    }
    kinds = {name: [("Authorization", f"Bearer {token}")] for name, token in tokens.items()}
    kinds.update(
        {
            "none": [],
            "basic-scheme": [("Authorization", "Basic YWRlbGU6ZGVtbw==")],
            "not-a-jwt": [("Authorization", "Bearer not-a-jwt")],
            "lower-case-scheme": [("Authorization", f"bearer {tokens['delegated']}")],
        }
    )
    return kinds


PATHS = ("/any", "/scoped", "/role", "/either", "/user-read")


# -- one answer for both adapters ------------------------------------------------------------------
def test_every_answer_is_the_flask_adapters(
    entra_emulator: EntraEmulator, fastapi: FastApiClient
) -> None:
    flask = make_api(entra_emulator)
    statuses: set[int] = set()
    for kind, headers in token_kinds(entra_emulator).items():
        for path in PATHS:
            fast, slow = fastapi.get(path, headers=headers), flask.get(path, headers=headers)
            try:
                assert_same_answer(fast, slow)
            except AssertionError as failure:
                raise AssertionError(f"{kind} on {path}: {failure}") from None
            statuses.add(fast.status_code)
    assert statuses == {200, 401, 403}  # all three kinds of answer were compared


def test_two_authorization_headers_are_refused(
    entra_emulator: EntraEmulator, fastapi: FastApiClient
) -> None:
    """WSGI folds two headers into one value ("Bearer a, Bearer b"), so Flask says the header
    holds more than one token; ASGI keeps both, so FastAPI says there are two headers. Both
    refuse the request as ``invalid_request``."""
    token = user_token(entra_emulator)
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    fast, slow = (
        fastapi.get("/any", headers=headers),
        make_api(entra_emulator).get("/any", headers=headers),
    )
    assert (fast.status_code, fast.json["error"]) == (slow.status_code, slow.json["error"])
    assert (fast.status_code, fast.json["error"]) == (401, "invalid_request")
    assert fast.json["error_description"] == "The request has more than one Authorization header."


def test_tokens_in_the_query_or_the_body_are_never_read(
    entra_emulator: EntraEmulator, fastapi: FastApiClient
) -> None:
    token, flask = user_token(entra_emulator), make_api(entra_emulator)
    for fast, slow in (
        (fastapi.get(f"/scoped?access_token={token}"), flask.get(f"/scoped?access_token={token}")),
        (
            fastapi.post("/scoped", data={"access_token": token}),
            flask.post("/scoped", data={"access_token": token}),
        ),
    ):
        assert_same_answer(fast, slow)
        assert fast.status_code == 401
        assert fast.headers["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    ("fault", "status"),
    [(Fault("status", 503, retry_after=7), 503), (Fault("garbage"), 502)],
    ids=["503-retry-after", "garbage"],
)
def test_keys_unavailable_fail_closed_as_flask_does_and_the_app_starts_anyway(
    entra_emulator: EntraEmulator,
    fault: Fault,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = user_token(entra_emulator)
    entra_emulator.inject_fault("jwks", fault)
    with caplog.at_level(logging.WARNING), fastapi_api(entra_emulator) as fastapi:
        # started: the keys could not be had, and said so
        assert any("signing keys" in r.getMessage() for r in caplog.records)
        fast = fastapi.get("/scoped", headers=bearer(token))
        slow = make_api(entra_emulator).get("/scoped", headers=bearer(token))
        assert fast.status_code == status
        assert (
            fast.json
            == slow.json
            == {
                "error": "temporarily_unavailable",
                "error_description": "Tokens cannot be checked right now; try again shortly.",
            }
        )
        assert "WWW-Authenticate" not in fast.headers
        assert fast.headers["Cache-Control"] == "no-store"
        if fault.retry_after:  # the provider's own value, as Flask answers it
            assert fast.headers["Retry-After"] == slow.headers["Retry-After"] == "7"
        else:  # until the next fetch may start
            assert int(fast.headers["Retry-After"]) >= 1
        entra_emulator.clear_faults()
        fastapi.protector.keys.policy.last_attempt = None  # type: ignore[union-attr]
        assert fastapi.get("/scoped", headers=bearer(token)).status_code == 200  # no restart


def test_settings_are_read_at_startup_never_on_import(
    monkeypatch: pytest.MonkeyPatch, entra_emulator: EntraEmulator
) -> None:
    for name in [n for n in os.environ if n.startswith("ENTRA_")]:
        monkeypatch.delenv(name)
    api = ApiProtector()  # module level in an app: no settings needed yet
    app = build_fastapi_app(api)
    with pytest.raises(MissingSettingError) as missing, TestClient(app):
        pass
    assert "ENTRA_AUTHORITY" in str(missing.value)
    for name, value in {
        "ENTRA_AUTHORITY": entra_emulator.authority,
        "ENTRA_API_AUDIENCE": API,
        "ENTRA_CA_BUNDLE": str(entra_emulator.ca_path),
    }.items():
        monkeypatch.setenv(name, value)
    with TestClient(app) as client:
        response = client.get("/scoped", headers=bearer(user_token(entra_emulator)))
    assert response.status_code == 200
    monkeypatch.setenv("ENTRA_API_AUDIENCE", "api://another-api")
    with TestClient(app) as client:  # started again: the settings are read again
        answer = client.get("/scoped", headers=bearer(user_token(entra_emulator)))
    assert (answer.status_code, answer.json()["reason"]) == (401, "wrong_audience")


# -- FastAPI's idioms ------------------------------------------------------------------------------
def test_security_scopes_accumulate_through_nested_dependencies(
    entra_emulator: EntraEmulator,
) -> None:
    api = ApiProtector(emulator_config(entra_emulator))
    app = FastAPI()
    api.init_app(app)

    async def current_user(
        principal: Annotated[Principal, Security(api, scopes=["access_as_user"])],
    ) -> Principal:
        return principal

    @app.get("/files")
    async def files(user: Annotated[Principal, Security(current_user, scopes=["Files.Read"])]):
        return {"oid": user.oid}

    reports = APIRouter(dependencies=[Security(api, scopes=["Reports.Read"])])

    @reports.get("/reports/latest")
    async def latest() -> dict[str, str]:
        return {"report": "latest"}

    app.include_router(reports)
    mint = Mint(entra_emulator)
    with TestClient(app) as client:
        refused = client.get("/files", headers=bearer(user_token(entra_emulator)))
        assert refused.status_code == 403
        assert 'scope="Files.Read access_as_user"' in refused.headers["WWW-Authenticate"]
        assert refused.json()["error_description"].endswith("requires: Files.Read.")
        both = mint.token(scp="access_as_user Files.Read")
        assert client.get("/files", headers=bearer(both)).json() == {"oid": mint.claims()["oid"]}
        assert client.get("/reports/latest").status_code == 401
        assert client.get("/reports/latest", headers=bearer(both)).status_code == 403
        reader = bearer(mint.token(scp="Reports.Read"))
        assert client.get("/reports/latest", headers=reader).json() == {"report": "latest"}
    paths = app.openapi()["paths"]
    assert paths["/files"]["get"]["security"] == [{"EntraID": ["Files.Read", "access_as_user"]}]
    assert paths["/reports/latest"]["get"]["security"] == [{"EntraID": ["Reports.Read"]}]


def test_optional_token_lets_no_token_in_and_still_refuses_a_bad_one(
    entra_emulator: EntraEmulator,
) -> None:
    api = ApiProtector(emulator_config(entra_emulator))
    app = FastAPI()
    api.init_app(app)
    maybe = api.require(optional=True)

    @app.get("/greeting")
    async def greeting(principal: Annotated[Principal | None, Depends(maybe)]):
        return {"oid": principal.oid if principal else None}

    @app.get("/maybe-files")
    async def maybe_files(
        principal: Annotated[Principal | None, Security(maybe, scopes=["Files.Read"])],
    ):
        return {"oid": principal.oid if principal else None}

    mint = Mint(entra_emulator)
    with TestClient(app) as client:
        assert client.get("/greeting").json() == {"oid": None}
        valid = client.get("/greeting", headers=bearer(user_token(entra_emulator)))
        assert valid.json() == {"oid": mint.claims()["oid"]}
        expired = client.get("/greeting", headers=bearer(mint.token(exp=1)))
        assert (expired.status_code, expired.json()["reason"]) == (401, "expired")
        wrong = client.get("/greeting", headers={"Authorization": "Basic YWRlbGU6ZGVtbw=="})
        assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_request")
        assert client.get("/maybe-files").json() == {"oid": None}
        lacking = client.get("/maybe-files", headers=bearer(user_token(entra_emulator)))
        assert lacking.status_code == 403  # a token was sent: it must carry what is required


def test_delegated_tokens_are_checked_for_scopes_app_only_tokens_for_roles(
    entra_emulator: EntraEmulator, fastapi: FastApiClient
) -> None:
    mint = Mint(entra_emulator)
    daemon = bearer(daemon_token(entra_emulator))
    answer = fastapi.get("/either", headers=daemon)
    assert (answer.status_code, answer.json["app_only"]) == (200, True)
    assert fastapi.get("/role", headers=daemon).json["roles"] == ["Data.Read.All"]
    roleless = fastapi.get("/either", headers=bearer(app_only(mint, [])))
    assert roleless.status_code == 403
    assert "app role" in roleless.json["error_description"]
    scoped = fastapi.get("/scoped", headers=daemon)
    assert scoped.status_code == 403
    assert "app-only token has no delegated scopes" in scoped.json["error_description"]
    # a user's token carrying the role but not the scope: delegated, so the scope decides
    user_with_role = bearer(mint.token(scp="Files.Read", roles=["Data.Read.All"]))
    assert fastapi.get("/either", headers=user_with_role).status_code == 403
    assert fastapi.get("/role", headers=user_with_role).status_code == 200  # roles only
    delegated = fastapi.get("/either", headers=bearer(user_token(entra_emulator)))
    assert (delegated.status_code, delegated.json["app_only"]) == (200, False)


def test_openapi_lists_the_scheme_with_each_endpoints_scopes_and_roles(
    fastapi: FastApiClient,
) -> None:
    document = fastapi.application.openapi()
    assert document["components"]["securitySchemes"]["EntraID"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token for this API from Microsoft Entra ID.",
    }
    paths = document["paths"]
    assert paths["/scoped"]["post"]["security"] == [{"EntraID": ["access_as_user"]}]
    assert paths["/either"]["get"]["security"] == [{"EntraID": ["access_as_user", "Data.Read.All"]}]
    assert paths["/any"]["get"]["security"] == [{"EntraID": []}]


def test_without_init_app_refusals_keep_status_and_headers_and_say_what_to_do(
    entra_emulator: EntraEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    api = ApiProtector(emulator_config(entra_emulator))
    app = FastAPI()  # no init_app: FastAPI's own handler answers

    @app.get("/scoped")
    async def scoped(principal: Annotated[Principal, Security(api, scopes=["access_as_user"])]):
        return {"oid": principal.oid}

    flask = make_api(entra_emulator).get("/scoped")
    with caplog.at_level(logging.WARNING), TestClient(app) as client:
        first, second = client.get("/scoped"), client.get("/scoped")
    assert first.status_code == 401
    assert first.headers["WWW-Authenticate"] == flask.headers["WWW-Authenticate"]
    assert first.json() == {"detail": flask.json}
    warnings = [r for r in caplog.records if "init_app" in r.getMessage()]
    assert len(warnings) == 1  # said once
    assert second.status_code == 401


def test_misuse_fails_closed(entra_emulator: EntraEmulator) -> None:
    api = ApiProtector(emulator_config(entra_emulator))
    with pytest.raises(TypeError, match=r"scopes=\['access_as_user'\]"):
        api.require(scopes="access_as_user")
    app = FastAPI()
    api.init_app(app)

    @app.get("/decorated")
    @api.require_token(scopes=["access_as_user"])
    async def decorated() -> dict[str, str]:  # a Starlette decorator on a FastAPI endpoint
        return {"secret": "data"}

    with TestClient(app) as client, pytest.raises(RuntimeError, match="Security"):
        client.get("/decorated", headers=bearer(user_token(entra_emulator)))


def test_no_principal_is_filled_from_the_request(entra_emulator: EntraEmulator) -> None:
    """A protector's dependency takes the connection and the scopes only: a JSON body or a
    query parameter shaped like a Principal fills nothing, and the request without a token is
    refused."""
    api = ApiProtector(emulator_config(entra_emulator))
    assert list(inspect.signature(api).parameters) == ["connection", "security_scopes"]
    app = FastAPI()
    api.init_app(app)

    @app.post("/scoped")
    async def scoped(principal: Annotated[Principal, Security(api, scopes=["access_as_user"])]):
        return {"oid": principal.oid}

    forged = {"oid": "o", "tid": "t", "sub": "s", "scopes": ["access_as_user"]}
    with TestClient(app) as client:
        answer = client.post("/scoped", json=forged, params={"principal": "x"})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="api"'


def test_a_requirement_whose_signature_is_not_read_lets_no_request_in(
    entra_emulator: EntraEmulator,
) -> None:
    """Defence in depth: FastAPI reads each requirement's own signature (its scheme with its
    scopes and roles). Were it to read the class's instead, every request fails (closed), a
    forged body or a valid token alike."""
    api = ApiProtector(emulator_config(entra_emulator))
    requirement = api.require(scopes=["access_as_user"])
    del requirement.__signature__
    app = FastAPI()
    api.init_app(app)

    @app.post("/role")
    async def role(principal: Annotated[Principal, Depends(requirement)]):
        return {"oid": principal.oid}

    forged = {"oid": "o", "tid": "t", "sub": "s", "scopes": ["access_as_user"]}
    with TestClient(app) as client:
        with pytest.raises(RuntimeError, match="signature"):
            client.post("/role", json=forged, params={"principal": "x"})
        with pytest.raises(RuntimeError, match="signature"):
            client.post("/role", headers=bearer(user_token(entra_emulator)))


# -- WebSocket -------------------------------------------------------------------------------------
def websocket_app(api: ApiProtector, *, install: bool = True) -> FastAPI:
    app = FastAPI()
    if install:
        api.init_app(app)

    @app.websocket("/ws")
    async def ws(
        websocket: WebSocket,
        principal: Annotated[Principal, Security(api, scopes=["access_as_user"])],
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"oid": principal.oid})
        await websocket.close()

    return app


def without_denial_responses(app: ASGIApp) -> ASGIApp:
    """A server without the ASGI denial-response extension (only close before accept)."""

    async def served(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope = {**scope, "extensions": {}}
        await app(scope, receive, send)

    return served


def test_websocket_handshakes_are_answered_as_requests_are(
    entra_emulator: EntraEmulator,
) -> None:
    api, mint = ApiProtector(emulator_config(entra_emulator)), Mint(entra_emulator)
    flask = make_api(entra_emulator)
    with TestClient(websocket_app(api)) as client:
        with client.websocket_connect("/ws", headers=bearer(user_token(entra_emulator))) as ws:
            assert ws.receive_json() == {"oid": mint.claims()["oid"]}
        for headers in ({}, bearer(mint.token(exp=1)), bearer(mint.token(scp="Files.Read"))):
            with (
                pytest.raises(WebSocketDenialResponse) as denied,
                client.websocket_connect("/ws", headers=headers),
            ):
                pass  # pragma: no cover - never accepted
            assert_same_answer(denied.value, flask.get("/scoped", headers=headers))
        # the token is read from the handshake's Authorization header only
        with (
            pytest.raises(WebSocketDenialResponse) as denied,
            client.websocket_connect(f"/ws?access_token={user_token(entra_emulator)}"),
        ):
            pass  # pragma: no cover - never accepted
        assert denied.value.status_code == 401


def test_websocket_handshakes_are_closed_with_1008_where_no_answer_can_be_sent(
    entra_emulator: EntraEmulator,
) -> None:
    mint = Mint(entra_emulator)
    cases = [
        ({}, 1008, "unauthorized"),
        (bearer(mint.token(exp=1)), 1008, "invalid_token: expired"),
        (bearer(mint.token(scp="Files.Read")), 1008, "insufficient_scope"),
    ]
    for install in (True, False):  # the installed handler, and Starlette's default
        api = ApiProtector(emulator_config(entra_emulator))
        with TestClient(without_denial_responses(websocket_app(api, install=install))) as client:
            for headers, code, reason in cases:
                with (
                    pytest.raises(WebSocketDisconnect) as closed,
                    client.websocket_connect("/ws", headers=headers),
                ):
                    pass  # pragma: no cover - never accepted
                assert (closed.value.code, closed.value.reason) == (code, reason)
    entra_emulator.inject_fault("jwks", Fault("status", 503, retry_after=7))
    api = ApiProtector(emulator_config(entra_emulator))
    with (
        TestClient(without_denial_responses(websocket_app(api))) as client,
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/ws", headers=bearer(mint.token())),
    ):
        pass  # pragma: no cover - never accepted
    assert (closed.value.code, closed.value.reason) == (1013, "temporarily_unavailable")


@contextmanager
def served(app: ASGIApp) -> Iterator[str]:
    """``app`` served by uvicorn on a port the system picks; its ws:// base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True, name="uvicorn")
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped while starting"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)  # a bounded readiness poll (the deadline above), not an ordering
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def test_a_real_server_answers_a_refused_handshake_with_the_http_answer(
    entra_emulator: EntraEmulator,
) -> None:
    """uvicorn and the ``websockets`` client: what a real client of the API receives."""
    api, mint = ApiProtector(emulator_config(entra_emulator)), Mint(entra_emulator)
    expected = make_api(entra_emulator).get("/scoped", headers=bearer(mint.token(exp=1)))
    with served(websocket_app(api)) as base:
        with ws_connect(f"{base}/ws", additional_headers=bearer(user_token(entra_emulator))) as ws:
            assert json.loads(ws.recv(timeout=10)) == {"oid": mint.claims()["oid"]}
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(f"{base}/ws", additional_headers=bearer(mint.token(exp=1)))
    answer = refused.value.response
    assert answer.status_code == 401
    assert json.loads(answer.body) == expected.json
    assert answer.headers["WWW-Authenticate"] == expected.headers["WWW-Authenticate"]


# -- plain Starlette -------------------------------------------------------------------------------
def starlette_app(api: ApiProtector, *, middleware: bool = False) -> Starlette:
    """The catalogue's routes as Starlette endpoints, and a WebSocket one."""

    def answer(request: Request) -> JSONResponse:
        return JSONResponse(who(request.user.principal))

    @api.require_token()
    async def any_token(request: Request) -> JSONResponse:
        return answer(request)

    @api.require_token(scopes=["access_as_user"])
    def scoped(request: Request) -> JSONResponse:  # sync: run in the thread pool
        return answer(request)

    class Role(HTTPEndpoint):
        @api.require_token(roles=["Data.Read.All"])
        async def get(self, request: Request) -> JSONResponse:
            return answer(request)

    @api.require_token(scopes=["access_as_user"], roles=["Data.Read.All"])
    async def either(request: Request) -> JSONResponse:
        return answer(request)

    @api.require_token(scopes=["User.Read"])
    async def user_read(request: Request) -> JSONResponse:
        return answer(request)

    @api.require_token(optional=True)
    async def greeting(request: Request) -> JSONResponse:
        user = request.user
        return JSONResponse({"authenticated": user.is_authenticated, "who": user.display_name})

    async def open_page(request: Request) -> JSONResponse:
        user = request.user
        return JSONResponse({"authenticated": user.is_authenticated, "who": user.display_name})

    @api.require_token(scopes=["access_as_user"])
    async def feed(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"identity": websocket.user.identity})
        await websocket.close()

    routes = [
        Route("/any", any_token),
        Route("/scoped", scoped, methods=["GET", "POST"]),
        Route("/role", Role),
        Route("/either", either),
        Route("/user-read", user_read),
        Route("/greeting", greeting),
        WebSocketRoute("/feed", feed),
    ]
    if middleware:
        routes.append(Route("/open", open_page))
    return Starlette(
        routes=routes,
        lifespan=api.lifespan,
        middleware=[Middleware(BearerAuthenticationMiddleware, api=api)] if middleware else [],
    )


@pytest.mark.parametrize("middleware", [False, True], ids=["decorator", "middleware"])
def test_starlette_endpoints_answer_as_flask_does(
    entra_emulator: EntraEmulator, middleware: bool
) -> None:
    api, flask = ApiProtector(emulator_config(entra_emulator)), make_api(entra_emulator)
    kinds = token_kinds(entra_emulator)
    with TestClient(starlette_app(api, middleware=middleware)) as client:
        for kind in ("none", "delegated", "delegated-other-scope", "app-only-with-role", "expired"):
            for path in PATHS:
                assert_same_answer(
                    client.get(path, headers=kinds[kind]), flask.get(path, headers=kinds[kind])
                )
        assert client.get("/greeting").json() == {"authenticated": False, "who": ""}
        greeted = client.get("/greeting", headers=kinds["delegated"]).json()
        assert greeted == {"authenticated": True, "who": "Adele Vance"}
        with client.websocket_connect("/feed", headers=dict(kinds["delegated"])) as ws:
            assert ws.receive_json()["identity"].endswith("@8c3dad1d-b6bc-4f8b-939b-8263372eced6")
        with (
            pytest.raises(WebSocketDenialResponse) as denied,
            client.websocket_connect("/feed", headers=dict(kinds["delegated-other-scope"])),
        ):
            pass  # pragma: no cover - never accepted
        assert_same_answer(
            denied.value, flask.get("/scoped", headers=kinds["delegated-other-scope"])
        )
    with TestClient(without_denial_responses(starlette_app(api, middleware=middleware))) as client:
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect("/feed", headers=dict(kinds["expired"])),
        ):
            pass  # pragma: no cover - never accepted
        assert (closed.value.code, closed.value.reason) == (1008, "invalid_token: expired")


def test_the_starlette_middleware_sets_request_user_and_refuses_bad_tokens_everywhere(
    entra_emulator: EntraEmulator,
) -> None:
    api, flask = ApiProtector(emulator_config(entra_emulator)), make_api(entra_emulator)
    mint = Mint(entra_emulator)
    with TestClient(starlette_app(api, middleware=True)) as client:
        assert client.get("/open").json() == {"authenticated": False, "who": ""}
        opened = client.get("/open", headers=bearer(user_token(entra_emulator)))
        assert opened.json() == {"authenticated": True, "who": "Adele Vance"}
        graph = bearer(mint.token(aud=GRAPH))  # a refused token is refused, even on open pages
        assert_same_answer(client.get("/open", headers=graph), flask.get("/any", headers=graph))
        with (
            pytest.raises(WebSocketDenialResponse) as denied,
            client.websocket_connect("/feed", headers=graph),
        ):
            pass  # pragma: no cover - never accepted
        assert denied.value.json()["reason"] == "graph_token"


def test_a_principal_another_protector_validated_is_not_reused(
    entra_emulator: EntraEmulator,
) -> None:
    """The middleware's protector accepts this API's tokens; the endpoint's protector is
    another API's (another audience): it validates the token itself, and refuses it."""
    this_api = ApiProtector(emulator_config(entra_emulator))
    other_api = ApiProtector(emulator_config(entra_emulator, api_audiences=(LEGACY_URI,)))

    @other_api.require_token()
    async def legacy(request: Request) -> JSONResponse:
        return JSONResponse({"oid": request.user.principal.oid})  # pragma: no cover

    app = Starlette(
        routes=[Route("/legacy", legacy)],
        middleware=[Middleware(BearerAuthenticationMiddleware, api=this_api)],
    )
    with TestClient(app) as client:
        answer = client.get("/legacy", headers=bearer(user_token(entra_emulator)))
    assert (answer.status_code, answer.json()["reason"]) == (401, "wrong_audience")


# -- tests without tokens --------------------------------------------------------------------------
def test_override_principal_runs_endpoints_without_tokens_and_still_authorizes(
    entra_emulator: EntraEmulator,
) -> None:
    api = ApiProtector(emulator_config(entra_emulator))
    app = build_fastapi_app(api)
    user = fake_principal(scopes=["access_as_user"], name="Test User")
    daemon = fake_principal(app_only=True, roles=["Data.Read.All"])
    with TestClient(app) as client:
        with override_principal(app, api, user):
            answer = client.get("/scoped")
            assert answer.status_code == 200
            assert answer.json()["oid"] == user.oid
            lacking = client.get("/user-read")  # the endpoints' requirements still apply
            assert lacking.status_code == 403
            assert 'scope="User.Read"' in lacking.headers["WWW-Authenticate"]
            assert client.get("/role").status_code == 403
            with override_principal(app, api, daemon):  # nested: the inner one wins
                assert client.get("/either").json()["app_only"] is True
                assert client.get("/scoped").status_code == 403
            assert client.get("/scoped").status_code == 200  # the outer one is back
        with override_principal(app, api, None):
            assert client.get("/any").json()["error"] == "unauthorized"
        assert client.get("/scoped").status_code == 401  # no override: a token is needed
    assert app.dependency_overrides == {}


def test_fake_principal_refuses_what_entra_never_issues() -> None:
    with pytest.raises(ValueError, match="app-only"):
        fake_principal(app_only=True, scopes=["access_as_user"])
    assert fake_principal(roles=["Admin"]).roles == frozenset({"Admin"})


@pytest.mark.anyio
async def test_the_emulator_with_httpx_async_client(entra_emulator: EntraEmulator) -> None:
    api = ApiProtector(emulator_config(entra_emulator))
    app = build_fastapi_app(api)
    token = user_token(entra_emulator)
    transport = httpx.ASGITransport(app=app)  # no lifespan of its own: run the protector's
    async with api.lifespan(app), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        assert (await c.get("/scoped", headers=bearer(token))).json()["scopes"] == [
            "access_as_user"
        ]
        refused = await c.get("/user-read", headers=bearer(token))
        assert refused.status_code == 403
        assert refused.json()["error"] == "insufficient_scope"
        assert (await c.get("/any")).status_code == 401


# -- logs ------------------------------------------------------------------------------------------
def test_refusals_are_logged_once_each_and_never_with_the_token(
    entra_emulator: EntraEmulator, fastapi: FastApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    mint = Mint(entra_emulator)
    refused = {
        "graph_token": mint.token(aud=GRAPH),
        "expired": mint.token(exp=1),
        "insufficient_scope": mint.token(scp="Files.Read"),
        "bad_signature": forged(mint),
    }
    accepted = user_token(entra_emulator)
    with caplog.at_level(logging.DEBUG):
        for token in refused.values():
            fastapi.get("/scoped", headers=bearer(token))
        assert fastapi.get("/scoped", headers=bearer(accepted)).status_code == 200
    records = [r for r in caplog.records if r.name == "entra_auth.fastapi"]
    assert [r.getMessage().rsplit(": ", 1)[-1] for r in records] == list(refused)
    assert all(r.getMessage().startswith("Bearer token refused on GET /scoped") for r in records)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for token in (*refused.values(), accepted):
        for part in token.split("."):
            if len(part) > 8:
                assert part not in logged
