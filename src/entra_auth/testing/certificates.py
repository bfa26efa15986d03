"""Certificates for tests of client assertions (``private_key_jwt``), made with ``cryptography``.

A self-signed client certificate and its key, to register with the local Entra ID and sign
MSAL's assertions with::

    cert_pem, key_pem = make_client_certificate("CN=my daemon")
    entra_emulator.add_certificate(DAEMON_ID, cert_pem)
    app = msal.ConfidentialClientApplication(
        DAEMON_ID,
        client_credential={"private_key": key_pem, "public_certificate": cert_pem},  # PS256
        # or {"private_key": key_pem, "thumbprint": thumbprint(cert_pem)}: RS256 with x5t
        authority=entra_emulator.authority,
        http_client=entra_emulator.http_session(),
    )

``make_certificate_authority`` and ``issuer=`` make a chain, for subject name and issuer
authentication. Every key here is a test's: never use one for anything real.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["make_certificate_authority", "make_client_certificate", "thumbprint"]


def make_client_certificate(
    subject: str = "CN=entra-auth test client",
    *,
    days: float = 365,
    not_before: dt.datetime | None = None,
    issuer: tuple[str, str] | None = None,
) -> tuple[str, str]:
    """A client certificate and its RSA-2048 private key, both PEM: ``(cert_pem, key_pem)``.

    ``subject`` is an RFC 4514 name (``CN=…,O=…``). Valid from ``not_before`` (default: a minute
    ago) for ``days``: a ``not_before`` far enough back makes an expired one. Self-signed,
    or issued by ``issuer``, a ``(cert_pem, key_pem)`` from ``make_certificate_authority``.
    """
    return _make(subject, days=days, not_before=not_before, issuer=issuer, ca=False)


def make_certificate_authority(
    subject: str = "CN=entra-auth test CA", *, days: float = 365
) -> tuple[str, str]:
    """A CA certificate and its key (PEM), to issue client certificates with ``issuer=``."""
    return _make(subject, days=days, not_before=None, issuer=None, ca=True)


def thumbprint(cert_pem: str | bytes, algorithm: Literal["sha1", "sha256"] = "sha1") -> str:
    """The certificate's thumbprint in upper-case hex: SHA-1 by default (the portal's
    "Thumbprint", MSAL's ``thumbprint``), or SHA-256."""
    data = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
    cert = x509.load_pem_x509_certificate(data)
    digest = hashes.SHA1() if algorithm == "sha1" else hashes.SHA256()  # noqa: S303 - x5t
    return cert.fingerprint(digest).hex().upper()


def _make(
    subject: str,
    *,
    days: float,
    not_before: dt.datetime | None,
    issuer: tuple[str, str] | None,
    ca: bool,
) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name.from_rfc4514_string(subject)
    start = not_before or dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    if issuer is None:
        issuer_name, signer = name, key
    else:
        issuer_cert = x509.load_pem_x509_certificate(issuer[0].encode())
        loaded = serialization.load_pem_private_key(issuer[1].encode(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError("the issuer's key is not an RSA key")
        issuer_name, signer = issuer_cert.subject, loaded
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()
