"""The identity provider's metadata (OpenID Connect Discovery 1.0), typed and checked.

``parse_metadata`` turns a discovery document into ``ProviderMetadata`` after the checks that
make it trustworthy, without any I/O: the ``issuer`` must belong to the configured authority
(Discovery §4.3: GUID tenant exact; ``common``/``organizations`` the ``{tenantid}`` template;
``consumers`` its fixed tenant; a domain-named tenant ``https://<the authority's host>/<a
GUID>/v2.0``, that GUID being the tenant's id, ``ProviderMetadata.tenant_id``), and
``jwks_uri`` must be https on the authority's own host and port (``on_authority_host``) and,
for an app's own signing keys, name the app (``?appid=<client id>``). ``Discovery`` fetches it
once per process over the sync transport and shares it: sign-in, sign-out, Graph and key
fetching all read the same object. ``AsyncDiscovery`` (``_async_http``, the ``fastapi`` extra)
does the same over httpx for asyncio apps, with the same ``parse_metadata`` and the same typed
errors (``provider_error``); it loads on first use, so importing this module needs no httpx.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import requests

from ._http import FetchError, get_json
from .config import EntraConfig
from .errors import KeySetUnavailableError, ProviderResponseError, ProviderUnavailableError

if TYPE_CHECKING:
    from ._async_http import AsyncDiscovery as AsyncDiscovery
else:

    def __getattr__(name: str) -> Any:
        """``AsyncDiscovery`` loads on first use: it needs httpx (the ``fastapi`` extra)."""
        if name == "AsyncDiscovery":
            from ._async_http import AsyncDiscovery

            return AsyncDiscovery
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class ProviderMetadata:
    """What clients read from the discovery document (``raw`` keeps the whole of it)."""

    issuer: str
    jwks_uri: str
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    end_session_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    msgraph_host: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def tenant_id(self) -> str | None:
        """The tenant GUID the issuer names (``https://<host>/<tid>/v2.0``); None for the
        ``{tenantid}`` template of ``common``/``organizations``."""
        path = urlsplit(self.issuer).path.strip("/").split("/")
        return path[0] if len(path) == 2 and _is_tenant_guid(path[0]) else None

    @property
    def issuer_base(self) -> str:
        """``scheme://host`` of the issuer: v2 issuers are ``{base}/{tid}/v2.0``."""
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def graph_url(self) -> str:
        """Microsoft Graph's base URL for this cloud (``msgraph_host``), https."""
        host = self.msgraph_host
        return f"https://{host}" if host else "https://graph.microsoft.com"


def on_authority_host(url: str, authority: str) -> bool:
    """Is ``url`` https on exactly the authority's host and port?

    The one rule for every URL from a discovery document that is then called (``jwks_uri``, and
    ``doctor``'s ``token_endpoint``): a document that is wrong or was rewritten on the way (an
    intercepting proxy) must not send key fetches, or the client secret, to another host or
    over plain http.
    """
    # Whitespace, control characters and backslashes are refused outright: urlsplit drops tabs
    # and newlines, and HTTP clients read backslashes their own way, so the host we compare
    # could differ from the host that is called.
    if not url.isascii() or "\\" in url or any(c <= " " or c == "\x7f" for c in url):
        return False
    try:
        target, base = urlsplit(url), urlsplit(authority)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    # netloc, not hostname: user info ("user@host") and the port must match too.
    return target.scheme == "https" and target.netloc.lower() == base.netloc.lower()


def _is_tenant_guid(value: str) -> bool:
    """A GUID in its canonical form (36 characters, lower case), as Entra writes tenant ids
    in issuers and as the configuration keeps them: compared exactly, never normalised."""
    try:
        return len(value) == 36 and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def issuer_matches_authority(issuer: str, config: EntraConfig) -> bool:
    authority = urlsplit(str(config.authority))
    expected_base = f"https://{authority.netloc.lower()}/"
    if not issuer.startswith(expected_base) or not issuer.endswith("/v2.0"):
        return False
    tenant = issuer[len(expected_base) : -len("/v2.0")]
    if config.is_multi_tenant:
        return tenant == "{tenantid}"
    if config.tenant_id is not None:  # a GUID authority, ENTRA_TENANT_ID, or /consumers
        return tenant == config.tenant_id
    # An authority by domain name: the document names the tenant's GUID, which is then the
    # tenant this configuration accepts. Anything else (a template, a domain, a path) would
    # leave the tenant to the token.
    return _is_tenant_guid(tenant)


def names_app(jwks_uri: str, client_id: str | None) -> bool:
    """Does the key set's URL ask for this app's own keys (one ``appid``, the client id)?"""
    return parse_qs(urlsplit(jwks_uri).query).get("appid") == [str(client_id)]


def parse_metadata(doc: object, config: EntraConfig, url: str) -> ProviderMetadata:
    """``ProviderMetadata`` from a discovery document, or ``FetchError`` saying why not."""
    if not isinstance(doc, dict):
        raise FetchError(f"The discovery document at {url} is not a JSON object.")
    issuer, jwks_uri = doc.get("issuer"), doc.get("jwks_uri")
    if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
        raise FetchError(f"The discovery document at {url} lacks issuer or jwks_uri.")
    if not issuer_matches_authority(issuer, config):
        raise FetchError(
            f"The discovery document's issuer {issuer!r} does not belong to the configured "
            f"authority {config.authority}."
        )
    if not on_authority_host(jwks_uri, str(config.authority)):
        raise FetchError(
            f"The discovery document's jwks_uri {jwks_uri!r} is not https on "
            f"{urlsplit(str(config.authority)).netloc}."
        )
    if config.app_specific_keys and not names_app(jwks_uri, config.client_id):
        # The tenant's shared key set does not hold the app's own key: every token would be
        # refused as signed by an unknown key, the wrong diagnosis.
        raise FetchError(
            f"The discovery document at {url} gives the jwks_uri {jwks_uri!r}, which does not "
            f"ask for the app's own keys (appid={config.client_id})."
        )

    def text(name: str) -> str | None:
        value = doc.get(name)
        return value if isinstance(value, str) and value else None

    return ProviderMetadata(
        issuer=issuer,
        jwks_uri=jwks_uri,
        authorization_endpoint=text("authorization_endpoint"),
        token_endpoint=text("token_endpoint"),
        end_session_endpoint=text("end_session_endpoint"),
        userinfo_endpoint=text("userinfo_endpoint"),
        msgraph_host=text("msgraph_host"),
        raw=doc,
    )


def provider_error(
    exc: FetchError, config: EntraConfig, step: str, what: str
) -> ProviderUnavailableError:
    """The typed error for a failed fetch: 502 when the provider answered nonsense, else 503
    (``KeySetUnavailableError``: refuse, never accept), with host, step, cause and Retry-After."""
    kind = ProviderResponseError if exc.nonsense else KeySetUnavailableError
    return kind(
        f"{what} could not be had: {exc.cause}.",
        remedy=f"Check that {config.authority} is reachable from this server (network, proxy, "
        "ENTRA_CA_BUNDLE) and that ENTRA_AUTHORITY names the right tenant.",
        retry_after=exc.retry_after,
        host=urlsplit(str(config.authority)).netloc,
        step=step,
        cause=exc.cause,
    )


class Discovery:
    """The authority's metadata, fetched on first use and then shared (thread-safe)."""

    def __init__(
        self,
        config: EntraConfig,
        *,
        session: requests.Session | None = None,
        timeout: float | None = None,
    ):
        self.config = config
        self.timeout = config.http_timeout if timeout is None else timeout
        self._session = session or requests.Session()
        self._verify: str | bool = config.ca_bundle or True
        self._metadata: ProviderMetadata | None = None
        self._lock = threading.Lock()

    def read(self) -> ProviderMetadata:
        """Fetch and check the discovery document now (``FetchError`` says what is wrong)."""
        url = self.config.metadata_url
        doc = get_json(
            self._session, url, "The discovery document", timeout=self.timeout, verify=self._verify
        )
        return parse_metadata(doc, self.config, url)

    @property
    def metadata(self) -> ProviderMetadata:
        """The metadata; ``KeySetUnavailableError`` (fail closed) while it cannot be had."""
        if self._metadata is None:
            with self._lock:
                if self._metadata is None:
                    try:
                        self._metadata = self.read()
                    except FetchError as exc:
                        raise provider_error(
                            exc, self.config, "discovery", "The identity provider's metadata"
                        ) from None
        return self._metadata

    def remember(self, metadata: ProviderMetadata) -> None:
        """Keep metadata fetched elsewhere (the key cache's first fetch)."""
        self._metadata = metadata

    @property
    def known(self) -> ProviderMetadata | None:
        return self._metadata
