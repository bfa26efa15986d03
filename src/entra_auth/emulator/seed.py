"""The directory the local Entra ID serves: tenants, app registrations and users.

Loaded from a seed file (TOML or JSON) with the shape of ``default_seed.toml``. The seed is
validated when loaded, so a typo fails at start with the path of the bad value, never mid-flow:
the file's schema is a set of msgspec Structs (an unknown key, a value of the wrong type or a
missing key names its place, e.g. ``apps[2].multi_tenant: expected bool, got str``), and what a
schema cannot say (that the tenant an app or user names exists) is checked after it.

The dataclasses below (``Seed``, ``App``, ``User``...) are the directory the emulator works with;
the ``*Entry`` Structs are only the file's shape, which differs in places (an app names its
tenant by id or domain, a user's guest account names its home tenant).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import sys
import types
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

import msgspec

from ..errors import EmulatorError
from .app_credentials import (
    CertificateEntry,
    ClientCertificate,
    FederatedCredential,
    FederatedCredentialEntry,
    TrustedSubject,
    TrustedSubjectEntry,
    certificates_from,
    federated_credentials_from,
    trusted_subjects_from,
)

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
    # A Conditional Access authentication context ("c1".."c99") a sign-in must have satisfied
    # (a step-up) before a token for this scope is issued; None: no step-up. Entra ties an
    # auth context to Conditional Access policies, not to a scope: the seed puts it here, on
    # the scope the policy protects, to model such a policy (docs/fidelity.md).
    authentication_context: str | None = None


@dataclass(frozen=True)
class AppRole:
    value: str
    description: str
    allowed_member_types: tuple[str, ...] = ("User", "Application")
    id: str = ""
    display_name: str = ""  # what admins see when they assign it; the token carries `value`


@dataclass(frozen=True)
class OptionalClaim:
    """One entry of Entra's manifest ``optionalClaims`` lists (Graph's ``optionalClaim``)."""

    name: str
    additional_properties: tuple[str, ...] = ()


@dataclass(frozen=True)
class OptionalClaims:
    """The claims an app registration asks for in the tokens issued *to* it (manifest
    ``optionalClaims``): ``id_token`` when it signs users in, ``access_token`` when it is the
    API called. Entra emits them only when asked; a claim absent here stays out of tokens."""

    id_token: tuple[OptionalClaim, ...] = ()
    access_token: tuple[OptionalClaim, ...] = ()

    def in_id_token(self, name: str) -> OptionalClaim | None:
        return next((c for c in self.id_token if c.name == name), None)

    def in_access_token(self, name: str) -> OptionalClaim | None:
        return next((c for c in self.access_token if c.name == name), None)


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
    # Entra's single-page application platform (manifest `spa.redirectUris`): PKCE required,
    # codes and refresh tokens redeemed from the browser (cross-origin) without a secret.
    spa_redirect_uris: tuple[str, ...] = ()
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
    # Entra's "Front-channel logout URL" (manifest `logoutUrl`, Graph `web.logoutUrl`): one per
    # app; a sign-out loads it in a hidden iframe, with `?sid=`, for every app of the session.
    front_channel_logout_url: str | None = None
    # Manifest `optionalClaims`: login_hint, idtyp, acct, xms_cc... only when asked for.
    optional_claims: OptionalClaims = OptionalClaims()
    # Manifest `groupMembershipClaims`: decides `groups` (SecurityGroup, All) and `wids`
    # (DirectoryRole, All) in the tokens issued to the app; None emits neither.
    group_membership_claims: str | None = None
    # Entra signs the tokens of an app with claims mapping with a key of its own, published
    # only at the key set (and discovery) URLs with `?appid=<client id>`.
    app_specific_signing_key: bool = False
    # Client assertions (private_key_jwt): Entra's keyCredentials (certificates), federated
    # identity credentials, and trusted certificate subjects (subject name and issuer).
    certificates: tuple[ClientCertificate, ...] = ()
    federated_credentials: tuple[FederatedCredential, ...] = ()
    trusted_certificate_subjects: tuple[TrustedSubject, ...] = ()

    @property
    def service_principal_id(self) -> str:
        """The object id of the app's service principal (the ``oid`` of its app-only tokens)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{self.tenant_id}:{self.client_id}"))

    def scope(self, value: str) -> Scope | None:
        return next((s for s in self.scopes if s.value.lower() == value.lower()), None)

    def role(self, value: str) -> AppRole | None:
        return next((r for r in self.app_roles if r.value.lower() == value.lower()), None)


@dataclass(frozen=True)
class ManagedIdentity:
    """A managed identity, as Entra models one: a service principal of type ManagedIdentity.

    ``client_id`` is its app id (``appid``/``azp`` of its tokens), ``object_id`` its service
    principal's object id (Azure's ``principalId``: the tokens' ``oid`` and ``sub``). A
    user-assigned identity is an Azure resource of its own (``resource_id``, of type
    ``Microsoft.ManagedIdentity/userAssignedIdentities``); a system-assigned one belongs to the
    resource it was enabled on (its ``resource_id``, when the seed gives one, is that
    resource's). Either kind's tokens name ``resource_id`` in ``xms_mirid``. Every identity of
    the seed is assigned to the machine the emulator stands for (its IMDS and App Service
    endpoints); ``app_permissions`` are the app roles granted to it, as an app's are.
    """

    kind: Literal["system", "user"]
    client_id: str
    object_id: str
    tenant_id: str
    display_name: str
    resource_id: str | None = None
    app_permissions: tuple[PermissionGrant, ...] = ()

    @property
    def service_principal_id(self) -> str:
        """The ``oid`` of its tokens (what an app's ``service_principal_id`` is to an app's)."""
        return self.object_id


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
    groups: tuple[str, ...] = ()  # object ids of the groups the user is a member of
    directory_roles: tuple[str, ...] = ()  # role template ids of directory roles (`wids`)

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
    managed_identities: tuple[ManagedIdentity, ...] = ()

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


def seed_from_dict(data: Any, *, origin: str = "seed") -> Seed:
    """The directory described by ``data`` (a seed file's content), checked as a file is."""
    try:
        entries = msgspec.convert(data, SeedFile)
    except msgspec.ValidationError as exc:
        raise _schema_error(exc, data, origin) from None
    return _Directory(entries, origin).seed()


# -- the seed file's schema -----------------------------------------------------------------------
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
AuthContextId = Annotated[str, msgspec.Meta(pattern="^c([1-9]|[1-9][0-9])$")]
MemberType = Literal["User", "Application"]


class _Entry(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A table of the seed file: a key it does not know is an error (a typo, most often)."""


class TenantEntry(_Entry):
    id: uuid.UUID
    domain: NonEmpty
    display_name: str = ""


class SecretEntry(_Entry):
    value: NonEmpty
    expires: datetime  # a TOML date-time, or a string such as "2099-12-31T00:00:00Z"
    id: str | None = None  # a fresh GUID when absent


class ScopeEntry(_Entry):
    value: NonEmpty
    description: str = ""
    admin_consent_required: bool = False
    # Entra's auth context ids are c1 to c99 (Conditional Access > Authentication contexts).
    authentication_context: AuthContextId | None = None


class AppRoleEntry(_Entry):
    value: NonEmpty
    display_name: str = ""  # the value when absent
    description: str = ""
    allowed_member_types: tuple[MemberType, ...] = ()  # none given: users and applications


class PermissionEntry(_Entry):
    resource: NonEmpty  # App ID URI or client id of the API, or Microsoft Graph
    roles: tuple[str, ...] = ()


# The optional claims of Entra's reference (optional-claims-reference) the emulator implements,
# per token: a name it does not know would silently change nothing, so it fails at start.
IdTokenClaimName = Literal["acct", "groups", "login_hint"]
AccessTokenClaimName = Literal["acct", "groups", "idtyp", "login_hint", "xms_cc"]
# Manifest `groupMembershipClaims`; "ApplicationGroup" (groups assigned to the app) is not
# modelled: the seed assigns no groups to apps.
GroupMembershipClaims = Literal["None", "SecurityGroup", "DirectoryRole", "All"]


class IdTokenClaimEntry(_Entry):
    name: IdTokenClaimName
    essential: bool = False  # Entra's field; it changes nothing in the tokens


class AccessTokenClaimEntry(_Entry):
    name: AccessTokenClaimName
    essential: bool = False
    # Entra's one additional property of idtyp: "user" in delegated tokens too.
    additional_properties: tuple[Literal["include_user_token"], ...] = ()


class OptionalClaimsEntry(_Entry):
    """Manifest ``optionalClaims``: its ``idToken`` and ``accessToken`` lists."""

    id_token: tuple[IdTokenClaimEntry, ...] = ()
    access_token: tuple[AccessTokenClaimEntry, ...] = ()


class AppEntry(_Entry):
    client_id: uuid.UUID
    tenant: NonEmpty  # the home tenant, by id or domain
    display_name: NonEmpty
    secrets: tuple[SecretEntry, ...] = ()
    redirect_uris: tuple[str, ...] = ()
    spa_redirect_uris: tuple[str, ...] = ()  # the SPA platform's; none also a Web one
    post_logout_redirect_uris: tuple[str, ...] = ()
    multi_tenant: bool = False
    public_client: bool = False
    identifier_uris: tuple[str, ...] = ()
    scopes: tuple[ScopeEntry, ...] = ()
    app_roles: tuple[AppRoleEntry, ...] = ()
    access_token_accepted_version: Literal[1, 2] | None = None  # Entra: absent means v1
    assignment_required: bool = False
    app_permissions: tuple[PermissionEntry, ...] = ()
    admin_consented_scopes: tuple[str, ...] = ()
    front_channel_logout_url: str | None = None  # checked by front_channel_url_problem
    optional_claims: OptionalClaimsEntry = msgspec.field(default_factory=OptionalClaimsEntry)
    group_membership_claims: GroupMembershipClaims | None = None
    app_specific_signing_key: bool = False
    certificates: tuple[CertificateEntry, ...] = ()  # [[apps.certificates]] pem = "…"
    federated_credentials: tuple[FederatedCredentialEntry, ...] = ()
    trusted_certificate_subjects: tuple[TrustedSubjectEntry, ...] = ()


class RoleAssignmentEntry(_Entry):
    app: NonEmpty  # client id or App ID URI of the app exposing the role
    role: NonEmpty


class UserEntry(_Entry):
    oid: uuid.UUID
    tenant: NonEmpty  # by id or domain
    upn: NonEmpty
    name: NonEmpty
    password: NonEmpty
    email: str | None = None
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    office_location: str | None = None
    app_roles: tuple[RoleAssignmentEntry, ...] = ()
    home_tenant: str | None = None  # set for a guest: the tenant the account belongs to
    home_oid: uuid.UUID | None = None  # and the account's oid there (required with home_tenant)
    groups: tuple[uuid.UUID, ...] = ()  # object ids of the user's groups (`groups` claim)
    directory_roles: tuple[uuid.UUID, ...] = ()  # role template ids (`wids` claim)


class ManagedIdentityEntry(_Entry):
    kind: Literal["system", "user"]
    client_id: uuid.UUID  # its app id
    object_id: uuid.UUID  # its service principal's object id (`oid`)
    tenant: NonEmpty  # by id or domain
    display_name: NonEmpty
    # user: /subscriptions/…/resourcegroups/…/providers/Microsoft.ManagedIdentity/
    # userAssignedIdentities/<name> (required); system: the resource it belongs to (optional)
    resource_id: str | None = None
    app_permissions: tuple[PermissionEntry, ...] = ()


class SeedFile(_Entry):
    tenants: tuple[TenantEntry, ...]
    apps: tuple[AppEntry, ...] = ()
    users: tuple[UserEntry, ...] = ()
    default_tenant: str | None = None  # by id or domain; the first tenant when absent
    managed_identities: tuple[ManagedIdentityEntry, ...] = ()


# -- from the file's entries to the directory -----------------------------------------------------
_REMEDY = "Fix the seed file; default_seed.toml in the package shows the shape."


class _Directory:
    """Builds the ``Seed`` from checked entries, resolving what refers to a tenant."""

    def __init__(self, entries: SeedFile, origin: str):
        self.entries = entries
        self.origin = origin
        self.tenants = tuple(
            Tenant(id=str(t.id), domain=t.domain, display_name=t.display_name)
            for t in entries.tenants
        )
        self._ids = {t.id for t in self.tenants}
        self._domains = {t.domain.lower(): t.id for t in self.tenants}

    def seed(self) -> Seed:
        default = self.entries.default_tenant
        apps = tuple(self._app(a, f"apps[{i}]") for i, a in enumerate(self.entries.apps))
        users = tuple(self._user(u, f"users[{i}]", apps) for i, u in enumerate(self.entries.users))
        return Seed(
            tenants=self.tenants,
            apps=apps,
            users=users,
            default_tenant=self._tenant(default, "default_tenant") if default else "",
            managed_identities=self._managed_identities(apps, users),
        )

    def _managed_identities(
        self, apps: tuple[App, ...], users: tuple[User, ...]
    ) -> tuple[ManagedIdentity, ...]:
        """The seed's managed identities: at most one system-assigned (the machine's), every
        client id, object id and resource id its own."""
        found: list[ManagedIdentity] = []
        taken = {a.client_id.lower(): f"the app {a.display_name!r}" for a in apps}
        taken.update({u.oid.lower(): f"the user {u.upn!r}" for u in users})
        for i, entry in enumerate(self.entries.managed_identities):
            path = f"managed_identities[{i}]"
            identity = ManagedIdentity(
                kind=entry.kind,
                client_id=str(entry.client_id),
                object_id=str(entry.object_id),
                tenant_id=self._tenant(entry.tenant, f"{path}.tenant"),
                display_name=entry.display_name,
                resource_id=self._mi_resource_id(entry, f"{path}.resource_id"),
                app_permissions=tuple(
                    PermissionGrant(resource=p.resource, roles=p.roles)
                    for p in entry.app_permissions
                ),
            )
            if identity.kind == "system" and any(f.kind == "system" for f in found):
                raise EmulatorError(
                    f"Seed {self.origin}: {path}.kind: a second system-assigned identity; the "
                    "machine the emulator stands for has one.",
                    remedy=f'Make it kind = "user" (with a resource_id). {_REMEDY}',
                )
            for key, value in (
                ("client_id", identity.client_id),
                ("object_id", identity.object_id),
                ("resource_id", identity.resource_id),
            ):
                if value is None:
                    continue
                if value.lower() in taken:
                    raise EmulatorError(
                        f"Seed {self.origin}: {path}.{key}: {value!r} is already "
                        f"{taken[value.lower()]}'s.",
                        remedy=f"Give each identity ids of its own. {_REMEDY}",
                    )
                taken[value.lower()] = f"the managed identity {identity.display_name!r}"
            found.append(identity)
        return tuple(found)

    def _mi_resource_id(self, entry: ManagedIdentityEntry, path: str) -> str | None:
        rid = entry.resource_id
        if rid is None:
            if entry.kind == "user":
                raise EmulatorError(
                    f"Seed {self.origin}: {path}: missing; a user-assigned identity is an "
                    "Azure resource with an id.",
                    remedy=f"Give its id, such as {_USER_ASSIGNED_EXAMPLE}. {_REMEDY}",
                )
            return None
        user_assigned = _USER_ASSIGNED_ID.fullmatch(rid) is not None
        if entry.kind == "user" and not user_assigned:
            raise EmulatorError(
                f"Seed {self.origin}: {path}: not the id of a user-assigned identity "
                f"(got {rid!r}).",
                remedy=f"Give one such as {_USER_ASSIGNED_EXAMPLE}. {_REMEDY}",
            )
        if entry.kind == "system" and (user_assigned or not _RESOURCE_ID.fullmatch(rid)):
            raise EmulatorError(
                f"Seed {self.origin}: {path}: a system-assigned identity's resource_id is the "
                f"id of the resource it belongs to, such as a virtual machine (got {rid!r}).",
                remedy="Give one such as /subscriptions/<GUID>/resourcegroups/<group>/providers/"
                f"Microsoft.Compute/virtualMachines/<name>, or none. {_REMEDY}",
            )
        return rid

    def _tenant(self, ref: str, path: str) -> str:
        resolved = ref if ref in self._ids else self._domains.get(ref.lower())
        if resolved is None:
            raise EmulatorError(
                f"Seed {self.origin}: {path}: names no tenant of the seed ({ref!r}).",
                remedy=f"Name a tenant of [[tenants]] by its id or domain. {_REMEDY}",
            )
        return resolved

    def _app(self, entry: AppEntry, path: str) -> App:
        client_id = str(entry.client_id)
        return App(
            client_id=client_id,
            tenant_id=self._tenant(entry.tenant, f"{path}.tenant"),
            display_name=entry.display_name,
            secrets=tuple(
                Secret(
                    id=s.id if s.id is not None else str(uuid.uuid4()),
                    value=s.value,
                    expires=s.expires
                    if s.expires.tzinfo
                    else s.expires.replace(tzinfo=timezone.utc),
                )
                for s in entry.secrets
            ),
            redirect_uris=entry.redirect_uris,
            spa_redirect_uris=self._spa_uris(entry, f"{path}.spa_redirect_uris"),
            post_logout_redirect_uris=entry.post_logout_redirect_uris,
            multi_tenant=entry.multi_tenant,
            public_client=entry.public_client,
            identifier_uris=entry.identifier_uris,
            scopes=tuple(
                Scope(s.value, s.description, s.admin_consent_required, s.authentication_context)
                for s in entry.scopes
            ),
            app_roles=tuple(
                AppRole(
                    value=r.value,
                    description=r.description,
                    allowed_member_types=r.allowed_member_types or ("User", "Application"),
                    # From the app and the role's place: the same on every start.
                    id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"role:{client_id}:{j}")),
                    display_name=r.display_name or r.value,
                )
                for j, r in enumerate(entry.app_roles)
            ),
            access_token_accepted_version=entry.access_token_accepted_version,
            assignment_required=entry.assignment_required,
            app_permissions=tuple(
                PermissionGrant(resource=p.resource, roles=p.roles) for p in entry.app_permissions
            ),
            admin_consented_scopes=entry.admin_consented_scopes,
            front_channel_logout_url=self._logout_url(
                entry.front_channel_logout_url, f"{path}.front_channel_logout_url"
            ),
            optional_claims=self._optional_claims(entry.optional_claims, f"{path}.optional_claims"),
            group_membership_claims=(
                None
                if entry.group_membership_claims in (None, "None")
                else entry.group_membership_claims
            ),
            app_specific_signing_key=entry.app_specific_signing_key,
            certificates=certificates_from(entry.certificates, f"{path}.certificates", self.origin),
            federated_credentials=federated_credentials_from(
                entry.federated_credentials, f"{path}.federated_credentials", self.origin
            ),
            trusted_certificate_subjects=trusted_subjects_from(
                entry.trusted_certificate_subjects,
                f"{path}.trusted_certificate_subjects",
                self.origin,
            ),
        )

    def _optional_claims(self, entry: OptionalClaimsEntry, path: str) -> OptionalClaims:
        for j, claim in enumerate(entry.access_token):
            if claim.additional_properties and claim.name != "idtyp":
                raise EmulatorError(
                    f"Seed {self.origin}: {path}.access_token[{j}].additional_properties: "
                    f"{claim.name!r} takes none (include_user_token is idtyp's).",
                    remedy=_REMEDY,
                )
        return OptionalClaims(
            id_token=tuple(OptionalClaim(c.name) for c in entry.id_token),
            access_token=tuple(
                OptionalClaim(c.name, c.additional_properties) for c in entry.access_token
            ),
        )

    def _spa_uris(self, entry: AppEntry, path: str) -> tuple[str, ...]:
        """The app's SPA redirect URIs; one that is also a Web redirect URI is refused: the
        platform decides PKCE and who may redeem the code, so a URI has one platform."""
        both = [uri for uri in entry.spa_redirect_uris if uri in entry.redirect_uris]
        if both:
            raise EmulatorError(
                f"Seed {self.origin}: {path}: {both[0]!r} is also in redirect_uris (Web); a "
                "redirect URI belongs to one platform.",
                remedy=f"Keep it in spa_redirect_uris or in redirect_uris, not both. {_REMEDY}",
            )
        return entry.spa_redirect_uris

    def _logout_url(self, url: str | None, path: str) -> str | None:
        if url is None:
            return None
        problem = front_channel_url_problem(url)
        if problem:
            raise EmulatorError(
                f"Seed {self.origin}: {path}: {problem} (got {url!r}).",
                remedy="Give the absolute address of the app's front-channel logout route, "
                f"such as http://localhost:5000/logout/front-channel. {_REMEDY}",
            )
        return url

    def _user(self, entry: UserEntry, path: str, apps: tuple[App, ...]) -> User:
        home_tenant_id = home_oid = None
        if entry.home_tenant:  # a guest: both halves of the home account are needed
            home_tenant_id = self._tenant(entry.home_tenant, f"{path}.home_tenant")
            if entry.home_oid is None:
                raise EmulatorError(
                    f"Seed {self.origin}: {path}.home_oid: missing; a guest (home_tenant set) "
                    "needs the oid of its account in the home tenant.",
                    remedy=_REMEDY,
                )
            home_oid = str(entry.home_oid)
        return User(
            oid=str(entry.oid),
            tenant_id=self._tenant(entry.tenant, f"{path}.tenant"),
            upn=entry.upn,
            name=entry.name,
            password=entry.password,
            email=entry.email,
            given_name=entry.given_name,
            surname=entry.surname,
            job_title=entry.job_title,
            office_location=entry.office_location,
            app_roles=tuple(
                self._assignment(r, f"{path}.app_roles[{j}]", apps)
                for j, r in enumerate(entry.app_roles)
            ),
            home_tenant_id=home_tenant_id,
            home_oid=home_oid,
            groups=tuple(str(g) for g in entry.groups),
            directory_roles=tuple(str(r) for r in entry.directory_roles),
        )

    def _assignment(
        self, entry: RoleAssignmentEntry, path: str, apps: tuple[App, ...]
    ) -> RoleAssignment:
        """A user's app role, which must name an app of the seed and a role users can hold.

        Tokens would silently leave out a role that names nothing: a typo here shows at start.
        """
        ref = entry.app.lower().rstrip("/")
        app = next(
            (
                a
                for a in apps
                if ref in (a.client_id, *(u.lower().rstrip("/") for u in a.identifier_uris))
            ),
            None,
        )
        if app is None:
            raise EmulatorError(
                f"Seed {self.origin}: {path}.app: names no app of the seed ({entry.app!r}).",
                remedy=f"Name an app of [[apps]] by its client_id or identifier_uris. {_REMEDY}",
            )
        role = app.role(entry.role)
        if role is None or "User" not in role.allowed_member_types:
            for_users = [r.value for r in app.app_roles if "User" in r.allowed_member_types]
            raise EmulatorError(
                f"Seed {self.origin}: {path}.role: {app.display_name!r} has no app role "
                f"{entry.role!r} that users can hold.",
                remedy=f"Its roles for users: {', '.join(for_users) or 'none'}. {_REMEDY}",
            )
        return RoleAssignment(app=entry.app, role=entry.role)


# Azure resource ids (case-insensitive, as Azure Resource Manager reads them).
_RESOURCE_ID = re.compile(
    r"/subscriptions/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"/resourcegroups/[^/]+/providers/[^/]+(?:/[^/]+/[^/]+)+",
    re.IGNORECASE,
)
_USER_ASSIGNED_ID = re.compile(
    r"/subscriptions/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"/resourcegroups/[^/]+/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+",
    re.IGNORECASE,
)
_USER_ASSIGNED_EXAMPLE = (
    "/subscriptions/<GUID>/resourcegroups/<group>/providers/Microsoft.ManagedIdentity/"
    "userAssignedIdentities/<name>"
)


# -- the front-channel logout URL ----------------------------------------------------------------
# The characters a URI may hold (RFC 3986): anything else (a space, a double quote, `<`, a
# control character) is a typo, and refusing it here means the URL can go into an iframe's src
# and the page's Content-Security-Policy with no way to break out of either.
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")


def front_channel_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a front-channel logout URL; None when it is fine.

    Entra's rules for the field: HTTPS, except plain http for the local machine (``localhost``
    or a 127.0.0.0/8 address); OpenID Connect Front-Channel Logout 1.0 adds: absolute, no
    fragment (a query is allowed and kept). An IPv6 literal such as ``[::1]`` is refused
    because a Content-Security-Policy source cannot name one, so no page could frame it.
    """
    if url and not _URI_CHARS.fullmatch(url):
        return "must be a URL without spaces, quotes or other characters a URL cannot hold"
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("https", "http") or not parts.netloc:
        return "must be an absolute https:// URL"
    if "#" in url:
        return "must not have a fragment (#...)"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password"
    host = (parts.hostname or "").lower()
    if "[" in parts.netloc or not _HOST.fullmatch(host):
        # What a Content-Security-Policy source can name: no IPv6 literal, no underscore.
        return "must name its host with letters, digits, dots and hyphens (or an IPv4 address)"
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return "has a port that is not a number from 0 to 65535"
    if parts.scheme.lower() == "http" and not _loopback(host):
        return "must use https (plain http only for localhost or 127.0.0.1)"
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        return False


# -- schema errors in the seed's own words --------------------------------------------------------
_AT = " - at `$"
_PATH_PART = re.compile(r"([A-Za-z_]\w*)|\[(\d+)\]")


def _schema_error(exc: msgspec.ValidationError, data: Any, origin: str) -> EmulatorError:
    """``Seed FILE: apps[2].multi_tenant: expected bool, got str.`` and what to do about it."""
    message, _, at = str(exc).partition(_AT)
    path = at.rstrip("`").lstrip(".")
    remedy = _REMEDY
    if found := re.fullmatch(r"Object contains unknown field `(.+)`", message):
        keys = _keys_at(path)
        path = _join(path, found[1])
        close = difflib.get_close_matches(found[1], keys, n=1)
        problem = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
        remedy = f"The keys allowed there: {', '.join(keys)}. {_REMEDY}"
    elif found := re.fullmatch(r"Object missing required field `(.+)`", message):
        path = _join(path, found[1])
        problem = "missing (this key is required)"
    elif message == "Expected `str` of length >= 1":
        problem = "must not be empty"
    elif message == "Invalid UUID":
        problem = f"must be a GUID such as 8c3dad1d-b6bc-4f8b-939b-8263372eced6{_got(data, path)}"
    elif message.startswith("Invalid RFC3339"):
        problem = f"must be a date and time such as 2099-12-31T00:00:00Z{_got(data, path)}"
    elif message.startswith("Expected `str` matching regex") and path.endswith(
        ".authentication_context"
    ):
        problem = (
            "must be an authentication context id, c1 to c99, as Conditional Access names "
            f"them{_got(data, path)}"
        )
    elif message.startswith("Invalid enum value"):
        allowed = ", ".join(repr(v) for v in _literals(_type_at(path)))
        problem = f"must be one of {allowed}{_got(data, path)}"
    else:  # "Expected `bool`, got `str`" and the like
        problem = message.replace("`", "")
        problem = problem[:1].lower() + problem[1:]
    return EmulatorError(f"Seed {origin}: {path or 'the file'}: {problem}.", remedy=remedy)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_at(path: str) -> Any:
    """The schema's type at ``path`` (``apps[2].multi_tenant``); None when there is none."""
    current: Any = SeedFile
    for name, _index in _PATH_PART.findall(path):
        current = _unwrap(current)
        if name:
            if not (isinstance(current, type) and issubclass(current, msgspec.Struct)):
                return None
            current = {f.name: f.type for f in msgspec.structs.fields(current)}.get(name)
        else:
            args = get_args(current)
            current = args[0] if args else None
        if current is None:
            return None
    return _unwrap(current)


def _unwrap(kind: Any) -> Any:
    """``X | None`` and ``Annotated[X, ...]`` as ``X``."""
    if get_origin(kind) is Annotated:
        return get_args(kind)[0]
    if get_origin(kind) in (Union, types.UnionType):  # Optional[X], or X | None
        present = [k for k in get_args(kind) if k is not type(None)]
        return present[0] if len(present) == 1 else kind
    return kind


def _keys_at(path: str) -> list[str]:
    kind = _type_at(path)
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return [f.name for f in msgspec.structs.fields(kind)]
    return []


def _literals(kind: Any) -> tuple[Any, ...]:
    return get_args(kind) if get_origin(kind) is Literal else ()


def _got(data: Any, path: str) -> str:
    """`` (got 'x')``: the value at ``path`` in the raw seed, for ids, dates and choices."""
    for name, index in _PATH_PART.findall(path):
        try:
            data = data[name] if name else data[int(index)]
        except (KeyError, IndexError, TypeError):
            return ""
    return f" (got {data!r})"
