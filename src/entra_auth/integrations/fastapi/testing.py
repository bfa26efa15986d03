"""Unit tests of a FastAPI app without tokens: ``override_principal``.

    def test_profile():
        with override_principal(app, api, fake_principal(scopes=["access_as_user"])):
            assert TestClient(app).get("/profile").status_code == 200

The override is FastAPI's own (``app.dependency_overrides``), of the one dependency every
endpoint ``api`` protects depends on (``api.authenticate``): the token is not read, but the
endpoints' scopes and roles are still checked, so a principal without the scope gets the 403 a
real token would. Integration tests use real tokens: the ``entra_emulator`` fixture.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI

from ...tokens import Principal
from .api import ApiProtector

TEST_TENANT = "00000000-0000-4000-8000-000000000001"
TEST_USER = "00000000-0000-4000-8000-000000000002"
TEST_CLIENT = "00000000-0000-4000-8000-000000000003"


@contextmanager
def override_principal(
    app: FastAPI, api: ApiProtector, principal: Principal | None
) -> Iterator[None]:
    """Within the block, every request to ``app`` speaks for ``principal`` (``None``: a request
    without a token: 401, or ``None`` where the token is optional). The previous override, if
    any, comes back afterwards."""
    overrides = app.dependency_overrides
    missing = object()
    previous = overrides.get(api.authenticate, missing)

    async def given_principal() -> Principal | None:
        return principal

    overrides[api.authenticate] = given_principal
    try:
        yield
    finally:
        if previous is missing:
            overrides.pop(api.authenticate, None)
        else:
            overrides[api.authenticate] = previous  # type: ignore[assignment]


def fake_principal(
    *,
    scopes: Iterable[str] = (),
    roles: Iterable[str] = (),
    app_only: bool = False,
    oid: str = TEST_USER,
    tid: str = TEST_TENANT,
    name: str | None = "Test User",
    client_id: str = TEST_CLIENT,
    **claims: Any,
) -> Principal:
    """A ``Principal`` for unit tests: a user with delegated ``scopes`` (and assigned ``roles``),
    or with ``app_only=True`` an application with ``roles``. ``claims`` go into ``claims``."""
    scopes, roles = tuple(scopes), tuple(roles)
    if app_only and scopes:
        raise ValueError("An app-only token carries app roles, never delegated scopes.")
    return Principal(
        oid=oid,
        tid=tid,
        sub=oid if app_only else f"sub-of-{oid}",
        scopes=frozenset(scopes),
        roles=frozenset(roles),
        name=None if app_only else name,
        client_id=client_id,
        app_only=app_only,
        claims={"oid": oid, "tid": tid, **claims},
    )


__all__ = ["fake_principal", "override_principal"]
