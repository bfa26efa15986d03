"""Scope strings resolved against the directory, as Entra reads them.

``User.Read`` (no resource: Microsoft Graph), ``https://graph.microsoft.com/User.Read``,
``api://<app-id-uri>/<scope>``, ``<client-id>/<scope>``, ``<resource>/.default``, and the OpenID
Connect scopes. Matching is case-insensitive like Entra's; tokens carry the registered spelling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .oauth_errors import AadError
from .seed import GRAPH_APP_ID, GRAPH_RESOURCE_URI, OIDC_SCOPES, App, AppRole, Scope, Seed

GRAPH_SCOPES = (
    Scope("User.Read", "Sign you in and read your profile"),
    Scope("User.ReadBasic.All", "Read all users' basic profiles"),
    Scope("User.Read.All", "Read all users' full profiles", admin_consent_required=True),
)
GRAPH_ROLES = (AppRole("User.Read.All", "Read all users' full profiles", ("Application",)),)
OIDC_DESCRIPTIONS = {
    "openid": "Sign you in",
    "profile": "View your basic profile",
    "email": "View your email address",
    "offline_access": "Maintain access to data you have given it access to",
}


@dataclass(frozen=True)
class Resource:
    """An API tokens can be issued for: Microsoft Graph or an app of the directory."""

    app_id: str
    identifier: str  # how the request named it; v1 tokens carry it as ``aud``
    display_name: str
    token_version: int
    scopes: tuple[Scope, ...]
    roles: tuple[AppRole, ...]
    app: App | None = None

    @property
    def is_graph(self) -> bool:
        return self.app_id == GRAPH_APP_ID

    def scope(self, value: str) -> Scope | None:
        return next((s for s in self.scopes if s.value.lower() == value.lower()), None)

    def role(self, value: str) -> AppRole | None:
        return next((r for r in self.roles if r.value.lower() == value.lower()), None)

    def key(self, scope: str) -> str:
        """The consent record for one of this resource's scopes."""
        return f"{self.app_id}|{scope}"


@dataclass
class ScopeRequest:
    oidc: list[str] = field(default_factory=list)
    resources: dict[str, tuple[Resource, list[str]]] = field(default_factory=dict)
    default: bool = False  # a `<resource>/.default` was asked for

    @property
    def consent_keys(self) -> list[str]:
        keys = [f"oidc|{s}" for s in self.oidc]
        for resource, values in self.resources.values():
            keys.extend(resource.key(v) for v in values)
        return keys

    def single_resource(self, raw: str) -> tuple[Resource, list[str]] | None:
        if len(self.resources) > 1:
            raise AadError(28000, suberror=None, scope=raw, status=400)
        return next(iter(self.resources.values()), None)


def graph_resource() -> Resource:
    # Tokens for Graph from the v2.0 endpoint carry Graph's app id as their audience.
    return Resource(GRAPH_APP_ID, GRAPH_APP_ID, "Microsoft Graph", 1, GRAPH_SCOPES, GRAPH_ROLES)


def resolve_resource(seed: Seed, identifier: str, tenant: str) -> Resource:
    ident = identifier.rstrip("/")
    if ident.lower() in (GRAPH_RESOURCE_URI, GRAPH_APP_ID, "https://graph.microsoft.us"):
        return graph_resource()
    app = seed.app_by_identifier(ident)
    if app is None:
        raise AadError(500011, resource=identifier, tenant=tenant)
    return Resource(
        app.client_id,
        ident,
        app.display_name,
        app.access_token_accepted_version or 1,
        app.scopes,
        app.app_roles,
        app,
    )


def resolve_scopes(seed: Seed, raw: str, tenant: str) -> ScopeRequest:
    """Every scope of a request, grouped by resource; an AadError for an unknown one."""
    request = ScopeRequest()
    for item in raw.split():
        if item.lower() in OIDC_SCOPES:
            if item.lower() not in request.oidc:
                request.oidc.append(item.lower())
            continue
        if "/" in item:
            identifier, _, value = item.rpartition("/")
        else:
            identifier, value = GRAPH_RESOURCE_URI, item
        if not identifier or not value:
            raise AadError(70011, scope=item)
        resource = resolve_resource(seed, identifier, tenant)
        _, values = request.resources.setdefault(resource.app_id, (resource, []))
        if value == ".default":
            request.default = True
            continue
        scope = resource.scope(value)
        if scope is None:
            raise AadError(70011, scope=item)
        if scope.value not in values:
            values.append(scope.value)
    return request
