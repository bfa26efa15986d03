"""EntraConfig: where the tenant is and what this app accepts, from code or the environment.

Bad configuration fails at start with an error naming the variable and what it expects.
Secrets are shown only as a fingerprint (``repr``, logs, ``doctor``).
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError

PUBLIC_CLOUD = "https://login.microsoftonline.com"
MULTI_TENANT = ("common", "organizations")
_TOKEN_VERSIONS = ("1.0", "2.0")


def fingerprint(secret: str) -> str:
    """A short, stable, non-reversible label for a secret: ``sha256:1a2b3c4d``."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:8]


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _check_app_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if (
        parts.scheme not in ("https", "http")
        or not parts.hostname
        or (parts.scheme == "http" and not local)
    ):
        raise ConfigurationError(
            f"{name} is {value!r}.",
            remedy="Use an absolute https URL registered for the app (http only on localhost).",
        )


@dataclass(frozen=True)
class EntraConfig:
    """Configuration shared by token validation, sign-in and the diagnostics.

    ``authority`` is the tenant's authority URL (``https://login.microsoftonline.com/<tenant>``);
    when omitted it is built from ``tenant_id`` on Entra's public cloud.
    """

    tenant_id: str | None = None
    client_id: str | None = None
    authority: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    api_audiences: tuple[str, ...] = ()
    ca_bundle: str | None = None
    accepted_token_versions: tuple[str, ...] = ("2.0",)
    allowed_tenants: tuple[str, ...] = ()
    allow_guests: bool = True
    leeway: int = 60
    v1_issuer_template: str = "https://sts.windows.net/{tenantid}/"
    redirect_path: str = "/get_token"
    redirect_uri: str | None = None
    post_logout_redirect_uri: str | None = None
    graph_url: str | None = None
    scopes: tuple[str, ...] = ("User.Read",)
    token_cache_keys: tuple[str, ...] = field(default=(), repr=False)
    # Seconds to wait for the identity provider (and Graph) to connect and to answer each
    # request: a hanging provider must not hold a worker longer than this (ENTRA_HTTP_TIMEOUT).
    http_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.authority is None:
            if not self.tenant_id:
                raise ConfigurationError(
                    "Neither ENTRA_AUTHORITY nor ENTRA_TENANT_ID is set.",
                    remedy="Set ENTRA_TENANT_ID to your Directory (tenant) ID, or ENTRA_AUTHORITY "
                    "to the authority URL (https://login.microsoftonline.com/<tenant id>).",
                )
            object.__setattr__(self, "authority", f"{PUBLIC_CLOUD}/{self.tenant_id}")
        authority = str(self.authority).rstrip("/")
        object.__setattr__(self, "authority", authority)
        parts = urlsplit(authority)
        segments = [s for s in parts.path.split("/") if s]
        if parts.scheme != "https" or not parts.hostname or len(segments) != 1 or parts.query:
            raise ConfigurationError(
                f"ENTRA_AUTHORITY is {authority!r}, not an https URL with one tenant segment.",
                remedy="Use https://login.microsoftonline.com/<tenant id> (or the local Entra "
                "ID's authority, printed by `entra-auth emulator`).",
            )
        tenant_segment = segments[0]
        if self.tenant_id is None and _is_guid(tenant_segment):
            object.__setattr__(self, "tenant_id", tenant_segment.lower())
        if self.tenant_id is not None:
            if not _is_guid(self.tenant_id):
                raise ConfigurationError(
                    f"ENTRA_TENANT_ID is {self.tenant_id!r}, not a GUID.",
                    remedy="Use the Directory (tenant) ID from the Entra admin center's Overview.",
                )
            object.__setattr__(self, "tenant_id", self.tenant_id.lower())
            if _is_guid(tenant_segment) and tenant_segment.lower() != self.tenant_id:
                raise ConfigurationError(
                    f"ENTRA_AUTHORITY names tenant {tenant_segment} but ENTRA_TENANT_ID is "
                    f"{self.tenant_id}.",
                    remedy="Make them name the same tenant.",
                )
        if self.client_id is not None and not _is_guid(self.client_id):
            raise ConfigurationError(
                f"ENTRA_CLIENT_ID is {self.client_id!r}, not a GUID.",
                remedy="Use the Application (client) ID of the app registration.",
            )
        for tid in self.allowed_tenants:
            if not _is_guid(tid):
                raise ConfigurationError(
                    f"ENTRA_ALLOWED_TENANTS holds {tid!r}, not a tenant GUID.",
                    remedy="List tenant IDs (GUIDs), comma-separated.",
                )
        bad = [v for v in self.accepted_token_versions if v not in _TOKEN_VERSIONS]
        if bad or not self.accepted_token_versions:
            raise ConfigurationError(
                f"ENTRA_ACCEPTED_TOKEN_VERSIONS holds {bad or 'nothing'}.",
                remedy="Use 2 (the default), 1, or 1,2.",
            )
        if not 0 <= self.leeway <= 300:
            raise ConfigurationError(
                f"ENTRA_LEEWAY is {self.leeway} seconds.",
                remedy="Use 0 to 300 seconds of allowed clock skew (default 60).",
            )
        if not 0 < self.http_timeout <= 120:
            raise ConfigurationError(
                f"ENTRA_HTTP_TIMEOUT is {self.http_timeout} seconds.",
                remedy="Use a number of seconds above 0 and at most 120 (default 5).",
            )
        if self.ca_bundle is not None and not os.path.isfile(self.ca_bundle):
            raise ConfigurationError(
                f"ENTRA_CA_BUNDLE is {self.ca_bundle!r}, which is not a file.",
                remedy="Point it at a PEM file of CA certificates (the local Entra ID's ca.pem).",
            )
        for name, value in (
            ("ENTRA_REDIRECT_URI", self.redirect_uri),
            ("ENTRA_POST_LOGOUT_REDIRECT_URI", self.post_logout_redirect_uri),
        ):
            if value is not None:
                _check_app_url(name, value)
        if not self.redirect_path.startswith("/"):
            raise ConfigurationError(
                f"ENTRA_REDIRECT_PATH is {self.redirect_path!r}.",
                remedy="Use a path like /get_token.",
            )
        if "{tenantid}" not in self.v1_issuer_template:
            raise ConfigurationError(
                "ENTRA_V1_ISSUER must contain {tenantid}.",
                remedy="The public cloud's is https://sts.windows.net/{tenantid}/.",
            )

    # -- derived ------------------------------------------------------------------------------
    @property
    def tenant(self) -> str:
        """The authority's tenant segment: a GUID, a domain, ``common`` or ``organizations``."""
        return urlsplit(str(self.authority)).path.strip("/")

    @property
    def is_multi_tenant(self) -> bool:
        return self.tenant.lower() in MULTI_TENANT

    @property
    def metadata_url(self) -> str:
        return f"{self.authority}/v2.0/.well-known/openid-configuration"

    @property
    def audiences(self) -> tuple[str, ...]:
        """What an access token's ``aud`` may be: ENTRA_API_AUDIENCE, else the client id and
        its default App ID URI."""
        if self.api_audiences:
            return self.api_audiences
        if self.client_id:
            return (self.client_id, f"api://{self.client_id}")
        return ()

    @property
    def callback_url(self) -> str:
        """The redirect URI sent to Entra: ENTRA_REDIRECT_URI, else the tutorial's
        ``http://localhost:5000`` + ENTRA_REDIRECT_PATH. Never built from the request's Host."""
        return self.redirect_uri or f"http://localhost:5000{self.redirect_path}"

    @property
    def after_logout_url(self) -> str:
        if self.post_logout_redirect_uri:
            return self.post_logout_redirect_uri
        parts = urlsplit(self.callback_url)
        return f"{parts.scheme}://{parts.netloc}/"

    def require(self, *names: str) -> None:
        """Fail at start when a value a feature needs is missing."""
        env = {f.name: f"ENTRA_{f.name.upper()}" for f in fields(self)}
        env["api_audiences"] = "ENTRA_API_AUDIENCE"
        for name in names:
            value = self.audiences if name == "api_audiences" else getattr(self, name)
            if not value:
                raise ConfigurationError(
                    f"{env.get(name, name)} is not set.",
                    remedy=f"Set {env.get(name, name)} in the environment or the app's config.",
                )

    def __repr__(self) -> str:
        secret = fingerprint(self.client_secret) if self.client_secret else None
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if f.name not in ("client_secret", "token_cache_keys")
        )
        return f"EntraConfig({shown}, client_secret={secret!r})"

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> EntraConfig:
        """Read ``ENTRA_*`` variables (default: ``os.environ``); ``overrides`` win over them."""
        return cls.from_mapping(os.environ if environ is None else environ, **overrides)

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any], **overrides: Any) -> EntraConfig:
        """Read ``ENTRA_*`` keys from a mapping: the environment's strings
        (``ENTRA_API_AUDIENCE="a,b"``, ``ENTRA_LEEWAY="30"``) or a framework's native values
        (``["a", "b"]``, ``30``, ``False``); ``overrides`` (field names) win over them."""
        values: dict[str, Any] = {}

        def text(name: str) -> str | None:
            raw = settings.get(name)
            if raw is None:
                return None
            if not isinstance(raw, str):
                raise ConfigurationError(
                    f"{name} is {raw!r}, not a string.", remedy=f"Set {name} to a string."
                )
            return raw.strip() or None

        def listing(name: str) -> tuple[str, ...] | None:
            raw = settings.get(name)
            if raw is None:
                return None
            if isinstance(raw, str):
                items = [p.strip() for p in re.split(r"[,\s]+", raw)]
            elif isinstance(raw, (list, tuple, set, frozenset)):
                items = [str(p).strip() for p in raw]
            else:
                raise ConfigurationError(
                    f"{name} is {raw!r}.",
                    remedy=f"Set {name} to a list of strings, or one comma-separated string.",
                )
            found = tuple(p for p in items if p)
            return found or None

        for key, name in (
            ("tenant_id", "ENTRA_TENANT_ID"),
            ("client_id", "ENTRA_CLIENT_ID"),
            ("authority", "ENTRA_AUTHORITY"),
            ("client_secret", "ENTRA_CLIENT_SECRET"),
            ("ca_bundle", "ENTRA_CA_BUNDLE"),
            ("v1_issuer_template", "ENTRA_V1_ISSUER"),
            ("redirect_path", "ENTRA_REDIRECT_PATH"),
            ("redirect_uri", "ENTRA_REDIRECT_URI"),
            ("post_logout_redirect_uri", "ENTRA_POST_LOGOUT_REDIRECT_URI"),
            ("graph_url", "ENTRA_GRAPH_URL"),
        ):
            if (value := text(name)) is not None:
                values[key] = value
        for key, name in (
            ("token_cache_keys", "ENTRA_TOKEN_CACHE_KEY"),
            ("api_audiences", "ENTRA_API_AUDIENCE"),
            ("allowed_tenants", "ENTRA_ALLOWED_TENANTS"),
            ("scopes", "ENTRA_SCOPES"),
        ):
            if (items := listing(name)) is not None:
                values[key] = items
        if (versions := listing("ENTRA_ACCEPTED_TOKEN_VERSIONS")) is not None:
            values["accepted_token_versions"] = tuple(v if "." in v else f"{v}.0" for v in versions)
        leeway = settings.get("ENTRA_LEEWAY")
        if leeway is not None and leeway != "":
            values["leeway"] = _whole_seconds("ENTRA_LEEWAY", leeway)
        timeout = settings.get("ENTRA_HTTP_TIMEOUT")
        if timeout is not None and timeout != "":
            values["http_timeout"] = _seconds("ENTRA_HTTP_TIMEOUT", timeout)
        guests = settings.get("ENTRA_ALLOW_GUESTS")
        if guests is not None and guests != "":
            values["allow_guests"] = _flag("ENTRA_ALLOW_GUESTS", guests)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _whole_seconds(name: str, value: object) -> int:
    if type(value) is int:
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
        return int(value)
    raise ConfigurationError(
        f"{name} is {value!r}, not a whole number of seconds.",
        remedy="Use a whole number from 0 to 300.",
    )


def _seconds(name: str, value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+(\.[0-9]+)?\s*", value):
        return float(value)
    raise ConfigurationError(
        f"{name} is {value!r}, not a number of seconds.", remedy="Use a number such as 5 or 2.5."
    )


def _flag(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise ConfigurationError(f"{name} is {value!r}.", remedy="Use true or false.")
