"""Every credential kind through ``AppTokenProvider`` (and, for those a confidential client
holds, web sign-in's ``SignInFlow``) against the local Entra ID with the real MSAL: a certificate
(PEM, PFX, base64; SHA-256 and SHA-1 thumbprints), a federated token file that rotates, a
managed identity (IMDS and App Service); and the settings refused before any request."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from entra_auth.client.app_tokens import AppTokenProvider
from entra_auth.config import EntraConfig
from entra_auth.credentials import client_credential
from entra_auth.emulator import EntraEmulator
from entra_auth.errors import AppTokenError, ConfigurationError, MissingSettingError
from entra_auth.testing.certificates import make_client_certificate

from .helpers import API, DAEMON, MSAL_IDENTITY_SOURCES

API_DEFAULT = f"api://{API}/.default"
SYSTEM_IDENTITY = "ef35a30c-5c3d-4e5c-b15b-e459a2a60303"  # the seed's system-assigned identity
USER_IDENTITY = "9b2c1f20-62a6-46c0-baeb-b0bc8cd47f0a"  # its user-assigned identity


def claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def settings_for(emulator: EntraEmulator, **credential: str) -> dict[str, str]:
    """The daemon's settings with ``credential`` in place of its secret."""
    env = emulator.env_for(DAEMON)
    env.pop("ENTRA_CLIENT_SECRET", None)
    env.update(credential)
    return env


# -- certificates --------------------------------------------------------------------------------
FORMATS = ["pem", "pem-encrypted", "pfx", "pfx-base64"]


def certificate_settings(
    emulator: EntraEmulator, tmp_path: Path, form: str, *, register: bool = True, **extra: str
) -> dict[str, str]:
    """The daemon with a new certificate in ``form`` (registered for it unless not), no secret."""
    cert_pem, key_pem = make_client_certificate("CN=entra-auth daemon test")
    if register:
        emulator.add_certificate(DAEMON, cert_pem)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    password = "pfx-password"
    if form == "pem":
        path = tmp_path / "daemon.pem"
        path.write_text(cert_pem + key_pem)
        return settings_for(emulator, ENTRA_CLIENT_CERTIFICATE=str(path), **extra)
    if form == "pem-encrypted":
        locked = key.private_bytes(  # type: ignore[union-attr]
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password.encode()),
        ).decode()
        path = tmp_path / "daemon.pem"
        path.write_text(cert_pem + locked)
        return settings_for(
            emulator,
            ENTRA_CLIENT_CERTIFICATE=str(path),
            ENTRA_CLIENT_CERTIFICATE_PASSWORD=password,
            **extra,
        )
    pfx = pkcs12.serialize_key_and_certificates(
        b"daemon",
        key,
        cert,
        None,
        serialization.BestAvailableEncryption(password.encode()),  # type: ignore[arg-type]
    )
    if form == "pfx":
        path = tmp_path / "daemon.pfx"
        path.write_bytes(pfx)
        return settings_for(
            emulator,
            ENTRA_CLIENT_CERTIFICATE=str(path),
            ENTRA_CLIENT_CERTIFICATE_PASSWORD=password,
            **extra,
        )
    return settings_for(
        emulator,
        ENTRA_CLIENT_CERTIFICATE_BASE64=base64.b64encode(pfx).decode(),
        ENTRA_CLIENT_CERTIFICATE_PASSWORD=password,
        **extra,
    )


@pytest.mark.parametrize("thumbprint", ["sha256", "sha1"])
@pytest.mark.parametrize("form", FORMATS)
def test_a_certificate_gets_app_tokens(
    entra_emulator: EntraEmulator, tmp_path: Path, form: str, thumbprint: str
) -> None:
    env = certificate_settings(
        entra_emulator, tmp_path, form, ENTRA_CLIENT_CERTIFICATE_THUMBPRINT=thumbprint
    )
    tokens = AppTokenProvider(EntraConfig.from_mapping(env))
    assert tokens.credential.kind == "certificate"
    assert claims(tokens.get_token(API_DEFAULT))["roles"] == ["Data.Read.All"]


def test_a_certificate_not_registered_is_refused_with_entras_code(
    entra_emulator: EntraEmulator, tmp_path: Path
) -> None:
    env = certificate_settings(entra_emulator, tmp_path, "pem", register=False)
    with pytest.raises(AppTokenError) as refused:
        AppTokenProvider(EntraConfig.from_mapping(env)).get_token(API_DEFAULT)
    assert refused.value.aadsts == 700027
    assert refused.value.remedy


def test_web_sign_in_with_a_certificate(entra_emulator: EntraEmulator, tmp_path: Path) -> None:
    """The same setting signs users in: the code redeemed with a client assertion."""
    from .helpers import WEB, demo_config
    from .security.web import Web, demo_app

    cert_pem, key_pem = make_client_certificate("CN=entra-auth web app test")
    entra_emulator.add_certificate(WEB, cert_pem)
    (tmp_path / "web.pem").write_text(cert_pem + key_pem)
    settings = demo_config(
        entra_emulator, ENTRA_CLIENT_CERTIFICATE=str(tmp_path / "web.pem"),
        ENTRA_SESSION_DIR=str(tmp_path / "s"),
    )  # fmt: skip
    settings.pop("ENTRA_CLIENT_SECRET")
    web = Web(entra_emulator, demo_app("flask", settings))
    assert web.sign_in().status_code == 302
    assert web.who() == "Adele Vance"
    assert web.client.get("/profile").status_code == 200


# -- workload identity federation ----------------------------------------------------------------
SERVICE_ACCOUNT = "system:serviceaccount:demo:daemon"  # the seed's federated credential


def test_a_federated_token_file_is_reread_when_it_rotates(
    entra_emulator: EntraEmulator, tmp_path: Path
) -> None:
    """As Kubernetes projects a service-account token: the file is replaced while the daemon
    runs; the next token request reads the new one (the old one has expired), no restart."""
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(entra_emulator.federated_token(SERVICE_ACCOUNT, lifetime=600))
    entra_emulator.settings.access_token_lifetime = (90, 90)  # every use asks Entra again
    tokens = AppTokenProvider(
        EntraConfig.from_mapping(
            settings_for(entra_emulator, ENTRA_CLIENT_ASSERTION_FILE=str(token_file))
        )
    )
    assert claims(tokens.get_token(API_DEFAULT))["roles"] == ["Data.Read.All"]
    entra_emulator.shift_clock(1000)  # the projected token has expired (past any clock skew)
    with pytest.raises(AppTokenError) as expired:
        tokens.get_token(API_DEFAULT)
    assert expired.value.aadsts is not None
    token_file.write_text(entra_emulator.federated_token(SERVICE_ACCOUNT, lifetime=600))
    assert claims(tokens.get_token(API_DEFAULT))["roles"] == ["Data.Read.All"]


def test_a_federated_token_for_another_workload_is_refused(
    entra_emulator: EntraEmulator, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(entra_emulator.federated_token("system:serviceaccount:other:pod"))
    tokens = AppTokenProvider(
        EntraConfig.from_mapping(
            settings_for(entra_emulator, ENTRA_CLIENT_ASSERTION_FILE=str(token_file))
        )
    )
    with pytest.raises(AppTokenError) as refused:
        tokens.get_token(API_DEFAULT)
    assert refused.value.aadsts is not None
    assert refused.value.remedy


def test_a_callable_assertion(entra_emulator: EntraEmulator) -> None:
    asked: list[int] = []

    def assertion() -> str:
        asked.append(1)
        return entra_emulator.federated_token(SERVICE_ACCOUNT)

    env = settings_for(entra_emulator)
    config = EntraConfig.from_mapping(env, client_assertion=assertion)
    assert claims(AppTokenProvider(config).get_token(API_DEFAULT))["roles"] == ["Data.Read.All"]
    assert asked


# -- managed identity ------------------------------------------------------------------------------
@pytest.fixture
def host(
    entra_emulator: EntraEmulator, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> str:
    """This process on an Azure host: IMDS (a VM) or App Service, the variables MSAL reads set
    to the local Entra ID's endpoints."""
    for name in MSAL_IDENTITY_SOURCES:
        monkeypatch.delenv(name, raising=False)
    kind = getattr(request, "param", "imds")
    for name, value in entra_emulator.managed_identity_env(kind).items():
        if name != "ENTRA_CA_BUNDLE":
            monkeypatch.setenv(name, value)
    return kind


@pytest.mark.parametrize("host", ["imds", "app_service"], indirect=True)
@pytest.mark.parametrize(
    ("identity", "client_id"),
    [("system", SYSTEM_IDENTITY), (USER_IDENTITY, USER_IDENTITY)],
    ids=["system-assigned", "user-assigned"],
)
def test_a_managed_identity_gets_app_tokens_without_a_secret(
    entra_emulator: EntraEmulator, host: str, identity: str, client_id: str
) -> None:
    env = entra_emulator.env_for(DAEMON)
    config = EntraConfig.from_mapping(
        {
            "ENTRA_AUTHORITY": env["ENTRA_AUTHORITY"],
            "ENTRA_CA_BUNDLE": env["ENTRA_CA_BUNDLE"],
            "ENTRA_MANAGED_IDENTITY": identity,
        }
    )
    tokens = AppTokenProvider(config)
    assert tokens.credential.describe() == f"managed identity ({identity})"
    entra_emulator.reset_counts()
    token = tokens.get_token(API_DEFAULT)
    body = claims(token)
    assert body["roles"] == ["Data.Read.All"]
    assert client_id in (body.get("appid"), body.get("azp"))
    assert tokens.get_token(API_DEFAULT) == token
    assert entra_emulator.request_counts()["managed_identity"] == 1
    assert entra_emulator.request_counts().get("token", 0) == 0  # no client credential used


def test_a_managed_identity_cannot_sign_users_in(entra_emulator: EntraEmulator) -> None:
    from entra_auth.client.signin import SignInFlow

    env = entra_emulator.env_for(DAEMON)
    config = EntraConfig.from_mapping(
        {
            "ENTRA_AUTHORITY": env["ENTRA_AUTHORITY"],
            "ENTRA_CLIENT_ID": DAEMON,
            "ENTRA_MANAGED_IDENTITY": "system",
        }
    )
    with pytest.raises(ConfigurationError, match="app tokens only"):
        SignInFlow(config)


# -- settings refused before any request ---------------------------------------------------------
def test_two_credentials_are_refused(entra_emulator: EntraEmulator, tmp_path: Any) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("a.b.c")
    env = entra_emulator.env_for(DAEMON) | {"ENTRA_CLIENT_ASSERTION_FILE": str(token_file)}
    with pytest.raises(ConfigurationError, match="Several credentials") as two:
        client_credential(EntraConfig.from_mapping(env))
    assert "ENTRA_CLIENT_SECRET" in two.value.message
    assert env["ENTRA_CLIENT_SECRET"] not in str(two.value)


def test_no_credential_names_every_choice(entra_emulator: EntraEmulator) -> None:
    env = settings_for(entra_emulator)
    with pytest.raises(MissingSettingError) as none:
        AppTokenProvider(EntraConfig.from_mapping(env))
    (missing,) = none.value.missing
    for name in ("ENTRA_CLIENT_SECRET", "ENTRA_CLIENT_CERTIFICATE", "ENTRA_CLIENT_ASSERTION_FILE"):
        assert name in missing


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        ("ENTRA_CLIENT_CERTIFICATE", "/nonexistent/app.pem", "cannot be read"),
        ("ENTRA_CLIENT_CERTIFICATE_BASE64", "bm90IGEgY2VydGlmaWNhdGU=", "neither PEM nor a PFX"),
        ("ENTRA_MANAGED_IDENTITY", "the-vm", "'system'"),
    ],
)
def test_a_credential_that_cannot_be_read_is_said_at_start(
    entra_emulator: EntraEmulator, setting: str, value: str, words: str
) -> None:
    with pytest.raises(ConfigurationError, match=words):
        AppTokenProvider(EntraConfig.from_mapping(settings_for(entra_emulator, **{setting: value})))


def test_an_assertion_file_without_a_jwt_is_said_when_read(
    entra_emulator: EntraEmulator, tmp_path: Any
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("not a token\n")
    tokens = AppTokenProvider(
        EntraConfig.from_mapping(
            settings_for(entra_emulator, ENTRA_CLIENT_ASSERTION_FILE=str(token_file))
        )
    )
    with pytest.raises(ConfigurationError, match="holds no JWT"):
        tokens.get_token(API_DEFAULT)
