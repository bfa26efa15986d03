"""The directory the local Entra ID serves: tenants, app registrations and users.

Loaded from a seed file (TOML or JSON) with the shape of ``default_seed.toml``. The seed is
validated when loaded, so a typo fails at start with the path of the bad value, never mid-flow.
"""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import EmulatorError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE_URI = "https://graph.microsoft.com"
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")


@dataclass(frozen=True)
class Tenant:
    id: str
    domain: str
    display_name: str


@dataclass(frozen=True)
class Secret:
    id: str
    value: str
    expires: datetime

    @property
    def hint(self) -> str:
        return self.value[:3]


@dataclass(frozen=True)
class Scope:
    value: str
    description: str
    admin_consent_required: bool = False


@dataclass(frozen=True)
class AppRole:
    value: str
    description: str
    allowed_member_types: tuple[str, ...] = ("User", "Application")
    id: str = ""


@dataclass(frozen=True)
class PermissionGrant:
    """Application permissions (app roles) an admin granted this app on a resource."""

    resource: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class App:
    client_id: str
    tenant_id: str
    display_name: str
    secrets: tuple[Secret, ...] = ()
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    multi_tenant: bool = False
    public_client: bool = False
    identifier_uris: tuple[str, ...] = ()
    scopes: tuple[Scope, ...] = ()
    app_roles: tuple[AppRole, ...] = ()
    access_token_accepted_version: int | None = None
    assignment_required: bool = False
    app_permissions: tuple[PermissionGrant, ...] = ()
    admin_consented_scopes: tuple[str, ...] = ()

    @property
    def service_principal_id(self) -> str:
        """The object id of the app's service principal (the ``oid`` of its app-only tokens)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{self.tenant_id}:{self.client_id}"))

    def scope(self, value: str) -> Scope | None:
        return next((s for s in self.scopes if s.value.lower() == value.lower()), None)

    def role(self, value: str) -> AppRole | None:
        return next((r for r in self.app_roles if r.value.lower() == value.lower()), None)


@dataclass(frozen=True)
class RoleAssignment:
    app: str  # client id or identifier URI of the app exposing the role
    role: str


@dataclass(frozen=True)
class User:
    oid: str
    tenant_id: str
    upn: str
    name: str
    password: str
    email: str | None = None
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    office_location: str | None = None
    app_roles: tuple[RoleAssignment, ...] = ()
    home_tenant_id: str | None = None  # set for guests: the tenant the account belongs to
    home_oid: str | None = None

    @property
    def is_guest(self) -> bool:
        return self.home_tenant_id is not None

    @property
    def sign_in_name(self) -> str:
        """What the user types on the sign-in page: a guest signs in with their home address."""
        return (self.email or self.upn) if self.is_guest else self.upn


@dataclass(frozen=True)
class Seed:
    tenants: tuple[Tenant, ...]
    apps: tuple[App, ...]
    users: tuple[User, ...]
    default_tenant: str = field(default="")

    def __post_init__(self) -> None:
        if not self.tenants:
            raise EmulatorError("The seed has no tenant.", remedy="Add a [[tenants]] entry.")
        if not self.default_tenant:
            object.__setattr__(self, "default_tenant", self.tenants[0].id)

    def tenant(self, ref: str) -> Tenant | None:
        ref = ref.lower()
        return next((t for t in self.tenants if ref in (t.id.lower(), t.domain.lower())), None)

    def app(self, client_id: str) -> App | None:
        return next((a for a in self.apps if a.client_id.lower() == client_id.lower()), None)

    def app_by_identifier(self, identifier: str) -> App | None:
        """The app whose client id or one of whose App ID URIs is ``identifier``."""
        ident = identifier.lower().rstrip("/")
        for app in self.apps:
            if ident == app.client_id.lower() or ident in (
                u.lower().rstrip("/") for u in app.identifier_uris
            ):
                return app
        return None

    def user(self, tenant_id: str, ref: str) -> User | None:
        """A user of the tenant by oid, UPN, or (for guests) the address they sign in with."""
        ref = ref.lower()
        for user in self.users:
            if user.tenant_id != tenant_id:
                continue
            if ref in (user.oid.lower(), user.upn.lower(), user.sign_in_name.lower()):
                return user
        return None

    def users_of(self, tenant_id: str) -> list[User]:
        return [u for u in self.users if u.tenant_id == tenant_id]


def default_seed_path() -> Path:
    return Path(str(resources.files("entra_auth.emulator").joinpath("default_seed.toml")))


def load_seed(path: str | Path | None = None) -> Seed:
    """Read a seed file (``.toml`` or ``.json``); the bundled demo seed when ``path`` is None."""
    source = Path(path) if path is not None else default_seed_path()
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise EmulatorError(
            f"Cannot read the seed file {source}: {exc.strerror}.",
            remedy="Pass --seed with the path of a TOML or JSON seed file.",
        ) from exc
    try:
        data = json.loads(text) if source.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise EmulatorError(
            f"The seed file {source} is not valid {source.suffix.lstrip('.') or 'TOML'}: {exc}.",
            remedy="Fix the syntax; default_seed.toml in the package shows the shape.",
        ) from exc
    return seed_from_dict(data, origin=str(source))


def seed_from_dict(data: dict[str, Any], *, origin: str = "seed") -> Seed:
    reader = _Reader(origin)
    tenants = tuple(
        Tenant(
            id=reader.guid(t, "id", f"tenants[{i}]"),
            domain=reader.text(t, "domain", f"tenants[{i}]"),
            display_name=reader.text(t, "display_name", f"tenants[{i}]", default=""),
        )
        for i, t in enumerate(reader.table_list(data, "tenants", "seed"))
    )
    tenant_ids = {t.id for t in tenants}
    domains = {t.domain.lower(): t.id for t in tenants}

    def tenant_ref(entry: dict[str, Any], key: str, where: str) -> str:
        value = reader.text(entry, key, where)
        resolved = value if value in tenant_ids else domains.get(value.lower())
        if resolved is None:
            raise reader.error(where, key, f"names no tenant of the seed ({value!r})")
        return resolved

    apps = []
    for i, a in enumerate(reader.table_list(data, "apps", "seed", required=False)):
        where = f"apps[{i}]"
        version = a.get("access_token_accepted_version")  # Entra: null means v1
        if version not in (None, 1, 2):
            raise reader.error(where, "access_token_accepted_version", "must be 1, 2 or absent")
        apps.append(
            App(
                client_id=reader.guid(a, "client_id", where),
                tenant_id=tenant_ref(a, "tenant", where),
                display_name=reader.text(a, "display_name", where),
                secrets=tuple(
                    Secret(
                        id=reader.text(s, "id", f"{where}.secrets[{j}]", default=str(uuid.uuid4())),
                        value=reader.text(s, "value", f"{where}.secrets[{j}]"),
                        expires=reader.when(s, "expires", f"{where}.secrets[{j}]"),
                    )
                    for j, s in enumerate(reader.table_list(a, "secrets", where, required=False))
                ),
                redirect_uris=reader.texts(a, "redirect_uris", where),
                post_logout_redirect_uris=reader.texts(a, "post_logout_redirect_uris", where),
                multi_tenant=bool(a.get("multi_tenant", False)),
                public_client=bool(a.get("public_client", False)),
                identifier_uris=reader.texts(a, "identifier_uris", where),
                scopes=tuple(
                    Scope(
                        value=reader.text(s, "value", f"{where}.scopes[{j}]"),
                        description=reader.text(s, "description", f"{where}.scopes[{j}]", ""),
                        admin_consent_required=bool(s.get("admin_consent_required", False)),
                    )
                    for j, s in enumerate(reader.table_list(a, "scopes", where, required=False))
                ),
                app_roles=tuple(
                    AppRole(
                        value=reader.text(r, "value", f"{where}.app_roles[{j}]"),
                        description=reader.text(r, "description", f"{where}.app_roles[{j}]", ""),
                        allowed_member_types=reader.texts(r, "allowed_member_types", where)
                        or ("User", "Application"),
                        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"role:{a.get('client_id')}:{j}")),
                    )
                    for j, r in enumerate(reader.table_list(a, "app_roles", where, required=False))
                ),
                access_token_accepted_version=version,
                assignment_required=bool(a.get("assignment_required", False)),
                app_permissions=tuple(
                    PermissionGrant(
                        resource=reader.text(p, "resource", f"{where}.app_permissions[{j}]"),
                        roles=reader.texts(p, "roles", f"{where}.app_permissions[{j}]"),
                    )
                    for j, p in enumerate(
                        reader.table_list(a, "app_permissions", where, required=False)
                    )
                ),
                admin_consented_scopes=reader.texts(a, "admin_consented_scopes", where),
            )
        )
    users = []
    for i, u in enumerate(reader.table_list(data, "users", "seed", required=False)):
        where = f"users[{i}]"
        home = u.get("home_tenant")
        users.append(
            User(
                oid=reader.guid(u, "oid", where),
                tenant_id=tenant_ref(u, "tenant", where),
                upn=reader.text(u, "upn", where),
                name=reader.text(u, "name", where),
                password=reader.text(u, "password", where),
                email=u.get("email"),
                given_name=u.get("given_name"),
                surname=u.get("surname"),
                job_title=u.get("job_title"),
                office_location=u.get("office_location"),
                app_roles=tuple(
                    RoleAssignment(
                        app=reader.text(r, "app", f"{where}.app_roles[{j}]"),
                        role=reader.text(r, "role", f"{where}.app_roles[{j}]"),
                    )
                    for j, r in enumerate(reader.table_list(u, "app_roles", where, required=False))
                ),
                home_tenant_id=tenant_ref(u, "home_tenant", where) if home else None,
                home_oid=reader.guid(u, "home_oid", where) if home else None,
            )
        )
    default = data.get("default_tenant")
    return Seed(
        tenants=tenants,
        apps=tuple(apps),
        users=tuple(users),
        default_tenant=tenant_ref(data, "default_tenant", "seed") if default else "",
    )


class _Reader:
    """Typed access to the raw seed data, with errors naming the bad value's place."""

    def __init__(self, origin: str):
        self.origin = origin

    def error(self, where: str, key: str, problem: str) -> EmulatorError:
        return EmulatorError(
            f"Seed {self.origin}: {where}.{key} {problem}.",
            remedy="Fix the seed file; default_seed.toml in the package shows the shape.",
        )

    def table_list(
        self, data: dict[str, Any], key: str, where: str, *, required: bool = True
    ) -> list[dict[str, Any]]:
        value = data.get(key)
        if value is None and not required:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(where, key, "must be a list of tables")
        return value

    def text(self, data: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or (default is None and not value):
            raise self.error(where, key, "must be a non-empty string")
        return value

    def texts(self, data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(where, key, "must be a list of strings")
        return tuple(value)

    def guid(self, data: dict[str, Any], key: str, where: str) -> str:
        value = self.text(data, key, where)
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise self.error(where, key, f"must be a GUID ({value!r})") from None

    def when(self, data: dict[str, Any], key: str, where: str) -> datetime:
        value = data.get(key)
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise self.error(where, key, f"must be an ISO date ({value!r})") from None
        else:
            raise self.error(where, key, "must be a date such as 2099-01-01T00:00:00Z")
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
