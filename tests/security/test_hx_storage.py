"""HX10 and HX11: what the emulator keeps on disk, and what the token cache keeps in Redis.

HX10: the emulator's state directory holds private keys (CA, server, token signing) and the
control API's admin key: readable by its owner only, and the local CA can vouch for localhost
and loopback addresses only, so its key (or a trusted ca.pem) cannot serve a MITM elsewhere.
HX11: a token-cache entry is bound to the Redis key it was written for.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import os
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from entra_auth.client.redis_cache import RedisTokenCacheStore
from entra_auth.client.token_cache import TokenCacheCipher, user_token_cache
from entra_auth.emulator import EntraEmulator
from entra_auth.emulator.admin import ADMIN_HEADER
from entra_auth.emulator.pki import SigningKey
from entra_auth.errors import EmulatorError

PRIVATE_FILES = ("admin-key", "signing-key.pem", "ca-key.pem", "server-key.pem")
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
SECRET = "rt-plaintext-value"
CACHE = json.dumps({"RefreshToken": {"x": {"secret": SECRET}}})


# -- HX10: the emulator's state directory ---------------------------------------------------------
@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common 022 umask, under which files and directories are world-readable by default."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def start(state_dir: Path, public_host: str = "localhost") -> EntraEmulator:
    return EntraEmulator(
        state_dir=state_dir, port=0, browser_port=0, public_host=public_host
    ).start()


def ca_of(state_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate((state_dir / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((state_dir / "ca-key.pem").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def issue(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, name: x509.DNSName | x509.IPAddress
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A server certificate for ``name`` signed with the CA's key: what its holder could make."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(name.value))]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([name]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def verifies(
    ca: x509.Certificate, leaf: x509.Certificate, name: x509.DNSName | x509.IPAddress
) -> bool:
    """Whether a client trusting only ``ca`` accepts ``leaf`` for ``name`` (RFC 5280 rules)."""
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(name)
    try:
        verifier.verify(leaf, [])
    except VerificationError:
        return False
    return True


def old_style_state(state_dir: Path) -> SigningKey:
    """A state directory as entra-auth made it before HX10: an unconstrained CA, files 0644."""
    state_dir.mkdir(mode=0o755)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-auth local CA")])
    now = dt.datetime.now(dt.timezone.utc)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server, server_key = issue(ca, ca_key, x509.DNSName("localhost"))
    signing = SigningKey.generate()
    pem = serialization.Encoding.PEM
    files = {
        "ca.pem": ca.public_bytes(pem),
        "ca-key.pem": ca_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        "server.pem": server.public_bytes(pem),
        "server-key.pem": server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        "signing-key.pem": signing.to_pem(),
        "admin-key": b"an-old-admin-key",
    }
    for file, data in files.items():
        (state_dir / file).write_bytes(data)
        (state_dir / file).chmod(0o644)
    return signing


def test_HX10_a_new_state_dir_is_private(tmp_path: Path, usual_umask: None) -> None:
    state_dir = tmp_path / "state"
    with start(state_dir):
        assert mode(state_dir) == 0o700
        for file in PRIVATE_FILES:
            assert mode(state_dir / file) == 0o600, file


def test_HX10_an_old_state_dir_is_made_private_and_gets_a_constrained_ca(
    tmp_path: Path, usual_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    state_dir = tmp_path / "state"
    signing = old_style_state(state_dir)
    old_ca = (state_dir / "ca.pem").read_bytes()
    with caplog.at_level(logging.INFO, logger="entra_auth.emulator"), start(state_dir) as emulator:
        assert mode(state_dir) == 0o700
        for file in PRIVATE_FILES:
            assert mode(state_dir / file) == 0o600, file
        ca, _ = ca_of(state_dir)
        assert (state_dir / "ca.pem").read_bytes() != old_ca
        assert ca.extensions.get_extension_for_class(x509.NameConstraints).critical
        # The token-signing key is kept, so tokens issued before the upgrade stay valid.
        assert emulator.signing_key.kid == signing.kid
        assert (state_dir / "signing-key.pem").read_bytes() == signing.to_pem()
        # The new server certificate is the new CA's: clients trusting ca.pem still connect.
        http = emulator.http_session()
        assert http.get(f"{emulator.authority}/v2.0/.well-known/openid-configuration").ok
    said = caplog.text
    assert "ca.pem" in said
    assert "no name constraints" in said
    assert "0600" in said
    assert "BEGIN" not in said
    assert "an-old-admin-key" not in said


def test_HX10_a_key_file_planted_as_a_link_is_refused(tmp_path: Path) -> None:
    state_dir, elsewhere = tmp_path / "state", tmp_path / "elsewhere"
    state_dir.mkdir(mode=0o700)
    elsewhere.write_text("someone's file")
    (state_dir / "admin-key").symlink_to(elsewhere)
    with pytest.raises(EmulatorError, match=r"admin-key .* not a regular file"):
        start(state_dir)
    assert elsewhere.read_text() == "someone's file"  # nothing written through the link


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to chown")
def test_HX10_a_state_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o755)
    os.chown(state_dir, 65534, 65534)  # nobody: could read or replace the keys
    with pytest.raises(EmulatorError, match="belongs to another user"):
        start(state_dir)
    assert list(state_dir.iterdir()) == []


def test_HX10_the_local_ca_vouches_for_localhost_and_loopback_only(
    entra_emulator: EntraEmulator,
) -> None:
    ca, ca_key = ca_of(entra_emulator.ca_path.parent)
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert set(constraints.value.permitted_subtrees or []) == {
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_network("127.0.0.0/8")),
        x509.IPAddress(ipaddress.ip_network("::1/128")),
    }
    for refused in (
        x509.DNSName("evil.example"),
        x509.DNSName("login.microsoftonline.com"),
        x509.DNSName("localhost.evil.example"),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::2")),
    ):
        leaf, _ = issue(ca, ca_key, refused)
        assert not verifies(ca, leaf, refused), refused
    for allowed in (
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ):
        leaf, _ = issue(ca, ca_key, allowed)
        assert verifies(ca, leaf, allowed), allowed
    # The emulator's own certificate still verifies for localhost.
    server = x509.load_pem_x509_certificate(
        (entra_emulator.ca_path.parent / "server.pem").read_bytes()
    )
    assert verifies(ca, server, x509.DNSName("localhost"))
    assert verifies(ca, server, x509.IPAddress(ipaddress.ip_address("127.0.0.1")))


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> None:
    """A TLS handshake in memory (no socket, no thread): raises what the client refuses."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    ends = [
        client.wrap_bio(c_in, c_out, server_hostname=hostname),
        server.wrap_bio(s_in, s_out, server_side=True),
    ]
    done: set[int] = set()
    for _ in range(10):
        for index, end in enumerate(ends):
            if index not in done:
                try:
                    end.do_handshake()
                    done.add(index)
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if len(done) == 2:
            return
    raise AssertionError("the in-memory handshake did not finish")


@pytest.mark.parametrize(("hostname", "trusted"), [("evil.example", False), ("localhost", True)])
def test_HX10_python_ssl_refuses_the_local_ca_for_another_host(
    entra_emulator: EntraEmulator, tmp_path: Path, hostname: str, trusted: bool
) -> None:
    ca, ca_key = ca_of(entra_emulator.ca_path.parent)
    leaf, key = issue(ca, ca_key, x509.DNSName(hostname))
    pem = serialization.Encoding.PEM
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (tmp_path / "leaf-key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf-key.pem")
    client = ssl.create_default_context(cafile=str(entra_emulator.ca_path))
    if trusted:
        handshake(server, client, hostname)
    else:
        with pytest.raises(ssl.SSLCertVerificationError, match="permitted subtree violation"):
            handshake(server, client, hostname)


def test_HX10_a_public_host_is_the_one_name_added(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    with start(state_dir, public_host="idp.dev.example") as emulator:
        ca, ca_key = ca_of(state_dir)
        server = x509.load_pem_x509_certificate((state_dir / "server.pem").read_bytes())
        assert verifies(ca, server, x509.DNSName("idp.dev.example"))
        assert verifies(ca, server, x509.DNSName("localhost"))
        evil = x509.DNSName("evil.example")
        assert not verifies(ca, issue(ca, ca_key, evil)[0], evil)
        assert emulator.urls.https_base.startswith("https://idp.dev.example:")
    # Back to localhost only: the CA that also permitted the public host is replaced.
    with start(state_dir):
        ca, ca_key = ca_of(state_dir)
        public = x509.DNSName("idp.dev.example")
        assert not verifies(ca, issue(ca, ca_key, public)[0], public)


def test_HX10_the_control_api_cannot_publish_a_key_set(entra_emulator: EntraEmulator) -> None:
    http = entra_emulator.http_session()
    base = f"{entra_emulator.urls.https_base}/_emulator"
    admin = {ADMIN_HEADER: entra_emulator.admin_key}
    jwks_url = f"{entra_emulator.authority}/discovery/v2.0/keys"
    discovery_url = f"{entra_emulator.authority}/v2.0/.well-known/openid-configuration"
    attacker = SigningKey.generate()
    key_set = json.dumps({"keys": [attacker.jwk(entra_emulator.issuer())]})
    for endpoint, body in (
        ("jwks", key_set),
        ("discovery", json.dumps({"jwks_uri": "https://evil.example/keys"})),
    ):
        for kind in ("garbage", "status", "slow"):
            refused = http.post(
                f"{base}/faults/{endpoint}", json={"kind": kind, "body": body}, headers=admin
            )
            assert refused.status_code == 400
            assert "body" in refused.json()["error_description"]
    served = http.get(jwks_url).json()
    assert [k["kid"] for k in served["keys"]] == [entra_emulator.signing_key.kid]
    assert http.get(discovery_url).json()["jwks_uri"].startswith(entra_emulator.urls.https_base)
    # The fault kinds themselves still work over HTTP: garbage is a fixed page that is no JSON.
    assert http.post(f"{base}/faults/jwks", json={"kind": "garbage"}, headers=admin).ok
    garbage = http.get(jwks_url)
    assert garbage.status_code == 200
    assert garbage.headers["Content-Type"].startswith("text/html")
    assert attacker.kid not in garbage.text


# -- HX11: token-cache entries bound to their Redis key -------------------------------------------
def cache_store(url: str, key: str, keys: list[str]) -> RedisTokenCacheStore:
    return RedisTokenCacheStore(redis.Redis.from_url(url), key, TokenCacheCipher(keys), ttl=60)


@pytest.mark.parametrize("how", ["COPY", "SET"])
def test_HX11_an_entry_copied_under_another_key_does_not_decrypt_there(
    redis_url: str, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    victim = cache_store(redis_url, "entra:tokens:victim", [NEW])
    victim.save(CACHE)
    if how == "COPY":
        assert client.copy("entra:tokens:victim", "entra:tokens:attacker", replace=True)
    else:
        client.set("entra:tokens:attacker", client.get("entra:tokens:victim") or b"")
    attacker = cache_store(redis_url, "entra:tokens:attacker", [NEW])
    with caplog.at_level(logging.INFO, logger="entra_auth.client.token_cache"):
        assert attacker.load() is None
        with user_token_cache(attacker) as cache:  # what a request gets: an empty cache
            assert list(cache.search(cache.CredentialType.REFRESH_TOKEN)) == []
    assert client.get("entra:tokens:attacker") is None  # discarded
    assert "(written_for_other_key)" in caplog.text
    assert SECRET not in caplog.text
    assert "entra:tokens:victim" not in caplog.text
    assert victim.load() == CACHE  # the original is untouched


def test_HX11_an_entry_in_the_old_unbound_format_is_discarded(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.set("entra:tokens:t1", Fernet(NEW.encode()).encrypt(CACHE.encode()))
    with caplog.at_level(logging.INFO, logger="entra_auth.client.token_cache"):
        assert cache_store(redis_url, "entra:tokens:t1", [NEW]).load() is None
    assert client.get("entra:tokens:t1") is None
    assert "(unbound_old_format)" in caplog.text
    assert SECRET not in caplog.text


def test_HX11_rotation_still_reads_entries_under_the_older_key(redis_url: str) -> None:
    cache_store(redis_url, "entra:tokens:t1", [OLD]).save(CACHE)
    rotated = cache_store(redis_url, "entra:tokens:t1", [NEW, OLD])
    assert rotated.load() == CACHE
    rotated.save('{"v": 2}')
    assert cache_store(redis_url, "entra:tokens:t1", [NEW]).load() == '{"v": 2}'
    assert cache_store(redis_url, "entra:tokens:t1", [OLD]).load() is None


# -- HX11: a session record edited in Redis -------------------------------------------------------
# Where each adapter's Redis store keeps session records (Flask-Session's prefix, ours).
SESSION_RECORDS = {"flask": "session:*", "fastapi": "entra:session:*"}


def _session_records(client: redis.Redis, pattern: str) -> dict[bytes, dict[str, object]]:
    return {key: json.loads(client.get(key) or b"{}") for key in client.keys(pattern)}


# Not Django: its sessions are its session engine's (the database here), never Redis records of
# ours; tests/django/test_signin.py edits one (test_an_edited_session_speaks_for_nobody).
@pytest.mark.parametrize("web_adapter", ["flask", "fastapi"])
@pytest.mark.parametrize(
    "edit",
    [
        ("entra_user", "entra_account", "entra_cache_id"),  # become the victim wholesale
        ("entra_user",),  # claim the victim's identity, keep one's own tokens
        ("entra_cache_id", "entra_account"),  # use the victim's tokens under one's own name
    ],
    ids=["everything", "user", "tokens"],
)
def test_HX11_a_session_record_edited_in_redis_speaks_for_no_one(
    entra_emulator: EntraEmulator, redis_url: str, edit: tuple[str, ...], web_adapter: str
) -> None:
    from ..helpers import MEGAN, redis_demo_settings
    from .web import Web, demo_app

    app = demo_app(web_adapter, redis_demo_settings(entra_emulator, redis_url))
    try:
        victim, attacker = Web(entra_emulator, app), Web(entra_emulator, app)
        victim.sign_in()
        attacker.sign_in(user=MEGAN)
        assert attacker.who() == "Megan Bowen"
        client = redis.Redis.from_url(redis_url)
        records = _session_records(client, SESSION_RECORDS[web_adapter])
        (victims,) = [r for r in records.values() if r["entra_user"]["name"] == "Adele Vance"]  # type: ignore[index]
        ((attackers_key, attackers),) = [
            (k, r)
            for k, r in records.items()
            if r["entra_user"]["name"] == "Megan Bowen"  # type: ignore[index]
        ]
        # The attacker, who can write to Redis, rewrites its own session record (its expiry kept).
        ttl = client.ttl(attackers_key)
        client.set(attackers_key, json.dumps({**attackers, **{k: victims[k] for k in edit}}))
        if ttl > 0:
            client.expire(attackers_key, ttl)
        assert attacker.who() is None  # the seal no longer matches: nobody is signed in
        profile = attacker.client.get("/profile")
        assert profile.status_code == 302
        assert profile.headers["Location"] == "/login?next=/profile"
        assert victim.who() == "Adele Vance"  # the victim is untouched
        assert victim.client.get("/profile").status_code == 200
    finally:
        if hasattr(app, "close"):
            app.close()
