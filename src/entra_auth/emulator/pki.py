"""Keys and certificates of the local Entra ID.

- A private CA and an HTTPS server certificate for localhost, made on first run and kept in the
  state dir, so that unpatched clients (MSAL refuses non-https authorities) can trust the
  emulator with ``verify=<ca.pem>``. The CA carries critical name constraints (localhost,
  loopback addresses, and the configured public host): trusting ca.pem, or stealing its key,
  cannot help anyone impersonate another site.
- The state dir is its owner's alone (0700), its private keys and the admin key 0600: with the
  signing key anyone could mint tokens, with the CA key serve TLS for the names above.
- RSA-2048 token-signing keys, each with a self-signed certificate, published in the JWKS the
  way Entra does (``kid`` = ``x5t`` = base64url SHA-1 thumbprint, ``x5c``): the tenant's, and
  one per app registered with ``app_specific_signing_key`` (Entra's app-specific key for apps
  with claims mapping), each kept in the state dir (0600) across restarts.

Certificates are built with ``cryptography``; nothing here is hand-rolled cryptography.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import EmulatorError

CA_FILE = "ca.pem"
ADMIN_KEY_FILE = "admin-key"
_CA_KEY_FILE = "ca-key.pem"
_SERVER_FILE = "server.pem"
_SERVER_KEY_FILE = "server-key.pem"
_SIGNING_FILE = "signing-key.pem"
# The key of the stand-in token issuers (/_issuers/<name>) that federated credentials trust.
_ISSUER_FILE = "issuer-signing-key.pem"
_PRIVATE_FILES = (ADMIN_KEY_FILE, _SIGNING_FILE, _CA_KEY_FILE, _SERVER_KEY_FILE, _ISSUER_FILE)
# An app's own signing key (apps with `app_specific_signing_key`), one file per client id.
_APP_SIGNING_PREFIX = "app-signing-key-"
_SERVER_NAMES = ("localhost", "127.0.0.1", "::1")
# What the CA may vouch for whatever the configuration: localhost (and its subdomains, which
# resolve to loopback per RFC 6761) and the loopback networks.
_ALWAYS_PERMITTED: tuple[x509.GeneralName, ...] = (
    x509.DNSName("localhost"),
    x509.IPAddress(ipaddress.ip_network("127.0.0.0/8")),
    x509.IPAddress(ipaddress.ip_network("::1/128")),
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64url(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read, even over an older file left world-readable."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as handle:
        if hasattr(os, "fchmod"):  # the mode given to open() applies to new files only
            os.fchmod(fd, 0o600)
        handle.write(data)


def secure_state_dir(state_dir: Path) -> tuple[str, ...]:
    """Create ``state_dir`` as 0700 and make the private files in it 0600.

    Returns a note when it had to tighten what an older entra-auth left readable by others.
    """
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name != "posix":  # Windows has no such mode bits; its ACLs are the user's business
        return ()
    present = [state_dir / n for n in _PRIVATE_FILES if os.path.lexists(state_dir / n)]
    present += sorted(state_dir.glob(f"{_APP_SIGNING_PREFIX}*.pem"))
    # A link planted here would make the emulator write a key through it, or read a key
    # someone else controls; a directory or key of another user is theirs to read or replace.
    odd = [p.name for p in present if p.is_symlink() or not p.is_file()]
    if odd:
        raise EmulatorError(
            f"{', '.join(odd)} in the emulator's state directory {state_dir} is not a regular "
            "file (a link?); the emulator keeps its keys only in files of its own.",
            remedy="Remove it, or use another directory with --state-dir.",
        )
    if any(p.stat().st_uid != os.getuid() for p in (state_dir, *present)):
        raise EmulatorError(
            f"The emulator's state directory {state_dir} or a key file in it belongs to another "
            "user, who could read or replace the keys.",
            remedy="Use a directory of your own with --state-dir (or delete this one).",
        )
    loose_dir = _mode(state_dir) != 0o700
    if loose_dir:
        os.chmod(state_dir, 0o700)
    loose_files = [p.name for p in present if _mode(p) != 0o600]
    for name in loose_files:
        os.chmod(state_dir / name, 0o600)
    if not (loose_dir or loose_files):
        return ()
    done = (["the directory is now 0700"] if loose_dir else []) + (
        [f"{', '.join(loose_files)} now 0600"] if loose_files else []
    )
    return (
        f"Made the emulator's state directory {state_dir} private ({'; '.join(done)}): an "
        "older entra-auth left it readable by other users. If others use this machine, "
        "delete the directory once to get new keys.",
    )


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _pem_key(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class SigningKey:
    """A token-signing key and its certificate, as published in the JWKS."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def kid(self) -> str:
        return self.x5t

    @property
    def x5t(self) -> str:
        return b64url(self.certificate.fingerprint(hashes.SHA1()))  # noqa: S303 - x5t is SHA-1

    def jwk(self, issuer: str) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.x5t,
            "n": _int_b64url(numbers.n),
            "e": _int_b64url(numbers.e),
            "x5c": [base64.b64encode(der).decode("ascii")],
            "issuer": issuer,
        }

    @classmethod
    def generate(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "login.local-entra.test")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(days=1))
            .not_valid_after(_now() + dt.timedelta(days=3650))
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def to_pem(self) -> bytes:
        return _pem_key(self.private_key) + self.certificate.public_bytes(
            serialization.Encoding.PEM
        )

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the signing key is not an RSA key")
        return cls(key, x509.load_pem_x509_certificate(data))


@dataclass(frozen=True)
class TlsMaterial:
    ca_path: Path
    cert_path: Path
    key_path: Path
    notes: tuple[str, ...] = ()  # what was upgraded in the state dir, for the start output

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def ensure_tls(state_dir: Path, extra_names: tuple[str, ...] = ()) -> TlsMaterial:
    """The CA and server certificate in ``state_dir``, made or renewed when needed."""
    notes = secure_state_dir(state_dir)
    ca_path, ca_key_path = state_dir / CA_FILE, state_dir / _CA_KEY_FILE
    cert_path, key_path = state_dir / _SERVER_FILE, state_dir / _SERVER_KEY_FILE
    # An unspecified address (a server bound to "::") names no host a client could ask for.
    names = tuple(
        dict.fromkeys(n.lower() for n in _SERVER_NAMES + extra_names if not _unspecified(n))
    )
    permitted = _permitted(names)

    ca_cert: x509.Certificate | None = None
    ca_key: Any = None
    if ca_path.exists() and ca_key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        if ca_cert.not_valid_after_utc < _now() + dt.timedelta(days=30):
            ca_cert = None
        elif (why := _ca_constraints_differ(ca_cert, permitted)) is not None:
            notes += (
                f"Replaced the local CA {ca_path}: {why}. The new one vouches only for "
                f"{_describe(permitted)}; the token-signing key is kept. Clients that read "
                "ca.pem pick it up when they start; remove the old CA from any browser or "
                "system trust store you added it to.",
            )
            ca_cert = None
    if ca_cert is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "entra-auth local Entra ID"),
                x509.NameAttribute(NameOID.COMMON_NAME, "entra-auth local CA"),
            ]
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(days=1))
            .not_valid_after(_now() + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            # Critical, so that a client that cannot enforce the limit refuses the CA instead.
            .add_extension(
                x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        write_private(ca_key_path, _pem_key(ca_key))
        ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        cert_path.unlink(missing_ok=True)

    if not _server_cert_fits(cert_path, key_path, ca_cert, names):
        server_key = ec.generate_private_key(ec.SECP256R1())
        alt_names: list[x509.GeneralName] = []
        for name in names:
            try:
                alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt_names.append(x509.DNSName(name))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(days=1))
            .not_valid_after(_now() + dt.timedelta(days=397))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        write_private(key_path, _pem_key(server_key))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TlsMaterial(ca_path, cert_path, key_path, notes)


def _permitted(names: tuple[str, ...]) -> list[x509.GeneralName]:
    """The CA's permitted subtrees: localhost and loopback, plus each other name served."""
    permitted = list(_ALWAYS_PERMITTED)
    for name in names:
        if _is_ip(name):
            address = ipaddress.ip_address(name)
            if not address.is_loopback:
                permitted.append(x509.IPAddress(ipaddress.ip_network(address)))
        elif name != "localhost" and not name.endswith(".localhost"):
            permitted.append(x509.DNSName(name))
    return list(dict.fromkeys(permitted))


def _ca_constraints_differ(
    ca_cert: x509.Certificate, permitted: list[x509.GeneralName]
) -> str | None:
    """Why a kept CA does not fit this run's names, or None when it does."""
    try:
        constraints = ca_cert.extensions.get_extension_for_class(x509.NameConstraints)
    except x509.ExtensionNotFound:
        return (
            "it had no name constraints (made by an older entra-auth) and could vouch for any host"
        )
    if (
        not constraints.critical
        or constraints.value.excluded_subtrees
        or set(constraints.value.permitted_subtrees or ()) != set(permitted)
    ):
        return f"it vouched for {_describe(list(constraints.value.permitted_subtrees or ()))}"
    return None


def _describe(names: list[x509.GeneralName]) -> str:
    return ", ".join(str(n.value) for n in names)


def _unspecified(name: str) -> bool:
    return _is_ip(name) and ipaddress.ip_address(name).is_unspecified


def _server_cert_fits(
    cert_path: Path, key_path: Path, ca_cert: x509.Certificate, names: tuple[str, ...]
) -> bool:
    if not (cert_path.exists() and key_path.exists()):
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    if cert.issuer != ca_cert.subject or cert.not_valid_after_utc < _now() + dt.timedelta(days=7):
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    present = {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(
        san.get_values_for_type(x509.DNSName)
    )
    return all(
        str(ipaddress.ip_address(n)) in present if _is_ip(n) else n in present for n in names
    )


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def ensure_signing_key(state_dir: Path) -> SigningKey:
    """The persistent signing key, so tokens stay valid across emulator restarts."""
    return _ensure_key(state_dir / _SIGNING_FILE)


def ensure_app_signing_key(state_dir: Path, client_id: str) -> SigningKey:
    """The persistent signing key of one app (``app_specific_signing_key``), kept like the
    tenant's so that the app's tokens stay valid across restarts."""
    # The seed's schema makes every client id a GUID; checked again because it names a file.
    name = str(uuid.UUID(client_id))
    return _ensure_key(state_dir / f"{_APP_SIGNING_PREFIX}{name}.pem")


def ensure_issuer_key(state_dir: Path) -> SigningKey:
    """The persistent key of the stand-in issuers, so that a federated token minted before a
    restart (a token file a test keeps) is still trusted after it."""
    return _ensure_key(state_dir / _ISSUER_FILE)


def _ensure_key(path: Path) -> SigningKey:
    if path.exists():
        return SigningKey.from_pem(path.read_bytes())
    key = SigningKey.generate()
    write_private(path, key.to_pem())
    return key
