"""The Django adapter's API protection beyond the catalogue (test_api_catalogue.py): what a view
raises, on-behalf-of with the real MSAL, two headers through Django's ASGI handler, the
settings read again, CSRF, class-based views, DRF's own idioms, and quiet logs.

Answers are compared with the Flask adapter's for the same request wherever both answer it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, JsonResponse
from django.test import AsyncClient, Client, RequestFactory
from flask import Flask

from entra_auth.emulator import EntraEmulator
from entra_auth.errors import MissingSettingError
from entra_auth.integrations.django import api as django_api
from entra_auth.integrations.django.api import ApiProtector, require_token
from entra_auth.integrations.django.drf import PrincipalUser, RequireToken
from entra_auth.integrations.flask import ApiProtector as FlaskApiProtector
from entra_auth.keys import AsyncJwksCache, JwksCache
from entra_auth.tokens import Principal

from ..helpers import ADELE, API, API_URI, CONTOSO, DAEMON, LEGACY_URI, WEB, emulator_config
from ..helpers import secret_of as secret_of_app
from ..security.conftest import make_api
from ..security.minting import ADELE_OID, REMOVE, Mint
from ..test_fastapi_api import assert_same_answer
from .api_support import ADAPTERS, REST_FRAMEWORK, DjangoApi, entra_settings, switching
from .api_urls import RAISED

GRAPH = "00000003-0000-0000-c000-000000000000"


@pytest.fixture
def apis(
    entra_emulator: EntraEmulator, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., DjangoApi]:
    """``apis(adapter, **config)``: the test API of ``adapter`` on the emulator."""
    for name in [n for n in os.environ if n.startswith("ENTRA_")]:
        monkeypatch.delenv(name)
    activate = switching(settings)
    return lambda adapter, **config: DjangoApi(
        adapter, entra_settings(entra_emulator, **config), activate
    )


def user_token(emulator: EntraEmulator, scopes: tuple[str, ...] = ("access_as_user",)) -> str:
    return emulator.issue_token(client_id=WEB, resource=API_URI, user=ADELE, scopes=list(scopes))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def flask_raising(emulator: EntraEmulator) -> Any:
    """The Flask twin of ``api_urls.raising``: the same errors, raised by a protected view."""
    app = Flask(__name__)
    api = FlaskApiProtector(app, config=emulator_config(emulator))

    @app.get("/raise/<kind>")
    @api.require_token(scopes=["access_as_user"])
    def raising(kind: str) -> Any:
        raise RAISED[kind]()

    return app.test_client()


# -- what a protected view raises ---------------------------------------------------------------
@pytest.mark.parametrize("kind", RAISED)
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_what_a_view_raises_is_answered_as_flask_answers_it(
    entra_emulator: EntraEmulator, apis: Callable[..., DjangoApi], adapter: str, kind: str
) -> None:
    """A claims challenge, consent, an authentication context, a downstream API down: the
    caller's answer (401/403/503 with the challenge), never Django's 500 page. Only the API's
    own misconfiguration is a 500, as JSON that tells nothing but to ask its operator."""
    headers = bearer(user_token(entra_emulator))
    ours = apis(adapter).get(f"/raise/{kind}", headers=headers)
    theirs = flask_raising(entra_emulator).get(f"/raise/{kind}", headers=headers)
    assert_same_answer(ours, theirs)
    expected = {"claims": 401, "consent": 403, "context": 401, "unavailable": 503}
    assert ours.status_code == expected.get(kind, 503 if kind == "entra-down" else 500)
    if kind == "misconfigured":
        assert ours.json["error"] == "server_error"
    if kind in ("unavailable", "entra-down"):
        assert ours.headers["Retry-After"] == {"unavailable": "7", "entra-down": "9"}[kind]
        assert "depends on" in ours.json["error_description"]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_refused_on_behalf_of_exchange_is_a_403_the_caller_can_follow(
    entra_emulator: EntraEmulator, apis: Callable[..., DjangoApi], adapter: str
) -> None:
    """The real exchange (MSAL, the local Entra ID): Adele never consented to the legacy API,
    so the view's call fails and the caller gets the consent challenge; once she consents,
    the same request gets the downstream token."""
    api = apis(adapter, client_secret=secret_of_app(entra_emulator, API))
    headers = bearer(user_token(entra_emulator))
    refused = api.get("/obo", headers=headers)
    assert refused.status_code == 403, refused.json
    assert refused.json["error"] == "consent_required"
    assert refused.json["aadsts"] == "AADSTS65001"
    challenge = refused.headers["WWW-Authenticate"]
    assert 'error="consent_required"' in challenge
    assert f"{LEGACY_URI}/Legacy.Read" in challenge
    assert f"client_id={API}" in refused.json["consent_uri"]
    assert refused.headers["Cache-Control"] == "no-store"
    entra_emulator.grant_consent(ADELE, API, f"{LEGACY_URI}/Legacy.Read")
    admitted = api.get("/obo", headers=headers)
    assert (admitted.status_code, admitted.json) == (200, {"scp": "Legacy.Read"})


# -- headers ------------------------------------------------------------------------------------
def asgi_get(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[str, str], Any]:
    """One GET through Django's own ASGI handler, with exactly these raw headers."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        answered = asyncio.Event()
        body = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict[str, Any]:
            if body:
                return body.pop()
            await answered.wait()  # a client that stays until it has the answer
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered.set()

        await ASGIHandler()(scope, receive, send)

    async_to_sync(run)()
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    answer_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], answer_headers, json.loads(body)


@pytest.mark.django_db  # the ASGI handler closes old connections: the test database is there
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_two_authorization_headers_through_djangos_asgi_handler(
    entra_emulator: EntraEmulator, apis: Callable[..., DjangoApi], adapter: str
) -> None:
    """Django folds the two headers into one comma-joined value, which is no single bearer
    token: ``invalid_request``, as Flask answers them (and FastAPI, in its own words)."""
    api, token = apis(adapter), user_token(entra_emulator)
    two = [(b"authorization", f"Bearer {token}".encode())] * 2
    with api.activate(api.settings):
        one_status, _, _ = asgi_get(f"{api.prefix}/scoped", two[:1])
        status, headers, body = asgi_get(f"{api.prefix}/scoped", two)
    assert one_status == 200
    flask = make_api(entra_emulator).get(
        "/scoped", headers=[("Authorization", f"Bearer {token}")] * 2
    )
    assert (status, body) == (flask.status_code, flask.json)
    assert (status, body["error"]) == (401, "invalid_request")
    assert headers["www-authenticate"] == flask.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "value",
    ["Bearer", "Bearer ", "Bearer a b", "Bearer a,Bearer b", "bearer not!a!token"],
)
def test_drf_refuses_a_malformed_bearer_header_as_flask_does(
    entra_emulator: EntraEmulator, apis: Callable[..., DjangoApi], value: str
) -> None:
    ours = apis("drf").get("/scoped", headers={"Authorization": value})
    theirs = make_api(entra_emulator).get("/scoped", headers={"Authorization": value})
    assert_same_answer(ours, theirs)
    assert (ours.status_code, ours.json["error"]) == (401, "invalid_request")


def test_drf_leaves_another_scheme_to_its_own_authentication_class(
    entra_emulator: EntraEmulator, apis: Callable[..., DjangoApi]
) -> None:
    """DRF's classes each read their own scheme and leave the others' alone (a project may
    take Basic or DRF's Token too): a Basic header is no bearer token here, so a view that
    needs one answers as to a request without credentials, the bearer challenge."""
    ours = apis("drf").get("/scoped", headers={"Authorization": "Basic YWRlbGU6ZGVtbw=="})
    assert_same_answer(ours, make_api(entra_emulator).get("/scoped"))
    assert ours.headers["WWW-Authenticate"] == 'Bearer realm="api"'


# -- settings -----------------------------------------------------------------------------------
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_settings_are_read_again_when_they_change(
    entra_emulator: EntraEmulator, apis: Callable[..., DjangoApi], settings: Any, adapter: str
) -> None:
    api, headers = apis(adapter), bearer(user_token(entra_emulator))
    assert api.get("/scoped", headers=headers).status_code == 200
    before = django_api._DEFAULT.validator
    settings.ENTRA_API_AUDIENCE = "api://another-api"  # as pytest-django users change them
    refused = api.get("/scoped", headers=headers)
    assert (refused.status_code, refused.json["reason"]) == (401, "wrong_audience")
    assert django_api._DEFAULT.validator is not before
    del settings.ENTRA_API_AUDIENCE
    assert api.get("/scoped", headers=headers).status_code == 200


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_missing_settings_are_the_operators_error_never_a_refusal(
    entra_emulator: EntraEmulator, apis: Callable[..., DjangoApi], settings: Any, adapter: str
) -> None:
    """No authority: the request fails with the error that says what to set and where it was
    looked for (Django's 500, its log), not a 401 that would blame the caller's token."""
    api = apis(adapter)
    with api.activate(api.settings):
        del settings.ENTRA_AUTHORITY
        client = Client()
        with pytest.raises(MissingSettingError, match="ENTRA_AUTHORITY") as missing:
            client.get(f"{api.prefix}/scoped", headers=bearer(user_token(entra_emulator)))
    assert "settings.py" in str(missing.value)
    assert "the environment" in str(missing.value)


def test_a_protector_with_its_own_config_and_realm(entra_emulator: EntraEmulator) -> None:
    """A second API (another audience, its own realm) beside the settings' one: what it was
    given is kept when the settings change."""
    orders = ApiProtector(emulator_config(entra_emulator), realm="orders")

    @orders.require_token(scopes=["access_as_user"])
    def view(request: HttpRequest) -> JsonResponse:
        assert isinstance(request.principal, Principal)  # type: ignore[attr-defined]
        return JsonResponse({"oid": request.principal.oid})  # type: ignore[attr-defined]

    factory = RequestFactory()
    refused = view(factory.get("/orders"))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="orders"'
    validator = orders.validator
    django_api._settings_changed(setting="ENTRA_AUTHORITY")
    assert orders.validator is validator
    token = Mint(entra_emulator).token()
    assert json.loads(view(factory.get("/orders", headers=bearer(token))).content) == {
        "oid": ADELE_OID
    }


# -- Django's own idioms ------------------------------------------------------------------------
def test_a_bearer_token_view_takes_posts_without_a_csrf_token(
    entra_emulator: EntraEmulator, apis: Callable[..., DjangoApi]
) -> None:
    """CsrfViewMiddleware enforcing: a protected view is exempt (a browser never adds an
    Authorization header cross-site), so a POST without a token is answered 401, never with
    Django's CSRF page; a class-based view protected at ``dispatch`` likewise."""
    api = apis("django")
    client = Client(enforce_csrf_checks=True)
    with api.activate(api.settings):
        for path in ("/scoped", "/cbv"):
            refused = client.post(path)
            assert (refused.status_code, refused.headers["WWW-Authenticate"]) == (
                401,
                'Bearer realm="api"',
            )
            admitted = client.post(path, headers=bearer(user_token(entra_emulator)))
            assert admitted.status_code == 200
        assert admitted.json()["created"] is True
        scopeless = client.get("/cbv", headers=bearer(user_token(entra_emulator, ("Other",))))
        assert scopeless.status_code == 403


def test_misuse_fails_closed() -> None:
    with pytest.raises(TypeError, match=r"scopes=\['access_as_user'\]"):
        require_token(scopes="access_as_user")
    with pytest.raises(TypeError, match="roles="):
        RequireToken(roles="Data.Read.All")

    @require_token()
    def view(request: HttpRequest) -> JsonResponse:  # pragma: no cover - never reached
        raise AssertionError("reached without a request")

    with pytest.raises(TypeError, match="require_token decorates Django views"):
        view("not a request")


@pytest.mark.anyio
async def test_an_async_view_under_a_running_event_loop(
    entra_emulator: EntraEmulator, apis: Callable[..., DjangoApi]
) -> None:
    """Django's AsyncClient in the test's own event loop (ASGI): the async views validate with
    the async key set, a sync view beside them with the sync one."""
    api = apis("django-async")
    client, token = AsyncClient(), user_token(entra_emulator)
    with api.activate(api.settings):
        refused = await client.get("/async/scoped")
        assert (refused.status_code, refused.headers["WWW-Authenticate"]) == (
            401,
            'Bearer realm="api"',
        )
        admitted = await client.get("/async/scoped", headers=bearer(token))
        assert (admitted.status_code, admitted.json()["oid"]) == (200, ADELE_OID)
        assert isinstance(django_api._DEFAULT.async_validator.jwks, AsyncJwksCache)
        sync_view = await client.get("/scoped", headers=bearer(token))
        assert sync_view.status_code == 200
        assert isinstance(django_api._DEFAULT.validator.jwks, JwksCache)
        claims = await client.get("/async/sensitive", headers=bearer(token))
        assert (claims.status_code, claims.json()["error"]) == (401, "insufficient_claims")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_without_httpx_async_views_use_the_sync_key_set(
    entra_emulator: EntraEmulator, apis: Callable[..., DjangoApi], monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpx is the ``fastapi`` extra's, not the ``django`` one's: without it the async views
    validate as well, their key fetches (rare: once, then on rotation) run in a thread."""
    monkeypatch.setitem(sys.modules, "httpx", None)  # import httpx: ImportError
    monkeypatch.delitem(sys.modules, "entra_auth._async_http", raising=False)
    api = apis("django-async")
    assert api.get("/scoped", headers=bearer(user_token(entra_emulator))).status_code == 200
    with api.activate(api.settings):
        assert django_api._DEFAULT.async_validator is django_api._DEFAULT.validator


# -- Django REST framework ----------------------------------------------------------------------
def test_drf_authentication_alone_stands_for_a_token(
    entra_emulator: EntraEmulator, apis: Callable[..., DjangoApi]
) -> None:
    """DRF's IsAuthenticated behind EntraTokenAuthentication: ``request.user`` a
    ``PrincipalUser`` keyed ``oid@tid``, ``request.auth`` the ``Principal``; an app-only token
    without an app role is refused there as everywhere; no token is RFC 6750's 401."""
    api, mint = apis("drf"), Mint(entra_emulator)
    me = api.get("/me", headers=bearer(user_token(entra_emulator)))
    assert me.status_code == 200, me.json
    assert me.json["pk"] == f"{ADELE_OID}@{CONTOSO}"
    assert (me.json["username"], me.json["str"]) == (ADELE, "Adele Vance")
    assert (me.json["is_authenticated"], me.json["has_perm"], me.json["principal"]) == (
        True,
        False,
        True,
    )
    roleless = mint.token(scp=REMOVE, roles=REMOVE, azp=DAEMON, idtyp="app")
    refused = api.get("/me", headers=bearer(roleless))
    assert (refused.status_code, refused.json["error"]) == (403, "insufficient_scope")
    assert "no app role" in refused.json["error_description"]
    daemon = entra_emulator.issue_token(client_id=DAEMON, resource=API_URI, roles=["Data.Read.All"])
    assert api.get("/me", headers=bearer(daemon)).json["app_only"] is True
    anonymous = api.get("/me")
    assert_same_answer(anonymous, make_api(entra_emulator).get("/any"))
    assert PrincipalUser(Principal(oid="o", tid="t", sub="s")) == PrincipalUser(
        Principal(oid="o", tid="t", sub="other")
    )


def test_drf_without_the_exception_handler_still_answers_status_challenge_and_body(
    entra_emulator: EntraEmulator, apis: Callable[..., DjangoApi], settings: Any
) -> None:
    """DRF's own exception handler: the refusal's status, WWW-Authenticate and body are still
    ours (what the README's EXCEPTION_HANDLER adds is Cache-Control: no-store, and the answers
    to what a view raises)."""
    api, mint = apis("drf"), Mint(entra_emulator)
    flask = make_api(entra_emulator)
    with api.activate(api.settings):
        settings.REST_FRAMEWORK = {
            k: v for k, v in REST_FRAMEWORK.items() if k != "EXCEPTION_HANDLER"
        }
        for token in (mint.token(aud=GRAPH), mint.token(scp="Files.Read")):
            ours = Client().get("/drf/scoped", headers=bearer(token))
            theirs = flask.get("/scoped", headers=bearer(token))
            assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json)
            assert ours.headers["WWW-Authenticate"] == theirs.headers["WWW-Authenticate"]
            assert "Cache-Control" not in ours.headers


# -- logs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_refusals_are_logged_once_each_and_never_with_the_token(
    entra_emulator: EntraEmulator,
    apis: Callable[..., DjangoApi],
    adapter: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api, mint = apis(adapter), Mint(entra_emulator)
    bad = mint.token(aud=GRAPH)
    api.get("/any", headers=bearer(mint.token()))  # settings in place, keys fetched
    with caplog.at_level(logging.DEBUG, logger="entra_auth"):
        assert api.get("/scoped", headers=bearer(bad)).status_code == 401
    ours = [r for r in caplog.records if r.name == "entra_auth.django"]
    assert [r.getMessage() for r in ours] == [
        f"Bearer token refused on GET {api.prefix}/scoped: graph_token"
    ]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for part in bad.split("."):
        assert part not in logged


def test_drf_views_choosing_permissions_per_request_still_refuse_a_roleless_app(
    entra_emulator: EntraEmulator, apis: Callable[..., DjangoApi]
) -> None:
    """A ViewSet may apply other permissions per action than its class names: a role-less
    app-only token (any app of the tenant can get one) is refused there too."""
    api, mint = apis("drf"), Mint(entra_emulator)
    roleless = mint.token(scp=REMOVE, roles=REMOVE, azp=DAEMON, idtyp="app")
    refused = api.get("/per-action", headers=bearer(roleless))
    assert (refused.status_code, refused.json["error"]) == (403, "insufficient_scope")
    assert api.get("/per-action", headers=bearer(user_token(entra_emulator))).status_code == 200
