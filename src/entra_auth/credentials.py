"""What an app proves itself with to Entra ID: one credential setting for every confidential
client (web sign-in, an API calling on, a daemon), turned into what MSAL takes.

- a client secret (``ENTRA_CLIENT_SECRET``);
- a certificate: a PEM (certificate and private key) or PFX/PKCS#12 file
  (``ENTRA_CLIENT_CERTIFICATE``), or that file's bytes in base64
  (``ENTRA_CLIENT_CERTIFICATE_BASE64``, as Key Vault hands a certificate out), with
  ``ENTRA_CLIENT_CERTIFICATE_PASSWORD``. MSAL signs the client assertion: by default with the
  SHA-256 thumbprint (``x5t#S256``, PS256) and the certificate chain in ``x5c`` (what
  subject-name/issuer authentication needs); ``ENTRA_CLIENT_CERTIFICATE_THUMBPRINT=sha1`` for
  the SHA-1 thumbprint (``x5t``, RS256);
- a client assertion (workload identity federation): a file a federated identity provider
  writes its token to (``ENTRA_CLIENT_ASSERTION_FILE``; Kubernetes rotates it), re-read for
  every token request, or a callable (``EntraConfig(client_assertion=...)``);
- a managed identity (``ENTRA_MANAGED_IDENTITY``: ``system``, or a user-assigned identity's
  client id or Azure resource id): no secret at all, for app tokens only (MSAL's
  ``ManagedIdentityClient``).

Exactly one may be set: two is a configuration error, never a silent choice. What is written by
hand here is the reading of certificate files (cryptography parses them; MSAL takes a PFX only
by path and a PEM only with its thumbprint), so that a base64 PFX works, the thumbprint
algorithm is chosen, and ``entra-auth doctor`` can check the certificate before Entra does.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msal
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from .config import EntraConfig
from .errors import ConfigurationError

CredentialKind = Literal["secret", "certificate", "assertion", "managed_identity"]
_PEM_BLOCK = re.compile(rb"-----BEGIN [A-Z ]+-----")
_RESOURCE_ID = re.compile(r"/subscriptions/[^/]+/resourcegroups/[^/]+/providers/.+", re.I)


@dataclass(frozen=True)
class Certificate:
    """A client certificate and its private key, read from the credential setting."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # the certificate first, then any intermediates
    private_key_pem: str = field(repr=False)
    source: str  # where it came from, for messages (a path, or the variable's name)

    @property
    def thumbprint_sha1(self) -> str:
        """Hex, upper case: as the Entra admin center shows it."""
        return self.certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303

    @property
    def thumbprint_sha256(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex().upper()

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    @property
    def not_before(self) -> dt.datetime:
        return self.certificate.not_valid_before_utc

    @property
    def chain_pem(self) -> str:
        return "".join(
            c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in self.chain
        )

    def key_matches(self) -> bool:
        """Whether the private key is the certificate's (a mismatch signs what Entra refuses)."""
        key = serialization.load_pem_private_key(self.private_key_pem.encode(), password=None)
        mine = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        theirs = self.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return mine == theirs


@dataclass(frozen=True)
class ClientCredential:
    """The app's one credential. ``msal_credential()`` is MSAL's ``client_credential``;
    ``managed_identity()`` MSAL's managed identity, for that kind."""

    kind: CredentialKind
    secret: str | None = field(default=None, repr=False)
    certificate: Certificate | None = None
    thumbprint: Literal["sha256", "sha1"] = "sha256"
    assertion: Callable[[], str] | None = field(default=None, repr=False)
    identity: str | None = None  # "system", a client id or a resource id

    def msal_credential(self) -> str | dict[str, Any]:
        """What ``msal.ConfidentialClientApplication(client_credential=...)`` takes."""
        if self.kind == "secret":
            assert self.secret is not None
            return self.secret
        if self.kind == "certificate":
            assert self.certificate is not None
            if self.thumbprint == "sha1":
                return {
                    "private_key": self.certificate.private_key_pem,
                    "thumbprint": self.certificate.thumbprint_sha1,
                }
            # With the certificate (chain), MSAL works out the SHA-256 thumbprint, signs with
            # PS256 and sends the chain as x5c.
            return {
                "private_key": self.certificate.private_key_pem,
                "public_certificate": self.certificate.chain_pem,
            }
        if self.kind == "assertion":
            assert self.assertion is not None
            return {"client_assertion": self.assertion}
        raise ConfigurationError(
            "A managed identity gets app tokens only: it cannot sign users in or act for them.",
            remedy="Give the app a client secret, certificate or federated credential "
            "(ENTRA_CLIENT_SECRET, ENTRA_CLIENT_CERTIFICATE, ENTRA_CLIENT_ASSERTION_FILE) for "
            "that; keep ENTRA_MANAGED_IDENTITY for app tokens.",
        )

    def managed_identity(self) -> dict[str, Any]:
        """MSAL's managed identity: system-assigned, or user-assigned by client or resource id."""
        if self.identity is None or self.identity.lower() == "system":
            return msal.SystemAssignedManagedIdentity()  # type: ignore[no-any-return]
        if _RESOURCE_ID.fullmatch(self.identity):
            return msal.UserAssignedManagedIdentity(resource_id=self.identity)  # type: ignore[no-any-return]
        return msal.UserAssignedManagedIdentity(client_id=self.identity)  # type: ignore[no-any-return]

    def describe(self) -> str:
        """In words, without anything secret (for logs and ``doctor``)."""
        if self.kind == "certificate":
            assert self.certificate is not None
            return f"certificate {self.certificate.thumbprint_sha1} from {self.certificate.source}"
        if self.kind == "managed_identity":
            return f"managed identity ({self.identity or 'system'})"
        return {"secret": "client secret", "assertion": "client assertion"}[self.kind]


def client_credential(config: EntraConfig) -> ClientCredential:
    """The credential the settings give; ``ConfigurationError`` for none, two, or one that
    cannot be read (the file missing, not a certificate, the wrong password)."""
    given = [
        name
        for name, value in (
            ("ENTRA_CLIENT_SECRET", config.client_secret),
            ("ENTRA_CLIENT_CERTIFICATE", config.client_certificate),
            ("ENTRA_CLIENT_CERTIFICATE_BASE64", config.client_certificate_base64),
            ("ENTRA_CLIENT_ASSERTION_FILE", config.client_assertion_file),
            ("client_assertion", config.client_assertion),
            ("ENTRA_MANAGED_IDENTITY", config.managed_identity),
        )
        if value
    ]
    if len(given) > 1:
        raise ConfigurationError(
            f"Several credentials are set: {', '.join(given)}.",
            remedy="Set exactly one: the app proves itself with one credential, and a silent "
            "choice between two would hide the one that is wrong.",
        )
    if not given:
        config.require("credential")  # raises the "not set" error, naming every choice
    thumbprint: Literal["sha256", "sha1"] = (
        "sha1" if config.client_certificate_thumbprint == "sha1" else "sha256"
    )
    if config.client_secret:
        return ClientCredential("secret", secret=config.client_secret)
    if config.client_certificate:
        path = Path(config.client_certificate)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"ENTRA_CLIENT_CERTIFICATE is {str(path)!r}, which cannot be read "
                f"({exc.strerror or type(exc).__name__}).",
                remedy="Point it at the PEM or PFX file holding the certificate and its private "
                "key, readable by this process.",
            ) from None
        cert = load_certificate(data, config.client_certificate_password, source=str(path))
        return ClientCredential("certificate", certificate=cert, thumbprint=thumbprint)
    if config.client_certificate_base64:
        try:
            data = base64.b64decode(config.client_certificate_base64, validate=False)
        except (binascii.Error, ValueError):
            raise ConfigurationError(
                "ENTRA_CLIENT_CERTIFICATE_BASE64 is not base64.",
                remedy="Set it to the PFX (or PEM) file's bytes in base64 (base64 -w0 app.pfx).",
            ) from None
        cert = load_certificate(
            data, config.client_certificate_password, source="ENTRA_CLIENT_CERTIFICATE_BASE64"
        )
        return ClientCredential("certificate", certificate=cert, thumbprint=thumbprint)
    if config.client_assertion_file:
        return ClientCredential("assertion", assertion=assertion_file(config.client_assertion_file))
    if config.client_assertion:
        return ClientCredential("assertion", assertion=config.client_assertion)
    identity = str(config.managed_identity)
    if identity.lower() != "system" and not _RESOURCE_ID.fullmatch(identity):
        try:
            uuid.UUID(identity)
        except ValueError:
            raise ConfigurationError(
                f"ENTRA_MANAGED_IDENTITY is {identity!r}.",
                remedy="Use 'system' for the system-assigned identity, or a user-assigned "
                "identity's client id (a GUID) or Azure resource id (/subscriptions/…).",
            ) from None
    return ClientCredential("managed_identity", identity=identity)


def assertion_file(path: str) -> Callable[[], str]:
    """A callable MSAL asks for a client assertion at each token request: the file's content
    then, so a token the platform rotates (Kubernetes projects a new one hourly) is picked up
    without a restart."""
    where = Path(path)

    def read() -> str:
        try:
            token = where.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"ENTRA_CLIENT_ASSERTION_FILE is {path!r}, which cannot be read "
                f"({getattr(exc, 'strerror', None) or type(exc).__name__}).",
                remedy="Point it at the file the federated identity provider writes its token "
                "to (AZURE_FEDERATED_TOKEN_FILE on AKS), readable by this process.",
            ) from None
        if token.count(".") != 2:
            raise ConfigurationError(
                f"ENTRA_CLIENT_ASSERTION_FILE ({path!r}) holds no JWT.",
                remedy="The file must hold the federated identity provider's token, as it "
                "writes it (one compact JWT).",
            )
        return token

    return read


def load_certificate(data: bytes, password: str | None, *, source: str) -> Certificate:
    """A certificate and its private key from PEM or PKCS#12 bytes."""
    secret = password.encode() if password else None
    if _PEM_BLOCK.search(data):
        return _from_pem(data, secret, source)
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, secret)
    except ValueError:
        raise ConfigurationError(
            f"The certificate in {source} is neither PEM nor a PFX this password opens.",
            remedy="Use the PFX and its password (ENTRA_CLIENT_CERTIFICATE_PASSWORD), or a PEM "
            "file with the certificate and its private key.",
        ) from None
    if key is None or cert is None:
        raise ConfigurationError(
            f"The PFX in {source} lacks {'its private key' if key is None else 'a certificate'}.",
            remedy="Export the certificate with its private key (PFX/PKCS#12).",
        )
    return Certificate(cert, (cert, *extra), _key_pem(key, source), source)


def _from_pem(data: bytes, secret: bytes | None, source: str) -> Certificate:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise ConfigurationError(
            f"{source} holds no certificate.",
            remedy="Put the certificate (-----BEGIN CERTIFICATE-----) and its private key in "
            "one PEM file, or use the PFX.",
        )
    try:
        key = serialization.load_pem_private_key(data, password=secret)
    except TypeError:
        raise ConfigurationError(
            f"The private key in {source} is encrypted and no password is set.",
            remedy="Set ENTRA_CLIENT_CERTIFICATE_PASSWORD.",
        ) from None
    except ValueError:
        raise ConfigurationError(
            f"{source} holds no private key this password opens.",
            remedy="Put the certificate's private key (-----BEGIN PRIVATE KEY-----) in the same "
            "PEM file, and check ENTRA_CLIENT_CERTIFICATE_PASSWORD.",
        ) from None
    return Certificate(certs[0], tuple(certs), _key_pem(key, source), source)


def _key_pem(key: Any, source: str) -> str:
    if not isinstance(key, rsa.RSAPrivateKey):  # MSAL signs with RS256 or PS256
        raise ConfigurationError(
            f"The private key in {source} is a {type(key).__name__}.",
            remedy="Entra ID takes RSA certificates for client assertions: make an RSA key "
            "(2048 bits or more).",
        )
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


__all__ = ["Certificate", "ClientCredential", "assertion_file", "client_credential"]
