"""EntraConfig: where the tenant is and what this app accepts, from code or the environment.

Bad configuration fails at start with an error naming the variable and what it expects.
Secrets are shown only as a fingerprint (``repr``, logs, ``doctor``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError, MissingSettingError

PUBLIC_CLOUD = "https://login.microsoftonline.com"
MULTI_TENANT = ("common", "organizations")
# ``/consumers`` (personal Microsoft accounts) is no template: its discovery document and its
# tokens name this one fixed tenant, so it is configured as that tenant (Microsoft's
# token-validation docs call "consumers" a nickname for it).
CONSUMERS = "consumers"
CONSUMERS_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
_TOKEN_VERSIONS = ("1.0", "2.0")

# Where settings were looked for, as error messages name it (``EntraConfig.sources``).
ENVIRONMENT = "the environment"
APP_CONFIG = "app.config"

# The settings read from a mapping: field name -> ENTRA_* name.
_TEXT_SETTINGS = {
    "tenant_id": "ENTRA_TENANT_ID",
    "client_id": "ENTRA_CLIENT_ID",
    "authority": "ENTRA_AUTHORITY",
    "client_secret": "ENTRA_CLIENT_SECRET",
    "client_certificate": "ENTRA_CLIENT_CERTIFICATE",
    "client_certificate_base64": "ENTRA_CLIENT_CERTIFICATE_BASE64",
    "client_certificate_password": "ENTRA_CLIENT_CERTIFICATE_PASSWORD",
    "client_certificate_thumbprint": "ENTRA_CLIENT_CERTIFICATE_THUMBPRINT",
    "client_assertion_file": "ENTRA_CLIENT_ASSERTION_FILE",
    "managed_identity": "ENTRA_MANAGED_IDENTITY",
    "ca_bundle": "ENTRA_CA_BUNDLE",
    "v1_issuer_template": "ENTRA_V1_ISSUER",
    "redirect_path": "ENTRA_REDIRECT_PATH",
    "redirect_uri": "ENTRA_REDIRECT_URI",
    "post_logout_redirect_uri": "ENTRA_POST_LOGOUT_REDIRECT_URI",
    "graph_url": "ENTRA_GRAPH_URL",
}
_LIST_SETTINGS = {
    "token_cache_keys": "ENTRA_TOKEN_CACHE_KEY",
    "api_audiences": "ENTRA_API_AUDIENCE",
    "allowed_tenants": "ENTRA_ALLOWED_TENANTS",
    "scopes": "ENTRA_SCOPES",
    "client_capabilities": "ENTRA_CLIENT_CAPABILITIES",
}

# What a feature may require, as the error names it, and the fields any of which satisfies it:
# the API's audiences default to its client id, and the tenant id can come from the authority.
_REQUIREMENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "authority": ("ENTRA_AUTHORITY (or ENTRA_TENANT_ID)", ("authority", "tenant_id")),
    "tenant_id": ("ENTRA_TENANT_ID", ("tenant_id",)),
    "client_id": ("ENTRA_CLIENT_ID", ("client_id",)),
    "client_secret": ("ENTRA_CLIENT_SECRET", ("client_secret",)),
    # What a confidential client (a web app, an API calling on, a daemon) proves itself with:
    # exactly one of these (entra_auth.credentials).
    "credential": (
        "ENTRA_CLIENT_SECRET (or ENTRA_CLIENT_CERTIFICATE, ENTRA_CLIENT_CERTIFICATE_BASE64, "
        "ENTRA_CLIENT_ASSERTION_FILE)",
        (
            "client_secret",
            "client_certificate",
            "client_certificate_base64",
            "client_assertion_file",
            "client_assertion",
            "managed_identity",  # app tokens only: web sign-in refuses it with its reason
        ),
    ),
    "api_audiences": ("ENTRA_API_AUDIENCE (or ENTRA_CLIENT_ID)", ("api_audiences", "client_id")),
}

# What to set for each requirement, in the words of the Entra admin center (the remedy of a
# "not set" error, and the fix on `entra-auth doctor`'s line for it).
WHAT_TO_SET = {
    "ENTRA_AUTHORITY (or ENTRA_TENANT_ID)": (
        "Set ENTRA_TENANT_ID to your Directory (tenant) ID (Entra admin center → Overview), or "
        "ENTRA_AUTHORITY to the authority URL (https://login.microsoftonline.com/<tenant id>, "
        "or the local Entra ID's, which `entra-auth emulator` prints)."
    ),
    "ENTRA_TENANT_ID": (
        "Set ENTRA_TENANT_ID to your Directory (tenant) ID (Entra admin center → Overview), or "
        "end ENTRA_AUTHORITY with it (https://login.microsoftonline.com/<tenant id or verified "
        "domain>): tokens name the tenant by its GUID, and nothing else here tells it."
    ),
    "ENTRA_CLIENT_ID": (
        "Set ENTRA_CLIENT_ID to the Application (client) ID on the app registration's Overview."
    ),
    "ENTRA_CLIENT_SECRET": (
        "Set ENTRA_CLIENT_SECRET to a client secret's Value (app registration → Certificates & "
        "secrets; the Value, not the Secret ID)."
    ),
    "ENTRA_CLIENT_SECRET (or ENTRA_CLIENT_CERTIFICATE, ENTRA_CLIENT_CERTIFICATE_BASE64, "
    "ENTRA_CLIENT_ASSERTION_FILE)": (
        "Set one credential of the app registration (Certificates & secrets): "
        "ENTRA_CLIENT_SECRET to a client secret's Value (the Value, not the Secret ID), "
        "ENTRA_CLIENT_CERTIFICATE to a PEM or "
        "PFX file holding a certificate you uploaded and its private key "
        "(ENTRA_CLIENT_CERTIFICATE_BASE64 for the file's bytes in base64), or "
        "ENTRA_CLIENT_ASSERTION_FILE to a file a federated identity provider writes its token "
        "to (workload identity federation, e.g. AZURE_FEDERATED_TOKEN_FILE on Kubernetes). For "
        "app tokens on an Azure host, ENTRA_MANAGED_IDENTITY=system (or a user-assigned "
        "identity's client id) needs no secret."
    ),
    "ENTRA_API_AUDIENCE (or ENTRA_CLIENT_ID)": (
        "Set ENTRA_API_AUDIENCE to the audiences your API accepts (<API client id>,api://<API "
        "client id>), or ENTRA_CLIENT_ID to the API's Application (client) ID."
    ),
}

# Who reads a .env file: not the app. Said with every "not set" error, since a .env file that
# works under `flask run` and `entra-auth doctor` but not under `python app.py` or gunicorn is
# the likeliest reason for one.
DOTENV_RULE = (
    "A .env file is read only by `flask run` (when python-dotenv is installed) and by "
    "`entra-auth doctor` and `decode --verify`, and by python-dotenv's `load_dotenv()` if the app "
    "calls it."
)
_SETTING_NAME = re.compile(r"ENTRA_[A-Z0-9_]+")
_DOTENV_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)")


def fingerprint(secret: str) -> str:
    """A short, stable, non-reversible label for a secret: ``sha256:1a2b3c4d``."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:8]


def names_in_dotenv(path: str | Path = ".env") -> frozenset[str]:
    """The names a ``.env`` file gives a non-empty value (never the values: they may be
    secrets). Read the way python-dotenv reads it, closely enough to say which names it sets;
    an unreadable or absent file sets none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(1 << 20)
    except OSError:
        return frozenset()
    names = set()
    for line in text.splitlines():
        match = _DOTENV_LINE.fullmatch(line)
        if match is None:
            continue
        value = match.group(2).strip()
        if value[:1] in ("'", '"'):
            value = value[1:].split(value[0], 1)[0]
        else:
            value = re.split(r"\s#", value, maxsplit=1)[0].strip()
            value = "" if value.startswith("#") else value
        if value:
            names.add(match.group(1))
    return frozenset(names)


def _joined(items: Sequence[str], word: str = "and") -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {word} {items[-1]}"


def missing_setting_error(
    missing: Sequence[str], sources: Sequence[str], *, dotenv: str | Path = ".env"
) -> MissingSettingError:
    """One error naming every missing setting, where they were looked for, and what to set.

    When the environment was among the places looked in and ``dotenv`` (``./.env``) sets one of
    them, it says so: the file is there, but nothing loaded it.
    """
    where = _joined(list(sources), "and") if sources else "the EntraConfig built in code"
    verb = "is" if len(missing) == 1 else "are"
    message = f"{_joined(list(missing))} {verb} not set: looked in {where}."
    fixes = [WHAT_TO_SET.get(name, f"Set {name}.") for name in missing]
    if ENVIRONMENT in sources:
        in_file = names_in_dotenv(dotenv)
        found = [n for need in missing for n in _SETTING_NAME.findall(need) if n in in_file]
        if found:
            # Without python-dotenv, `flask run` skips .env silently: say what to install.
            install = "" if importlib.util.find_spec("dotenv") else "install python-dotenv, then "
            fixes.insert(
                0,
                f"./.env sets {_joined(found)} but nothing loaded it: {install}run with `flask "
                "run` or call `load_dotenv()` (python-dotenv) before the app reads its settings.",
            )
        fixes.append(DOTENV_RULE)
    return MissingSettingError(
        message, missing=tuple(missing), sources=tuple(sources), remedy=" ".join(fixes)
    )


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
    # The other credentials (entra_auth.credentials reads them; exactly one may be set): a PEM
    # or PFX file with the certificate and its key, or that file's bytes in base64, its password,
    # the thumbprint the assertion names ("sha256", the default, or "sha1"); a file holding a
    # federated token (re-read for every token request: it rotates), or a callable giving one;
    # a managed identity ("system", or a user-assigned one's client id or resource id).
    client_certificate: str | None = None
    client_certificate_base64: str | None = field(default=None, repr=False)
    client_certificate_password: str | None = field(default=None, repr=False)
    client_certificate_thumbprint: str = "sha256"
    client_assertion_file: str | None = None
    client_assertion: Callable[[], str] | None = field(default=None, repr=False, compare=False)
    managed_identity: str | None = None
    # An API accepts app-only tokens without an app role of its own (any app of the tenant
    # can get one) only when it authorizes callers itself, by client id (ENTRA_ALLOW_APPS_
    # WITHOUT_ROLES; Microsoft.Identity.Web's AllowWebApiToBeAuthorizedByACL).
    allow_apps_without_roles: bool = False
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
    # What the app tells Entra it can handle (MSAL's client_capabilities): "CP1" is Continuous
    # Access Evaluation, which makes Graph answer a revoked session with a claims challenge and
    # gives tokens up to 28 hours of life. Declare it only where claims challenges are handled
    # (entra_auth's downstream-API calls and web sign-in do): ENTRA_CLIENT_CAPABILITIES=CP1.
    client_capabilities: tuple[str, ...] = ()
    token_cache_keys: tuple[str, ...] = field(default=(), repr=False)
    # Seconds to wait for the identity provider (and Graph) to connect and to answer each
    # request: a hanging provider must not hold a worker longer than this (ENTRA_HTTP_TIMEOUT).
    http_timeout: float = 5.0
    # The app's tokens are signed by its own key (claims mapping), published only at the
    # discovery and key-set URLs with ``?appid=<client id>`` (ENTRA_APP_SPECIFIC_KEYS).
    app_specific_keys: bool = False
    # Where the settings were looked for (``from_env``: the environment; the Flask adapter:
    # app.config, then the environment), so that a "not set" error can say so. Not a setting.
    sources: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.authority is None:
            if not self.tenant_id:
                raise missing_setting_error([_REQUIREMENTS["authority"][0]], self.sources)
            object.__setattr__(self, "authority", f"{PUBLIC_CLOUD}/{self.tenant_id}")
        authority = str(self.authority).rstrip("/")
        parts = urlsplit(authority)
        segments = [s for s in parts.path.split("/") if s]
        if parts.scheme == "https" and parts.hostname and not segments and not parts.query:
            # The instance alone (https://login.microsoftonline.com), as many samples write it,
            # with the tenant in ENTRA_TENANT_ID: the authority is the two joined.
            if not self.tenant_id:
                raise MissingSettingError(
                    f"ENTRA_AUTHORITY is {authority!r}, the instance without a tenant, and "
                    "ENTRA_TENANT_ID is not set.",
                    missing=("ENTRA_TENANT_ID",),
                    sources=self.sources,
                    remedy="Set ENTRA_TENANT_ID to your Directory (tenant) ID, or end "
                    "ENTRA_AUTHORITY with the tenant (https://login.microsoftonline.com/<tenant id "
                    "or verified domain>).",
                )
            authority = f"{authority}/{self.tenant_id.strip()}"
            parts = urlsplit(authority)
            segments = [s for s in parts.path.split("/") if s]
        object.__setattr__(self, "authority", authority)
        if parts.scheme != "https" or not parts.hostname or len(segments) != 1 or parts.query:
            raise ConfigurationError(
                f"ENTRA_AUTHORITY is {authority!r}, not an https URL with one tenant segment.",
                remedy="Use https://login.microsoftonline.com/<tenant id or verified domain> (or "
                "the local Entra ID's authority, printed by `entra-auth emulator`).",
            )
        tenant_segment = segments[0]
        if self.tenant_id is None and _is_guid(tenant_segment):
            object.__setattr__(self, "tenant_id", tenant_segment.lower())
        if tenant_segment.lower() == CONSUMERS:
            # Personal accounts: one fixed tenant, known without discovery (so StaticKeys work).
            # A tenant id that is no GUID at all is refused as such below.
            given = self.tenant_id
            if given is not None and _is_guid(given) and given.lower() != CONSUMERS_TENANT_ID:
                raise ConfigurationError(
                    f"ENTRA_AUTHORITY names /consumers (personal Microsoft accounts, tenant "
                    f"{CONSUMERS_TENANT_ID}) but ENTRA_TENANT_ID is {self.tenant_id}.",
                    remedy="Drop ENTRA_TENANT_ID for personal accounts; for accounts of your "
                    "organization use ENTRA_AUTHORITY=https://login.microsoftonline.com/<tenant "
                    "id>.",
                )
            if given is None or _is_guid(given):
                object.__setattr__(self, "tenant_id", CONSUMERS_TENANT_ID)
            if "2.0" not in self.accepted_token_versions:
                raise ConfigurationError(
                    "ENTRA_ACCEPTED_TOKEN_VERSIONS excludes 2 with /consumers: personal accounts "
                    "get v2 tokens only.",
                    remedy="Use ENTRA_ACCEPTED_TOKEN_VERSIONS=2 (an app for personal accounts "
                    'has "requestedAccessTokenVersion": 2 in its manifest).',
                )
        if self.tenant_id is not None:
            if not _is_guid(self.tenant_id):
                raise ConfigurationError(
                    f"ENTRA_TENANT_ID is {self.tenant_id!r}, not a GUID.",
                    remedy="Use the Directory (tenant) ID from the Entra admin center's Overview "
                    "(a verified domain goes in ENTRA_AUTHORITY: https://login.microsoftonline.com"
                    "/<domain>).",
                )
            object.__setattr__(self, "tenant_id", self.tenant_id.lower())
            if _is_guid(tenant_segment) and tenant_segment.lower() != self.tenant_id:
                raise ConfigurationError(
                    f"ENTRA_AUTHORITY names tenant {tenant_segment} but ENTRA_TENANT_ID is "
                    f"{self.tenant_id}.",
                    remedy="Make them name the same tenant.",
                )
        if self.app_specific_keys and not self.client_id:
            raise ConfigurationError(
                "ENTRA_APP_SPECIFIC_KEYS is true but ENTRA_CLIENT_ID is not set: an app's own "
                "signing keys are published under its client id.",
                remedy="Set ENTRA_CLIENT_ID to the Application (client) ID of the app whose "
                "tokens are validated (the API's), or drop ENTRA_APP_SPECIFIC_KEYS.",
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
        if self.client_certificate_thumbprint.lower() not in ("sha256", "sha1"):
            raise ConfigurationError(
                f"ENTRA_CLIENT_CERTIFICATE_THUMBPRINT is {self.client_certificate_thumbprint!r}.",
                remedy="Use sha256 (the default: x5t#S256, PS256) or sha1 (x5t, RS256), as the "
                "identity provider expects.",
            )
        object.__setattr__(
            self, "client_certificate_thumbprint", self.client_certificate_thumbprint.lower()
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
    def tenant_by_domain(self) -> bool:
        """The authority names one tenant by a verified domain (contoso.onmicrosoft.com) and
        ENTRA_TENANT_ID is not set: the tenant's GUID is the discovery document's to tell."""
        return self.tenant_id is None and not self.is_multi_tenant

    @property
    def metadata_url(self) -> str:
        """The discovery document; with ``app_specific_keys`` the app's own
        (``?appid=<client id>``), whose ``jwks_uri`` holds the app's signing key."""
        url = f"{self.authority}/v2.0/.well-known/openid-configuration"
        return f"{url}?appid={self.client_id}" if self.app_specific_keys else url

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
        """Fail at start when values a feature needs are missing: one ``MissingSettingError``
        naming all of them, where they were looked for (``sources``) and what to set."""
        missing: list[str] = []
        for name in names:
            if name == "api_audiences":
                value: Any = self.audiences
            elif name in _REQUIREMENTS:
                value = any(getattr(self, f) for f in _REQUIREMENTS[name][1])
            else:
                value = getattr(self, name)
            if not value:
                label = _REQUIREMENTS.get(name, (_env_name(name), ()))[0]
                if label not in missing:
                    missing.append(label)
        if missing:
            raise missing_setting_error(missing, self.sources)

    def __repr__(self) -> str:
        secret = fingerprint(self.client_secret) if self.client_secret else None
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if f.name
            not in (
                "client_secret",
                "client_certificate_base64",
                "client_certificate_password",
                "client_assertion",
                "token_cache_keys",
                "sources",
            )
        )
        return f"EntraConfig({shown}, client_secret={secret!r})"

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        require: Iterable[str] = (),
        **overrides: Any,
    ) -> EntraConfig:
        """Read ``ENTRA_*`` variables (default: ``os.environ``); ``overrides`` win over them."""
        return cls.from_mapping(
            os.environ if environ is None else environ,
            sources=(ENVIRONMENT,),
            require=require,
            **overrides,
        )

    @classmethod
    def from_mapping(
        cls,
        settings: Mapping[str, Any],
        *,
        sources: Sequence[str] | None = None,
        require: Iterable[str] = (),
        **overrides: Any,
    ) -> EntraConfig:
        """Read ``ENTRA_*`` keys from a mapping: the environment's strings
        (``ENTRA_API_AUDIENCE="a,b"``, ``ENTRA_LEEWAY="30"``) or a framework's native values
        (``["a", "b"]``, ``30``, ``False``); ``overrides`` (field names) win over them.

        ``require`` names the fields a feature needs (``"client_id"``, ``"client_secret"``,
        ``"api_audiences"`` …): when some are missing, one ``MissingSettingError`` names every
        one of them, the authority included, and ``sources`` (where ``settings`` came from).
        """
        where = tuple(sources) if sources is not None else ("the settings given",)
        required = tuple(require)
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

        for key, name in _TEXT_SETTINGS.items():
            if (value := text(name)) is not None:
                values[key] = value
        for key, name in _LIST_SETTINGS.items():
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
        acl = settings.get("ENTRA_ALLOW_APPS_WITHOUT_ROLES")
        if acl is not None and acl != "":
            values["allow_apps_without_roles"] = _flag("ENTRA_ALLOW_APPS_WITHOUT_ROLES", acl)
        app_keys = settings.get("ENTRA_APP_SPECIFIC_KEYS")
        if app_keys is not None and app_keys != "":
            values["app_specific_keys"] = _flag("ENTRA_APP_SPECIFIC_KEYS", app_keys)
        values.update({k: v for k, v in overrides.items() if v is not None})
        # Every missing value at once, before the first one stops the constructor. The tenant id
        # is left to require(): it may come from the authority's path.
        missing: list[str] = []
        for name in ("authority", *required):
            label, satisfied_by = _REQUIREMENTS.get(name, (_env_name(name), (name,)))
            present = any(values.get(f) for f in satisfied_by)
            if name != "tenant_id" and not present and label not in missing:
                missing.append(label)
        if missing:
            raise missing_setting_error(missing, where)
        config = cls(**values, sources=where)
        config.require(*required)
        return config


def _env_name(name: str) -> str:
    """The ``ENTRA_*`` setting behind a field name."""
    return {**_TEXT_SETTINGS, **_LIST_SETTINGS}.get(name) or f"ENTRA_{name.upper()}"


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
