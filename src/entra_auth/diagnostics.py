"""Diagnostics that say the fix: ``doctor`` checks, token decoding and explained verification.

Framework-free; ``entra-auth doctor|decode|explain`` render these. Nothing here prints a secret
(a fingerprint at most) or a token's signature.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlencode, urlsplit

import requests
from cryptography import x509

from . import aadsts
from ._http import FetchError, cause_of, retry_after_seconds
from .config import PUBLIC_CLOUD, WHAT_TO_SET, EntraConfig, fingerprint
from .credentials import ClientCredential, client_credential
from .discovery import Discovery, ProviderMetadata, on_authority_host
from .errors import (
    ConfigurationError,
    EntraAuthError,
    InsufficientScopeError,
    InvalidTokenError,
    MissingSettingError,
)
from .keys import JwksCache
from .tokens import MAX_NUMERIC_DATE, AccessTokenValidator, IdTokenValidator, Principal

CLOCK_SKEW_LIMIT = 300
LOOPBACK = ("localhost", "127.0.0.1", "::1")
EMULATOR_PORT = 8443  # `entra-auth emulator`'s default HTTPS port


@dataclass
class Check:
    """One line of ``doctor``: what was checked, whether it passed, and the fix if not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    # Not a failure, but not known either: the identity provider could not be asked, so ``fix``
    # says what to look at by hand. Shown as ⚠️; it does not fail doctor.
    warn: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- doctor ---------------------------------------------------------------------------------------
def doctor(
    load_config: Callable[[], EntraConfig],
    *,
    session: requests.Session | None = None,
    timeout: float = 10.0,
    clock: Callable[[], float] = time.time,
    given: Collection[str] | None = None,
) -> list[Check]:
    """Every check that applies, in order; later checks are skipped when earlier ones fail.

    ``given`` is the ``ENTRA_*`` names the configuration was given (not derived), so that a fix
    names the setting the user wrote: the wrong tenant in ENTRA_AUTHORITY or in ENTRA_TENANT_ID.
    """
    checks: list[Check] = []
    try:
        config = load_config()
        config.require("client_id", "credential")
        credential = client_credential(config)  # one, readable: else a configuration error
    except MissingSettingError as exc:
        # Each missing setting on a line of its own, all at once: fixing one at a time, a run
        # of doctor each, is what a newcomer's first hour should not be.
        where = _places(exc.sources, "or")
        return [
            Check(name, False, f"not set in {where}", WHAT_TO_SET.get(name, f"Set {name}."))
            for name in exc.missing
        ]
    except ConfigurationError as exc:
        return [Check("configuration", False, exc.message, exc.remedy)]
    # Both are set here (require above): the line never says "not set" in green.
    shown = (
        f"client secret {fingerprint(str(config.client_secret))}"
        if credential.kind == "secret"
        else credential.describe()
    )
    read_from = f" (read from {_places(config.sources, 'and')})" if config.sources else ""
    checks.append(
        Check(
            "configuration",
            True,
            f"authority {config.authority}, client id {config.client_id}, {shown}{read_from}",
        )
    )
    if credential.certificate is not None:
        checks.append(_check_certificate(credential, clock()))
        if not checks[-1].ok:
            return checks
    tenant_settings = _tenant_settings(config, given)
    http = session or requests.Session()
    if config.ca_bundle:
        http.trust_env = False
    verify: str | bool = config.ca_bundle or True
    checks.append(_check_ca_bundle(config))
    if not checks[-1].ok:
        return checks

    reachable, date_header = _check_authority(config, http, verify, timeout, tenant_settings)
    checks.append(reachable)
    if not reachable.ok:
        return checks
    if date_header is not None:
        checks.append(_check_clock(date_header, clock()))

    discovery = Discovery(config, session=http, timeout=timeout)
    jwks = JwksCache(config, discovery=discovery, session=http, timeout=timeout)
    try:
        metadata = discovery.read()
        checks.append(Check("discovery", True, f"issuer {metadata.issuer} matches the authority"))
    except FetchError as exc:
        checks.append(
            Check(
                "discovery",
                False,
                str(exc),
                "Set ENTRA_AUTHORITY to the tenant's own authority "
                "(https://login.microsoftonline.com/<tenant id>)."
                if "ENTRA_AUTHORITY" in tenant_settings
                else "Check ENTRA_TENANT_ID: the Directory (tenant) ID on your tenant's Overview.",
            )
        )
        return checks
    try:
        keys = jwks.read_keys(metadata.jwks_uri)
        checks.append(
            Check("signing keys", True, f"{len(keys)} RSA signing key(s) from {metadata.jwks_uri}")
        )
    except FetchError as exc:
        checks.append(
            Check(
                "signing keys",
                False,
                str(exc),
                "Tokens cannot be validated without the keys: check the network path to the "
                "authority (proxy, firewall, ENTRA_CA_BUNDLE).",
            )
        )
    if credential.kind == "secret":
        checks.append(_check_client(config, metadata, http, verify, timeout))
    else:
        checks.append(_check_credential(config, credential, metadata, http))
    client_ok = checks[-1].ok and credential.kind == "secret"  # the version check posts it
    checks.extend(_check_redirect_uri(config, metadata, http, verify, timeout))
    checks.append(_check_token_version(config, metadata, http, verify, timeout, client_ok, given))
    return checks


def _check_certificate(credential: ClientCredential, now: float) -> Check:
    """The client certificate before Entra sees it: its key, its validity, its thumbprints
    (to compare with the app registration's Certificates & secrets)."""
    cert = credential.certificate
    assert cert is not None
    thumbprints = f"SHA-1 {cert.thumbprint_sha1}, SHA-256 {cert.thumbprint_sha256}"
    if not cert.key_matches():
        return Check(
            "certificate",
            False,
            f"the private key in {cert.source} is not the certificate's ({thumbprints}).",
            "Put the certificate's own private key with it (the PFX exported with its key, or "
            "the PEM pair made together): Entra ID refuses assertions signed with another key "
            "(AADSTS700027).",
        )
    moment = datetime.fromtimestamp(now, timezone.utc)
    if cert.not_after <= moment:
        return Check(
            "certificate",
            False,
            f"expired on {cert.not_after:%Y-%m-%d %H:%M} UTC ({thumbprints}).",
            "Make a new certificate, upload it to the app registration (Certificates & "
            "secrets → Certificates) and point ENTRA_CLIENT_CERTIFICATE at it.",
        )
    if cert.not_before > moment:
        return Check(
            "certificate",
            False,
            f"not valid before {cert.not_before:%Y-%m-%d %H:%M} UTC ({thumbprints}).",
            "Check this machine's clock, or wait until the certificate is valid.",
        )
    days = int((cert.not_after - moment).total_seconds() // 86400)
    return Check(
        "certificate",
        True,
        f"valid until {cert.not_after:%Y-%m-%d} ({days} days), its key matches; {thumbprints}: "
        "the app registration's Certificates & secrets must list this thumbprint",
        "Renew it soon: upload the next certificate before this one expires." if days < 30 else "",
        warn=days < 30,
    )


def _check_credential(
    config: EntraConfig,
    credential: ClientCredential,
    metadata: ProviderMetadata,
    http: requests.Session,
) -> Check:
    """A certificate, a federated assertion or a managed identity, proven by asking for an
    app token through MSAL (which signs the assertion): accepted, or Entra's code explained."""
    from .client.app_tokens import AppTokenProvider
    from .client.http import ProviderSession

    token_endpoint = metadata.token_endpoint
    if credential.kind != "managed_identity" and not (
        isinstance(token_endpoint, str) and on_authority_host(token_endpoint, str(config.authority))
    ):
        return Check(
            "client credentials",
            False,
            f"The discovery document's token_endpoint {token_endpoint!r} is not https on the "
            "authority's host, so no client assertion was sent.",
            f"Check that {config.metadata_url} is the identity provider's own document.",
        )
    tokens = AppTokenProvider(
        config,
        session=ProviderSession(timeout=config.http_timeout, ca_bundle=config.ca_bundle),
    )
    try:
        tokens.get_token("https://graph.microsoft.com/.default")
    except EntraAuthError as exc:  # AppTokenError (Entra's code explained), unavailable …
        return Check("client credentials", False, exc.message, exc.remedy)
    return Check(
        "client credentials", True, f"the client id and {credential.describe()} are accepted"
    )


def _places(places: Iterable[str], word: str = "and") -> str:
    items = list(places) or ["the EntraConfig built in code"]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {word} {items[-1]}"


def _tenant_settings(config: EntraConfig, given: Collection[str] | None) -> tuple[str, ...]:
    """Which of ENTRA_AUTHORITY and ENTRA_TENANT_ID name the tenant, as the user set them."""
    named = tuple(n for n in ("ENTRA_AUTHORITY", "ENTRA_TENANT_ID") if n in (given or ()))
    if named:
        return named
    # Built in code: the authority was given unless it is the one the tenant id makes.
    derived = config.tenant_id and config.authority == f"{PUBLIC_CLOUD}/{config.tenant_id}"
    return ("ENTRA_TENANT_ID",) if derived else ("ENTRA_AUTHORITY",)


def _check_ca_bundle(config: EntraConfig) -> Check:
    if not config.ca_bundle:
        return Check(
            "CA bundle",
            True,
            "the system's trusted CAs (ENTRA_CA_BUNDLE is for a private CA such as the local "
            "Entra ID's)",
        )
    try:
        with open(config.ca_bundle, "rb") as handle:
            certificates = x509.load_pem_x509_certificates(handle.read())
    except (OSError, ValueError):
        return Check(
            "CA bundle",
            False,
            f"{config.ca_bundle} holds no PEM certificate.",
            "Point ENTRA_CA_BUNDLE at a PEM file of CA certificates (the local Entra ID's ca.pem).",
        )
    names = ", ".join(c.subject.rfc4514_string() for c in certificates[:2])
    return Check("CA bundle", True, f"{len(certificates)} certificate(s): {names}")


def _check_authority(
    config: EntraConfig,
    http: requests.Session,
    verify: str | bool,
    timeout: float,
    tenant_settings: tuple[str, ...] = ("ENTRA_AUTHORITY",),
) -> tuple[Check, str | None]:
    url = config.metadata_url
    parts = urlsplit(url)
    started = time.monotonic()
    try:
        response = http.get(url, timeout=timeout, verify=verify, allow_redirects=False)
    except requests.exceptions.SSLError:
        return Check(
            "authority",
            False,
            f"{url}: the TLS certificate is not trusted.",
            "Set ENTRA_CA_BUNDLE to the CA that issued it (the local Entra ID prints its ca.pem).",
        ), None
    except requests.RequestException as exc:
        cause = cause_of(exc, timeout)
        fix = _reach_fix(cause, parts, tenant_settings)
        return Check("authority", False, f"{url} could not be reached: {cause}.", fix), None
    elapsed = time.monotonic() - started
    if response.status_code == 429 or response.status_code >= 500:
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        said = f" (Retry-After {wait} s)" if wait is not None else ""
        return Check(
            "authority",
            False,
            f"{url} answered HTTP {response.status_code}{said}: the identity provider is "
            "unavailable or throttling right now.",
            "Wait and run `entra-auth doctor` again; users see a 503 page meanwhile and keep "
            "their sessions.",
        ), None
    if response.status_code == 200 and elapsed > config.http_timeout:
        return Check(
            "authority",
            False,
            f"{url} answered, but slowly: {elapsed:.1f} s, more than ENTRA_HTTP_TIMEOUT "
            f"({config.http_timeout:g} s), so sign-ins would time out.",
            "Check the network path (proxy, firewall), or raise ENTRA_HTTP_TIMEOUT.",
        ), None
    if response.status_code == 200:
        return Check("authority", True, f"{url} answered"), response.headers.get("Date")
    codes = aadsts.codes_in(response.text)
    entry = aadsts.lookup(codes[0]) if codes else None
    if entry is not None and entry.code == 90002:
        fix = _wrong_tenant_fix(config, parts, tenant_settings)
        return Check("authority", False, f"{entry.name}: {entry.meaning}", fix), None
    if entry is not None:
        return Check("authority", False, f"{entry.name}: {entry.meaning}", entry.fix), None
    return Check(
        "authority",
        False,
        f"{url} answered HTTP {response.status_code}.",
        "Check that ENTRA_AUTHORITY is https://<host>/<tenant id or domain>.",
    ), None


def _wrong_tenant_fix(
    config: EntraConfig, parts: SplitResult, tenant_settings: tuple[str, ...]
) -> str:
    """AADSTS90002, in terms of the setting that named the tenant: the authority's path, the
    tenant id, or both."""
    host, tenant = parts.netloc, config.tenant
    local = " (`entra-auth emulator` prints its own)" if parts.hostname in LOOPBACK else ""
    if tenant_settings == ("ENTRA_TENANT_ID",):
        return (
            f"ENTRA_TENANT_ID is {tenant}, a tenant {host} does not know: set ENTRA_TENANT_ID to "
            "the Directory (tenant) ID on your tenant's Overview in the Entra admin center."
        )
    if "ENTRA_TENANT_ID" in tenant_settings:
        return (
            f"ENTRA_AUTHORITY and ENTRA_TENANT_ID name the tenant {tenant}, which {host} does not "
            "know: set ENTRA_TENANT_ID to your Directory (tenant) ID and ENTRA_AUTHORITY to "
            f"https://{host}/<that ID>{local}."
        )
    return (
        f"ENTRA_AUTHORITY names the tenant {tenant!r}, which {host} does not know: set "
        f"ENTRA_AUTHORITY to https://{host}/<your Directory (tenant) ID or a verified "
        f"domain>{local}."
    )


def _reach_fix(
    cause: str, parts: SplitResult, tenant_settings: tuple[str, ...] = ("ENTRA_AUTHORITY",)
) -> str:
    """What to do about an authority that cannot be reached, by cause."""
    host = parts.hostname or ""
    if cause.startswith("connection refused") and host in LOOPBACK:
        # Nothing listens on a loopback authority: the local Entra ID is not running (yet).
        port = parts.port or 443
        start = "entra-auth emulator" + (f" --port {port}" if port != EMULATOR_PORT else "")
        return (
            f"Nothing listens on {parts.netloc}: start the local Entra ID (`{start}`), or set "
            "ENTRA_AUTHORITY to the one it prints."
        )
    if cause.startswith("connection refused"):
        return f"Nothing listens on {parts.netloc}: check ENTRA_AUTHORITY's host and port."
    if cause.startswith("DNS") and "ENTRA_AUTHORITY" not in tenant_settings:
        # The public cloud's host, made from ENTRA_TENANT_ID: nothing in the settings to fix.
        return f"The name {host} does not resolve: check this machine's network and DNS (a proxy?)."
    if cause.startswith("DNS"):
        return (
            f"The name {host} does not resolve: check ENTRA_AUTHORITY's host name, this "
            "machine's network and DNS (a proxy?)."
        )
    if "timed out" in cause or "no answer" in cause:
        return (
            "The authority did not answer in time: check the network path (proxy, firewall), "
            "or raise ENTRA_HTTP_TIMEOUT."
        )
    return "Check ENTRA_AUTHORITY's host, and the network path (proxy, firewall, DNS)."


def _check_clock(date_header: str, now: float) -> Check:
    try:
        theirs = email.utils.parsedate_to_datetime(date_header).timestamp()
    except (TypeError, ValueError):
        return Check("clock", True, "the identity provider sent no usable Date header")
    skew = now - theirs
    if abs(skew) <= CLOCK_SKEW_LIMIT:
        return Check("clock", True, f"within {abs(int(skew))} s of the identity provider's")
    direction = "ahead of" if skew > 0 else "behind"
    return Check(
        "clock",
        False,
        f"this server's clock is {abs(int(skew))} s {direction} the identity provider's.",
        "Synchronise the clock (NTP): tokens will look expired or not yet valid.",
    )


def _check_client(
    config: EntraConfig,
    metadata: ProviderMetadata,
    http: requests.Session,
    verify: str | bool,
    timeout: float,
) -> Check:
    if not config.client_id or not config.client_secret:
        missing = "ENTRA_CLIENT_ID" if not config.client_id else "ENTRA_CLIENT_SECRET"
        return Check(
            "client credentials",
            False,
            f"{missing} is not set.",
            f"Set {missing} (the app registration's client id, and a client secret's value).",
        )
    token_endpoint = metadata.token_endpoint
    if not isinstance(token_endpoint, str):
        return Check(
            "client credentials",
            False,
            "The discovery document has no token_endpoint.",
            "Check ENTRA_AUTHORITY.",
        )
    # The secret goes only where the keys come from: https on the authority's host and port.
    if not on_authority_host(token_endpoint, str(config.authority)):
        host = urlsplit(str(config.authority)).netloc
        return Check(
            "client credentials",
            False,
            f"The discovery document's token_endpoint {token_endpoint!r} is not https on the "
            f"authority's host {host}, so the client secret was not sent.",
            f"Check that {config.metadata_url} is the identity provider's own document, "
            "unchanged by a proxy: its token_endpoint must start with "
            f"https://{host}/.",
        )
    try:
        response = http.post(
            token_endpoint,
            data={
                "grant_type": "client_credentials",
                "client_id": config.client_id,
                "client_secret": config.client_secret,
                "scope": "https://graph.microsoft.com/.default",
            },
            timeout=timeout,
            verify=verify,
            # requests would resend the form, secret included, to wherever a 307/308 points.
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return Check(
            "client credentials",
            False,
            f"The token endpoint could not be reached ({type(exc).__name__}).",
            "Check the network path to the authority.",
        )
    if response.status_code == 200:
        return Check("client credentials", True, "the client id and secret are accepted")
    if response.is_redirect:
        return Check(
            "client credentials",
            False,
            f"The token endpoint {token_endpoint} answered with a redirect (HTTP "
            f"{response.status_code}); it was not followed, so the client secret went no "
            "further.",
            "A token endpoint never redirects: check for a proxy between this machine and the "
            "authority.",
        )
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = aadsts.first_code(body.get("error_codes"), body.get("error_description"))
    entry = aadsts.lookup(code) if code else None
    if entry is not None:
        return Check("client credentials", False, f"{entry.name}: {entry.meaning}", entry.fix)
    return Check(
        "client credentials",
        False,
        f"The token endpoint answered HTTP {response.status_code}.",
        "Run with a valid client id and secret; `entra-auth explain` reads any AADSTS code.",
    )


def _check_redirect_uri(
    config: EntraConfig,
    metadata: ProviderMetadata,
    http: requests.Session,
    verify: str | bool,
    timeout: float,
) -> list[Check]:
    uri = config.callback_url
    parts = urlsplit(uri)
    notes = []
    if parts.hostname == "127.0.0.1":
        notes.append("uses 127.0.0.1: register that exact form (localhost is another URI to Entra)")
    if parts.path.endswith("/") and parts.path != "/":
        notes.append("ends with '/': Entra compares it exactly, slash included")
    if parts.path != config.redirect_path and config.redirect_uri is not None:
        return [
            Check(
                "redirect URI",
                False,
                f"{uri}: its path {parts.path} is not the app's callback route "
                f"{config.redirect_path}.",
                "Make ENTRA_REDIRECT_URI end with ENTRA_REDIRECT_PATH (the route that handles the "
                "callback), and register that URI.",
            )
        ]
    if config.redirect_uri is None:
        notes.insert(0, "the default: set ENTRA_REDIRECT_URI to the one you registered")
    static = Check(
        "redirect URI", True, f"{uri} is well formed" + (f" ({'; '.join(notes)})" if notes else "")
    )
    endpoint = metadata.authorization_endpoint
    if not isinstance(endpoint, str) or not config.client_id:
        return [static]
    # Ask the IdP itself, silently: prompt=none answers with a redirect to a registered URI
    # (login_required or a code), and with its own error page for an unregistered one.
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    challenge_text = challenge.rstrip(b"=").decode()
    query = urlencode(
        {
            "client_id": config.client_id,
            "response_type": "code",
            "redirect_uri": uri,
            "scope": "openid",
            "prompt": "none",
            "state": secrets.token_urlsafe(8),
            "code_challenge": challenge_text,
            "code_challenge_method": "S256",
        }
    )
    try:
        response = http.get(
            f"{endpoint}?{query}", timeout=timeout, verify=verify, allow_redirects=False
        )
    except requests.RequestException as exc:
        return [
            static,
            Check(
                "redirect URI registered",
                False,
                f"The authorize endpoint could not be reached ({type(exc).__name__}).",
                "Check the network path to the authority.",
            ),
        ]
    location = response.headers.get("Location", "")
    if response.is_redirect and location.startswith(uri):
        error = parse_qs(urlsplit(location).query).get("error", [""])[0]
        detail = f"the identity provider redirects to it ({error or 'code'})"
        return [static, Check("redirect URI registered", True, detail)]
    codes = aadsts.codes_in(response.text)
    entry = aadsts.lookup(codes[0]) if codes else None
    if entry is not None:
        return [
            static,
            Check("redirect URI registered", False, f"{entry.name}: {entry.meaning}", entry.fix),
        ]
    return [
        static,
        Check(
            "redirect URI registered",
            True,
            "the identity provider accepted the request (it shows a sign-in page)",
        ),
    ]


TOKEN_VERSION_CHECK = "API token version"  # noqa: S105 - a check's name, not a secret
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_NOT_FOUND = (500011, 50001)  # no such resource in the tenant: another of its names may be known


def _check_token_version(
    config: EntraConfig,
    metadata: ProviderMetadata,
    http: requests.Session,
    verify: str | bool,
    timeout: float,
    can_ask: bool,
    given: Collection[str] | None,
) -> Check:
    """Which access-token version the API gets, against ENTRA_ACCEPTED_TOKEN_VERSIONS.

    The API's registration decides it (``requestedAccessTokenVersion``: null or 1 → v1, the
    portal's default; 2 → v2), not the endpoint a client uses. Asked for real: a client-credentials
    token for ``<API>/.default`` with the configured client (Entra issues one to any app of the
    tenant, without roles unless granted), whose ``ver`` is read; only ``ver`` is kept. When the
    identity provider cannot be asked, the line says where the portal shows it."""
    # The client id first: an app asking a token for itself must name itself by its GUID
    # (AADSTS90009), and a GUID names an API whatever its App ID URIs are.
    audiences = list(config.audiences)
    resources = [a for a in audiences if _GUID.fullmatch(a)]
    resources += [a for a in audiences if a not in resources]
    resources = resources[:3]
    api = resources[0] if resources else "the API"
    what = f"the API {api}" + (
        "" if config.api_audiences else ", this app itself (ENTRA_API_AUDIENCE's default)"
    )
    accepted = " and ".join(f"v{v}" for v in config.accepted_token_versions)
    setting = ",".join(v.split(".")[0] for v in config.accepted_token_versions)
    accepts = f"ENTRA_ACCEPTED_TOKEN_VERSIONS accepts {accepted}"
    if given is not None and "ENTRA_ACCEPTED_TOKEN_VERSIONS" not in given:
        accepts += " only (its default)"
    by_hand = (
        f"Look in the Entra admin center: App registrations → the API ({api}) → Manifest → "
        '"requestedAccessTokenVersion" (under "api"; "accessTokenAcceptedVersion" in the AAD '
        "Graph format): null or 1 means v1 tokens (the portal's default), 2 means v2. "
        f"ENTRA_ACCEPTED_TOKEN_VERSIONS (now {setting}) must include that version."
    )

    def unknown(why: str) -> Check:
        return Check(
            TOKEN_VERSION_CHECK,
            True,
            f"which token version {what} gets is not known: {why}",
            by_hand,
            warn=True,
        )

    token_endpoint = metadata.token_endpoint
    if not resources:
        return unknown("no API audience is configured (ENTRA_API_AUDIENCE).")
    if (
        not can_ask
        or not isinstance(token_endpoint, str)
        or not on_authority_host(token_endpoint, str(config.authority))
    ):
        return unknown("it was not asked, as the client credentials check failed.")
    refusals: list[int | None] = []
    for resource in resources:
        try:
            response = http.post(
                token_endpoint,
                data={
                    "grant_type": "client_credentials",
                    "client_id": config.client_id,
                    "client_secret": config.client_secret,
                    "scope": f"{resource.rstrip('/')}/.default",
                },
                timeout=timeout,
                verify=verify,
                allow_redirects=False,  # the secret goes to the token endpoint, nowhere else
            )
        except requests.RequestException as exc:
            return unknown(f"the token endpoint did not answer ({type(exc).__name__}).")
        if response.status_code == 200:
            return _token_version_verdict(response, what, accepts, config, unknown)
        if response.is_redirect:
            return unknown(
                f"the token endpoint answered with a redirect (HTTP "
                f"{response.status_code}), not followed."
            )
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        refusals.append(aadsts.first_code(body.get("error_codes"), body.get("error_description")))
        if refusals[-1] not in _NOT_FOUND:
            break
    if all(code in _NOT_FOUND for code in refusals):
        named = ", ".join(resources[: len(refusals)])
        return Check(
            TOKEN_VERSION_CHECK,
            False,
            f"No API of this tenant is named {named}: the identity provider answered "
            f"AADSTS{refusals[0]} (resource not found).",
            "Set ENTRA_API_AUDIENCE to your API's Application (client) ID and App ID URI, "
            "comma-separated (App registrations → the API → Overview, and Expose an API).",
        )
    code = refusals[-1]
    entry = aadsts.lookup(code) if code else None
    why = f"{entry.name}: {entry.meaning}" if entry else f"AADSTS{code}" if code else "no code"
    return unknown(f"a token for it was refused to this app ({why}).")


def _token_version_verdict(
    response: requests.Response,
    what: str,
    accepts: str,
    config: EntraConfig,
    unknown: Callable[[str], Check],
) -> Check:
    try:
        body = response.json()
        claims = decode_unverified(str(body["access_token"])).claims
    except (ValueError, KeyError, TypeError, InvalidTokenError):
        return unknown("the token endpoint's answer held no readable access token.")
    version = claims.get("ver")
    if version not in ("1.0", "2.0"):
        return unknown("the access token's ver claim is neither 1.0 nor 2.0.")
    registration = (
        'its registration says "requestedAccessTokenVersion": 2'
        if version == "2.0"
        else "its registration leaves requestedAccessTokenVersion null or 1: the portal's default"
    )
    said = f"{what} gets v{version} access tokens ({registration})"
    if version in config.accepted_token_versions:
        return Check(TOKEN_VERSION_CHECK, True, f"{said}; {accepts}.")
    if version == "1.0":
        fix = (
            "Either make the API get v2 tokens: App registrations → the API → Manifest → "
            '"requestedAccessTokenVersion": 2 (under "api"; "accessTokenAcceptedVersion": 2 in '
            "the AAD Graph format), save, and have clients get new tokens; or accept v1: "
            "ENTRA_ACCEPTED_TOKEN_VERSIONS=1 (1,2 while you move). A v1 token's aud is the App "
            "ID URI the client asked for: keep it in ENTRA_API_AUDIENCE."
        )
    else:
        fix = (
            "Set ENTRA_ACCEPTED_TOKEN_VERSIONS=2 (the default; 1,2 while clients still hold v1 "
            "tokens), or, if the API must keep v1, set its manifest's "
            '"requestedAccessTokenVersion" back to null (App registrations → the API → '
            "Manifest)."
        )
    return Check(
        TOKEN_VERSION_CHECK,
        False,
        f"{said}, but {accepts}: the API would refuse every token.",
        fix,
    )


# -- decode and verify -------------------------------------------------------------------------
@dataclass
class DecodedToken:
    header: dict[str, Any]
    claims: dict[str, Any]
    signature_length: int
    kind: str = field(default="")

    def as_dict(self) -> dict[str, Any]:
        return {
            "header": self.header,
            "claims": self.claims,
            "kind": self.kind,
            "signature": f"<{self.signature_length} characters, elided>",
        }


_HEADER_NAME = re.compile(r"authorization[ \t]*:[ \t]*", re.IGNORECASE)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*")  # RFC 9110 token
_WHITESPACE = re.compile(r"\s+")
_OTHER_SCHEMES = ("basic", "digest", "negotiate", "ntlm", "pop", "dpop")


def token_from_paste(text: str) -> str:
    """The token in what a developer pastes: the token itself, ``Bearer <token>``, or a whole
    ``Authorization: Bearer <token>`` header line (header name and scheme in any case, any
    whitespace around them). Another scheme, or more than one word after it, is refused,
    naming the scheme at most (a ``Basic`` credential is a password: never echoed)."""
    pasted = text.strip()
    if len(pasted) > 1 and pasted[0] == pasted[-1] and pasted[0] in "'\"":
        pasted = pasted[1:-1].strip()  # copied with the shell's quotes (curl -H "...")
    had_header = _HEADER_NAME.match(pasted) is not None
    rest = _HEADER_NAME.sub("", pasted, count=1) if had_header else pasted
    if not rest:
        raise InvalidTokenError(
            "There is no token here.",
            reason="malformed",
            remedy="Paste the token, `Bearer <token>`, or the whole `Authorization: Bearer "
            "<token>` line.",
        )
    words = _WHITESPACE.split(rest, maxsplit=1)
    if len(words) == 2:
        scheme, credential = words
        if scheme.lower() != "bearer":
            # A scheme is named only when it is one (after "Authorization:", or a known one),
            # and only in its own harmless characters; "hello world" is just two words.
            known = had_header or scheme.lower() in _OTHER_SCHEMES
            said = scheme if known and _SCHEME.fullmatch(scheme) and len(scheme) <= 20 else ""
            raise InvalidTokenError(
                f"This is an Authorization value of the {said} scheme, not Bearer."
                if said
                else "This is more than one word, not a token.",
                reason="malformed",
                remedy="Paste the token, `Bearer <token>`, or the whole `Authorization: Bearer "
                "<token>` line.",
            )
        if _WHITESPACE.search(credential.strip()):
            raise InvalidTokenError(
                "There is more than one word after Bearer.",
                reason="malformed",
                remedy="Paste one token after Bearer, nothing else on the line.",
            )
        return credential.strip()
    if len(words) == 1 and words[0].lower() == "bearer":
        raise InvalidTokenError(
            "There is no token after Bearer.",
            reason="malformed",
            remedy="Paste the whole header value: Bearer <token>.",
        )
    return rest


def _lenient_b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def decode_unverified(token: str) -> DecodedToken:
    """Header and claims for reading; says nothing about whether they are true."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise InvalidTokenError(
            f"This is not a signed JWT: it has {len(parts)} part(s), not 3.",
            reason="malformed",
            remedy="Paste the whole access or ID token (three base64url parts joined by dots).",
        )
    try:
        header = json.loads(_lenient_b64(parts[0]))
        claims = json.loads(_lenient_b64(parts[1]))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise InvalidTokenError(
            "The token's header or payload is not base64url JSON.",
            reason="malformed",
            remedy="Paste the token exactly as issued.",
        ) from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidTokenError(
            "The token's header or payload is not a JSON object.", reason="malformed"
        )
    return DecodedToken(header, claims, len(parts[2]), token_kind(claims))


def token_kind(claims: dict[str, Any]) -> str:
    from .tokens import GRAPH_AUDIENCES  # the validator's own list: kind and verdict agree

    aud = claims.get("aud")
    if isinstance(aud, str) and aud in GRAPH_AUDIENCES:
        return "access token for Microsoft Graph"
    if "scp" in claims or ("roles" in claims and "nonce" not in claims):
        app_only = "scp" not in claims
        # Only the versions Entra issues: the kind line must never carry the token's own words.
        version = claims.get("ver") if claims.get("ver") in ("1.0", "2.0") else "?"
        return f"v{version} access token ({'app-only' if app_only else 'delegated'})"
    if "nonce" in claims or claims.get("ver") == "2.0":
        return "ID token"
    return "token"


def describe_time(value: object, now: float) -> str:
    """A NumericDate as a UTC date and how far off it is; anything else says it is no date."""
    if type(value) is not int or not 0 <= value <= MAX_NUMERIC_DATE:
        # Floats (1e400 is inf), strings, bools and integers outside 1970..9999 would overflow
        # datetime or mean nothing; the validator refuses them all the same.
        shown = repr(value)
        if len(shown) > 24:  # a 300-digit exp is not worth a screenful
            shown = f"{shown[:20]}… ({len(shown)} characters)"
        return f"not a valid date: {shown}"
    moment = datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    delta = int(value - now)
    minutes = abs(delta) // 60
    span = f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"
    if abs(delta) < 60:
        span = f"{abs(delta)} s"
    return f"{moment} ({'in ' + span if delta >= 0 else span + ' ago'})"


@dataclass
class Verification:
    ok: bool
    reason: str
    message: str
    remedy: str = ""
    principal: Principal | None = None

    def as_dict(self) -> dict[str, Any]:
        data = {
            "ok": self.ok,
            "reason": self.reason,
            "message": self.message,
            "remedy": self.remedy,
        }
        if self.principal is not None:
            data["principal"] = {
                "oid": self.principal.oid,
                "tid": self.principal.tid,
                "scopes": sorted(self.principal.scopes),
                "roles": sorted(self.principal.roles),
            }
        return data


def verify(
    token: str,
    config: EntraConfig,
    *,
    id_token: bool = False,
    scopes: Iterable[str] = (),
    roles: Iterable[str] = (),
    nonce: str | None = None,
) -> Verification:
    """Every check, stopping at the first that refuses; says which and what to do."""
    try:
        if id_token:
            principal = IdTokenValidator(config).validate(token, nonce=nonce)
        else:
            validator = AccessTokenValidator(config, cache_size=0)
            principal = validator.validate(token, scopes=scopes, roles=roles)
    except InvalidTokenError as exc:
        return Verification(False, exc.reason, exc.message, exc.remedy)
    except InsufficientScopeError as exc:
        return Verification(False, "missing_scope", exc.message, exc.remedy)
    except EntraAuthError as exc:
        return Verification(False, exc.code, exc.message, exc.remedy)
    kind = "ID token" if id_token else "access token"
    return Verification(
        True, "valid", f"The {kind} is valid for this configuration.", principal=principal
    )
