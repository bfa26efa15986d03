"""An app registration's credentials other than secrets, as Entra keeps them.

- Certificates (Entra's ``keyCredentials`` of type ``AsymmetricX509Cert``): the public part of
  the key an app signs its client assertions with (``private_key_jwt``). Validity comes from the
  certificate itself, as Entra reads it at upload; only RSA keys (assertions are RS256 or PS256).
- Federated identity credentials (workload identity federation): trust in tokens of another
  issuer, matched by ``issuer``, ``subject`` and ``audiences``, with Entra's registration rules
  (Microsoft Learn, "Important considerations and restrictions for federated identity
  credentials": at most 20, a name of 3 to 120 URL-friendly characters, one audience, issuer and
  subject pair unique, 600 characters each). An issuer written ``/_issuers/<name>`` is one of the
  emulator's own stand-in issuers, at ``https://<emulator>/_issuers/<name>``.
- Trusted certificate subjects (subject name and issuer authentication, manifest
  ``trustedCertificateSubjects``): a certificate sent in the assertion's ``x5c`` with this
  subject and issued by this CA is accepted without being uploaded.

The ``*Entry`` Structs are the seed file's shape (``[[apps.certificates]]``,
``[[apps.federated_credentials]]``, ``[[apps.trusted_certificate_subjects]]``); the dataclasses
are the directory's. ``client_assertions`` verifies the assertions made with them.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import EmulatorError

if TYPE_CHECKING:
    from .seed import App, Seed

# The audience Entra recommends (and its portal sets) for federated identity credentials.
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # noqa: S105 - an audience, not a secret
# Where the emulator hosts its stand-in issuers: https://<emulator>/_issuers/<name>.
ISSUERS_PATH = "/_issuers/"
ISSUER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
DEFAULT_ISSUER = "local"
# Entra's limits (federated-credential-configuration-considerations).
MAX_FEDERATED_CREDENTIALS = 20
_FIELD_LIMIT = 600
_FIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,119}")
_REMEDY = "Fix the seed file; default_seed.toml in the package shows the shape."


@dataclass(frozen=True)
class ClientCertificate:
    """A certificate registered for an app: its public key verifies the app's assertions."""

    key_id: str  # Entra's keyId (a GUID)
    certificate: x509.Certificate
    display_name: str = ""

    @property
    def sha1(self) -> bytes:
        return self.certificate.fingerprint(hashes.SHA1())  # noqa: S303 - x5t is SHA-1

    @property
    def sha256(self) -> bytes:
        return self.certificate.fingerprint(hashes.SHA256())

    @property
    def thumbprint(self) -> str:
        """The SHA-1 thumbprint in hex, as the portal shows it (MSAL's ``thumbprint``)."""
        return self.sha1.hex().upper()

    @property
    def thumbprint_sha256(self) -> str:
        return self.sha256.hex().upper()

    @property
    def start(self) -> dt.datetime:
        return self.certificate.not_valid_before_utc

    @property
    def end(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    def public_key(self) -> rsa.RSAPublicKey:
        key = self.certificate.public_key()
        assert isinstance(key, rsa.RSAPublicKey)  # from_pem refuses any other kind
        return key

    @classmethod
    def from_pem(
        cls, pem: str | bytes, *, key_id: str | None = None, display_name: str = ""
    ) -> ClientCertificate:
        """The certificate in ``pem``; a ``ValueError`` saying why it cannot be registered."""
        data = pem.encode() if isinstance(pem, str) else pem
        if b"PRIVATE KEY" in data:
            raise ValueError(
                "holds a private key: register the certificate alone (its public part)"
            )
        try:
            cert = x509.load_pem_x509_certificate(data)
        except ValueError:
            raise ValueError(
                "is not a certificate in PEM (-----BEGIN CERTIFICATE----- ...)"
            ) from None
        if not isinstance(cert.public_key(), rsa.RSAPublicKey):
            raise ValueError(
                "has no RSA key: client assertions are signed RS256 or PS256, with an RSA key"
            )
        fingerprint = cert.fingerprint(hashes.SHA256()).hex()
        return cls(
            key_id=key_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"cert:{fingerprint}")),
            certificate=cert,
            display_name=display_name or cert.subject.rfc4514_string(),
        )


@dataclass(frozen=True)
class FederatedCredential:
    """Trust in another issuer's tokens (a federated identity credential)."""

    name: str
    issuer: str  # an absolute URL, or /_issuers/<name> for one of the emulator's own
    subject: str
    audiences: tuple[str, ...] = (TOKEN_EXCHANGE_AUDIENCE,)
    description: str = ""

    def issuer_url(self, https_base: str) -> str:
        """The issuer a token must name: the stand-in issuer's URL for ``/_issuers/<name>``."""
        return f"{https_base}{self.issuer}" if self.issuer.startswith("/") else self.issuer


@dataclass(frozen=True)
class TrustedSubject:
    """Subject name and issuer authentication: certificates with this subject, issued by this
    CA, are accepted from the assertion's ``x5c`` without being uploaded."""

    subject_name: str  # RFC 4514, such as "CN=daemon.contoso.example"
    authority: x509.Certificate


# -- the seed file's shape -----------------------------------------------------------------------
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class _Entry(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A table of the seed file: a key it does not know is an error (a typo, most often)."""


class CertificateEntry(_Entry):
    pem: NonEmpty  # the certificate, -----BEGIN CERTIFICATE----- ...
    id: uuid.UUID | None = None  # Entra's keyId; from the certificate's thumbprint when absent
    display_name: str = ""  # the certificate's subject when absent


class FederatedCredentialEntry(_Entry):
    name: NonEmpty
    issuer: NonEmpty  # an absolute https URL, or /_issuers/<name> (the emulator's stand-in)
    subject: NonEmpty
    audiences: tuple[str, ...] = (TOKEN_EXCHANGE_AUDIENCE,)
    description: str = ""


class TrustedSubjectEntry(_Entry):
    subject_name: NonEmpty  # RFC 4514, such as "CN=daemon.contoso.example"
    authority_pem: NonEmpty  # the issuing CA's certificate


def certificates_from(
    entries: tuple[CertificateEntry, ...], path: str, origin: str
) -> tuple[ClientCertificate, ...]:
    found: list[ClientCertificate] = []
    for i, entry in enumerate(entries):
        try:
            cert = ClientCertificate.from_pem(
                entry.pem,
                key_id=str(entry.id) if entry.id else None,
                display_name=entry.display_name,
            )
        except ValueError as exc:
            raise EmulatorError(
                f"Seed {origin}: {path}[{i}].pem: {exc}.",
                remedy="Paste the certificate's PEM (a multi-line TOML string). " + _REMEDY,
            ) from None
        if any(c.sha256 == cert.sha256 for c in found):
            raise EmulatorError(
                f"Seed {origin}: {path}[{i}].pem: the same certificate is registered twice.",
                remedy=_REMEDY,
            )
        found.append(cert)
    return tuple(found)


def federated_credentials_from(
    entries: tuple[FederatedCredentialEntry, ...], path: str, origin: str
) -> tuple[FederatedCredential, ...]:
    found: list[FederatedCredential] = []
    for i, entry in enumerate(entries):
        credential = FederatedCredential(
            name=entry.name,
            issuer=entry.issuer,
            subject=entry.subject,
            audiences=entry.audiences,
            description=entry.description,
        )
        problem = federated_credential_problem(credential, found)
        if problem:
            raise EmulatorError(f"Seed {origin}: {path}[{i}]: {problem}.", remedy=_REMEDY)
        found.append(credential)
    return tuple(found)


def trusted_subjects_from(
    entries: tuple[TrustedSubjectEntry, ...], path: str, origin: str
) -> tuple[TrustedSubject, ...]:
    found: list[TrustedSubject] = []
    for i, entry in enumerate(entries):
        try:
            name = x509.Name.from_rfc4514_string(entry.subject_name)
        except ValueError:
            raise EmulatorError(
                f"Seed {origin}: {path}[{i}].subject_name: not a distinguished name such as "
                f"CN=daemon.contoso.example (got {entry.subject_name!r}).",
                remedy=_REMEDY,
            ) from None
        try:
            authority = x509.load_pem_x509_certificate(entry.authority_pem.encode())
        except ValueError:
            raise EmulatorError(
                f"Seed {origin}: {path}[{i}].authority_pem: not a certificate in PEM.",
                remedy="Paste the issuing CA's certificate. " + _REMEDY,
            ) from None
        found.append(TrustedSubject(name.rfc4514_string(), authority))
    return tuple(found)


def federated_credential_problem(
    credential: FederatedCredential, others: list[FederatedCredential] | tuple[()] = ()
) -> str | None:
    """What Entra would refuse in ``credential`` (next to the app's ``others``); None if fine."""
    if len(others) >= MAX_FEDERATED_CREDENTIALS:
        return f"an app has at most {MAX_FEDERATED_CREDENTIALS} federated identity credentials"
    if not _FIC_NAME.fullmatch(credential.name):
        return (
            f"name {credential.name!r}: 3 to 120 letters, digits, '-' or '_', the first a "
            "letter or digit"
        )
    if any(o.name == credential.name for o in others):
        return f"name {credential.name!r} is taken by another federated identity credential"
    issuer = credential.issuer
    if issuer != issuer.strip() or len(issuer) > _FIELD_LIMIT:
        return f"issuer {issuer!r}: no leading or trailing space, at most {_FIELD_LIMIT} characters"
    if issuer.startswith("/"):
        if not (
            issuer.startswith(ISSUERS_PATH) and ISSUER_NAME.fullmatch(issuer[len(ISSUERS_PATH) :])
        ):
            return f"issuer {issuer!r}: a stand-in issuer is /_issuers/<name> (letters, digits)"
    elif urlsplit(issuer).scheme != "https" or not urlsplit(issuer).netloc:
        return f"issuer {issuer!r}: an absolute https URL, or /_issuers/<name>"
    if not credential.subject.strip() or len(credential.subject) > _FIELD_LIMIT:
        return f"subject: not empty, at most {_FIELD_LIMIT} characters"
    if len(credential.audiences) != 1:
        # Entra: "Federated identity credentials must have exactly one audience."
        return "audiences: exactly one audience (Entra's rule), such as api://AzureADTokenExchange"
    if not credential.audiences[0] or len(credential.audiences[0]) > _FIELD_LIMIT:
        return f"audiences: not empty, at most {_FIELD_LIMIT} characters"
    if any(o.issuer == issuer and o.subject == credential.subject for o in others):
        return "another federated identity credential has this issuer and subject"
    return None


# -- registering one more while the emulator runs ------------------------------------------------
def app_of(seed: Seed, client_id: str) -> App:
    """The seed's app of ``client_id``; ``EmulatorError`` (unknown_app) when it has none."""
    app = seed.app(client_id)
    if app is None:
        raise EmulatorError(
            f"The local Entra ID has no app with client id {client_id!r}.",
            remedy="Name an app of the seed by its client id.",
            code="unknown_app",
        )
    return app


def with_app(seed: Seed, app: App, changed: App) -> Seed:
    """``seed`` with ``app`` replaced by ``changed``."""
    return replace(seed, apps=tuple(changed if a is app else a for a in seed.apps))


def with_certificate(seed: Seed, client_id: str, certificate: ClientCertificate) -> Seed:
    """``seed`` with ``certificate`` registered for the app (the same seed if it already is)."""
    app = app_of(seed, client_id)
    if any(c.sha256 == certificate.sha256 for c in app.certificates):
        return seed
    changed = replace(app, certificates=(*app.certificates, certificate))
    return with_app(seed, app, changed)


def with_federated_credential(seed: Seed, client_id: str, credential: FederatedCredential) -> Seed:
    """``seed`` with one more federated identity credential for the app, checked as Entra."""
    app = app_of(seed, client_id)
    problem = federated_credential_problem(credential, list(app.federated_credentials))
    if problem:
        raise EmulatorError(
            f"Cannot add the federated identity credential: {problem}.",
            remedy="Give a name, an https issuer (or /_issuers/<name>), a subject and one "
            "audience, unique on the app.",
            code="invalid_federated_credential",
        )
    changed = replace(app, federated_credentials=(*app.federated_credentials, credential))
    return with_app(seed, app, changed)


def certificate_or_error(
    pem: object, *, key_id: object = None, display_name: object = None
) -> ClientCertificate:
    """``ClientCertificate.from_pem`` for the control API: an ``EmulatorError`` saying why.

    ``key_id`` (Entra's keyId) is a GUID; from the certificate's thumbprint when not given."""
    if not isinstance(pem, (str, bytes)) or not pem:
        raise EmulatorError(
            "A certificate must be given as PEM text.",
            remedy="Send the certificate's PEM (-----BEGIN CERTIFICATE----- ...).",
            code="invalid_certificate",
        )
    try:
        guid = str(uuid.UUID(str(key_id))) if key_id is not None else None
    except ValueError:
        raise EmulatorError(
            f"The certificate's key id {str(key_id)[:64]!r} is not a GUID.",
            remedy="Give a GUID as its id, or none.",
            code="invalid_certificate",
        ) from None
    try:
        return ClientCertificate.from_pem(
            pem, key_id=guid, display_name=display_name if isinstance(display_name, str) else ""
        )
    except ValueError as exc:
        raise EmulatorError(
            f"The certificate {exc}.",
            remedy="Register a certificate with an RSA key, in PEM, without its private key.",
            code="invalid_certificate",
        ) from None
