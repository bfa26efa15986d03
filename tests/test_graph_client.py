"""GraphClient against the emulator's Graph: paging, throttling, typed errors, token confinement."""

from __future__ import annotations

import logging

import msal
import pytest

from entra_auth.client.graph import GraphClient
from entra_auth.client.token_cache import MappingTokenCacheStore, user_token_cache
from entra_auth.emulator import EntraEmulator, Fault
from entra_auth.errors import GraphAuthError, GraphError, GraphForbiddenError
from entra_auth.logs import RedactSecrets

from .helpers import ADELE, API_URI, CONTOSO, DAEMON, WEB

GRAPH = "https://graph.microsoft.com"


def client(emulator: EntraEmulator, token: str, **kwargs: object) -> GraphClient:
    return GraphClient(
        token, base_url=emulator.graph_base, session=emulator.http_session(), **kwargs
    )  # type: ignore[arg-type]


def test_me_and_paged_users(entra_emulator: EntraEmulator) -> None:
    user_token = entra_emulator.issue_token(
        client_id=WEB, resource=GRAPH, user=ADELE, scopes=["User.Read"]
    )
    assert client(entra_emulator, user_token).me()["displayName"] == "Adele Vance"
    app_token = entra_emulator.issue_token(
        client_id=DAEMON, resource=GRAPH, roles=["User.Read.All"]
    )
    graph = client(entra_emulator, app_token)
    names = [u["displayName"] for u in graph.paged("/v1.0/users?$top=1")]
    assert names == [u.name for u in entra_emulator.seed.users_of(CONTOSO)]
    assert len(list(graph.paged("/v1.0/users?$top=1", limit=2))) == 2
    assert entra_emulator.request_counts()["graph"] == 1 + len(names) + 2


def test_retry_after_is_honoured_within_a_budget(entra_emulator: EntraEmulator) -> None:
    token = entra_emulator.issue_token(
        client_id=WEB, resource=GRAPH, user=ADELE, scopes=["User.Read"]
    )
    slept: list[float] = []
    entra_emulator.inject_fault("graph", Fault("status", status=429, retry_after=3, times=2))
    assert client(entra_emulator, token, sleep=slept.append).me()["displayName"] == "Adele Vance"
    assert slept == [3.0, 3.0]
    entra_emulator.inject_fault("graph", Fault("status", status=429, retry_after=20))
    slept.clear()
    with pytest.raises(GraphError) as caught:
        client(entra_emulator, token, sleep=slept.append, max_wait=30).me()
    assert caught.value.status == 429
    assert slept == [20.0]  # one wait fits the 30 s budget, a second would not: it gives up


def test_typed_errors(entra_emulator: EntraEmulator) -> None:
    api_token = entra_emulator.issue_token(client_id=WEB, resource=API_URI, user=ADELE)
    with pytest.raises(GraphAuthError) as unauthorized:
        client(entra_emulator, api_token).me()
    assert unauthorized.value.status == 401
    assert api_token not in str(unauthorized.value)
    weak = entra_emulator.issue_token(
        client_id=WEB, resource=GRAPH, user=ADELE, scopes=["User.Read"]
    )
    with pytest.raises(GraphForbiddenError):
        client(entra_emulator, weak).get("/v1.0/users")


def test_token_never_goes_to_another_host(entra_emulator: EntraEmulator) -> None:
    token = entra_emulator.issue_token(
        client_id=WEB, resource=GRAPH, user=ADELE, scopes=["User.Read"]
    )
    with pytest.raises(GraphError, match=r"a host other than"):
        client(entra_emulator, token).get("https://evil.example/v1.0/me")


def test_timeouts_are_bounded(entra_emulator: EntraEmulator) -> None:
    token = entra_emulator.issue_token(
        client_id=WEB, resource=GRAPH, user=ADELE, scopes=["User.Read"]
    )
    entra_emulator.inject_fault("graph", Fault("hang", delay=10))
    with pytest.raises(GraphError, match="could not be reached"):
        client(entra_emulator, token, timeout=0.5).me()


def test_token_cache_written_back_only_when_changed() -> None:
    class Recording(MappingTokenCacheStore):
        saves = 0

        def save(self, data: str) -> None:
            type(self).saves += 1
            super().save(data)

    store = Recording({})
    with user_token_cache(store):
        pass
    assert Recording.saves == 0
    with user_token_cache(store) as cache:
        cache.add(
            {
                "client_id": WEB,
                "scope": ["User.Read"],
                "token_endpoint": "https://x/t",
                "response": {"access_token": "a", "expires_in": 60, "token_type": "Bearer"},
            }
        )
    assert Recording.saves == 1
    with user_token_cache(store) as cache:
        assert cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)
    assert Recording.saves == 1


def test_request_logs_are_redacted() -> None:
    record = logging.LogRecord(
        "werkzeug",
        logging.INFO,
        __file__,
        1,
        '%s - "%s" %s',
        ("127.0.0.1", "GET /get_token?code=0.AbC-xyz&state=s3cr3t&session_state=q HTTP/1.1", "302"),
        None,
    )
    assert RedactSecrets().filter(record)
    line = record.getMessage()
    assert "0.AbC-xyz" not in line
    assert "s3cr3t" not in line
    assert "code=[redacted]" in line
