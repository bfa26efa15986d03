"""Managed identity: the real MSAL ManagedIdentityClient against the emulator's IMDS and App
Service endpoints, the tokens it gets (as Entra issues a managed identity's), and the refusals
each service answers with."""

from __future__ import annotations

import dataclasses
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import msal
import pytest
import requests

from entra_auth import AccessTokenValidator, EntraConfig, JwksCache
from entra_auth.emulator import EntraEmulator, Fault
from entra_auth.emulator.endpoints.managed_identity import (
    APP_SERVICE_PATH,
    IMDS_PATH,
    ensure_identity_header,
)
from entra_auth.emulator.seed import ManagedIdentity, load_seed, seed_from_dict
from entra_auth.errors import EmulatorError

from ..helpers import API, API_URI, CONTOSO, LEGACY_URI, MSAL_IDENTITY_SOURCES

SYSTEM_CLIENT = "ef35a30c-5c3d-4e5c-b15b-e459a2a60303"
SYSTEM_OID = "7b1ced05-f3f3-40e6-a2af-c6069e8502b6"
VM_ID = (
    "/subscriptions/893afe18-3309-4e8b-a53f-5d5648f8c5a4/resourcegroups/entra-auth-local/"
    "providers/Microsoft.Compute/virtualMachines/local-vm"
)
USER_CLIENT = "9b2c1f20-62a6-46c0-baeb-b0bc8cd47f0a"
USER_OID = "a898959b-52d5-4ee4-b82b-8d679c3515db"
USER_ID = (
    "/subscriptions/893afe18-3309-4e8b-a53f-5d5648f8c5a4/resourcegroups/entra-auth-local/"
    "providers/Microsoft.ManagedIdentity/userAssignedIdentities/entra-auth-demo-identity"
)
GRAPH = "00000003-0000-0000-c000-000000000000"
KINDS = ("imds", "app_service")
IDENTITIES = {
    "system": (msal.SystemAssignedManagedIdentity, {}, SYSTEM_OID, SYSTEM_CLIENT, VM_ID),
    "client_id": (
        msal.UserAssignedManagedIdentity,
        {"client_id": USER_CLIENT},
        USER_OID,
        USER_CLIENT,
        USER_ID,
    ),
    "object_id": (
        msal.UserAssignedManagedIdentity,
        {"object_id": USER_OID},
        USER_OID,
        USER_CLIENT,
        USER_ID,
    ),
    "resource_id": (
        msal.UserAssignedManagedIdentity,
        # Azure Resource Manager's ids are case-insensitive: the portal writes resourceGroups.
        {"resource_id": USER_ID.replace("resourcegroups", "resourceGroups")},
        USER_OID,
        USER_CLIENT,
        USER_ID,
    ),
}


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def session(emulator: EntraEmulator) -> requests.Session:
    """What an app gives MSAL: a requests session that trusts the emulator's CA."""
    http = requests.Session()
    http.trust_env = False
    http.verify = str(emulator.ca_path)
    return http


@pytest.fixture
def host(entra_emulator: EntraEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``host(kind)`` exports the emulator's managed-identity variables of that kind."""

    def export(kind: str) -> dict[str, str]:
        for name in MSAL_IDENTITY_SOURCES:
            monkeypatch.delenv(name, raising=False)
        env = entra_emulator.managed_identity_env(kind)  # type: ignore[arg-type]
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return env

    yield export
    entra_emulator.reset()  # a test that changed the directory leaves it as it found it


def acquire(emulator: EntraEmulator, identity: Any, resource: str) -> dict[str, Any]:
    client = msal.ManagedIdentityClient(identity, http_client=session(emulator))
    result: dict[str, Any] = client.acquire_token_for_client(resource=resource)
    return result


def api_validator(emulator: EntraEmulator) -> AccessTokenValidator:
    config = EntraConfig(
        authority=emulator.authority_for(CONTOSO),
        client_id=API,
        api_audiences=(API, API_URI),
        ca_bundle=str(emulator.ca_path),
        accepted_token_versions=("2.0",),
    )
    return AccessTokenValidator(config, JwksCache(config))


def with_identities(emulator: EntraEmulator, *identities: ManagedIdentity) -> None:
    """Serve another host: these identities instead of the seed's (until ``reset``)."""
    emulator.state.seed = dataclasses.replace(emulator.state.seed, managed_identities=identities)


def user_assigned(name: str) -> ManagedIdentity:
    return ManagedIdentity(
        kind="user",
        client_id=str(uuid.uuid4()),
        object_id=str(uuid.uuid4()),
        tenant_id=CONTOSO,
        display_name=name,
        resource_id=USER_ID.replace("entra-auth-demo-identity", name),
    )


# -- tokens ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("named_by", list(IDENTITIES))
def test_msal_gets_a_token_for_the_demo_api_with_the_roles_granted(
    entra_emulator: EntraEmulator, host: Any, kind: str, named_by: str
) -> None:
    make, selector, oid, client_id, mirid = IDENTITIES[named_by]
    host(kind)
    result = acquire(entra_emulator, make(**selector), API_URI)
    assert "error" not in result, result
    assert result["token_type"] == "Bearer"
    assert result["token_source"] == "identity_provider"

    token = claims(result["access_token"])
    assert token["oid"] == token["sub"] == oid  # the identity's service principal
    assert token["azp"] == client_id
    assert token["azpacr"] == "2"  # a managed identity authenticates with a certificate
    assert token["xms_mirid"] == mirid
    assert token["idtyp"] == "app"  # the demo API asks for the optional claim
    assert token["roles"] == ["Data.Read.All"]
    assert "scp" not in token
    principal = api_validator(entra_emulator).validate(
        result["access_token"], roles=["Data.Read.All"], app_only=True
    )
    assert principal.app_only
    assert principal.oid == oid
    assert principal.tid == CONTOSO
    assert principal.client_id == client_id


def test_a_graph_token_carries_graphs_role_and_a_v1_api_gets_no_role_not_granted(
    entra_emulator: EntraEmulator, host: Any
) -> None:
    host("imds")
    identity = msal.UserAssignedManagedIdentity(client_id=USER_CLIENT)
    graph = claims(acquire(entra_emulator, identity, "https://graph.microsoft.com")["access_token"])
    assert graph["aud"] == GRAPH
    assert graph["roles"] == ["User.Read.All"]
    assert graph["appid"] == USER_CLIENT  # a v1 token: appid/appidacr
    assert graph["appidacr"] == "2"

    legacy = claims(acquire(entra_emulator, identity, LEGACY_URI)["access_token"])
    assert legacy["aud"] == LEGACY_URI
    assert legacy["ver"] == "1.0"
    assert "roles" not in legacy  # the seed grants the identities nothing on the legacy API


def test_imds_answers_in_its_own_shape_with_strings(
    entra_emulator: EntraEmulator, host: Any
) -> None:
    env = host("imds")
    answer = session(entra_emulator).get(
        env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] + IMDS_PATH,
        params={"api-version": "2018-02-01", "resource": f"{API_URI}/", "client_id": USER_CLIENT},
        headers={"Metadata": "true"},
    )
    assert answer.status_code == 200
    body = answer.json()
    token = claims(body["access_token"])
    assert body["resource"] == f"{API_URI}/"  # as it was asked for
    assert body["token_type"] == "Bearer"
    assert body["client_id"] == USER_CLIENT
    assert body["expires_on"] == str(token["exp"])
    assert body["not_before"] == str(token["nbf"])
    assert body["expires_in"] == str(token["exp"] - token["iat"])
    assert body["ext_expires_in"] == body["expires_in"]
    assert all(isinstance(body[k], str) for k in ("expires_in", "expires_on", "not_before"))


def test_app_service_answers_in_its_own_shape(entra_emulator: EntraEmulator, host: Any) -> None:
    env = host("app_service")
    assert env["IDENTITY_ENDPOINT"].endswith(APP_SERVICE_PATH)
    answer = session(entra_emulator).get(
        env["IDENTITY_ENDPOINT"],
        params={"api-version": "2019-08-01", "resource": API},
        headers={"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]},
    )
    assert answer.status_code == 200
    body = answer.json()
    token = claims(body["access_token"])
    assert body["expires_on"] == str(token["exp"])  # epoch seconds, a string
    assert "expires_in" not in body
    assert body["resource"] == API
    assert body["client_id"] == SYSTEM_CLIENT  # none named: the system-assigned identity
    assert body["token_type"] == "Bearer"


def test_managed_identity_env_names_the_ca_and_the_state_dirs_header(
    entra_emulator: EntraEmulator,
) -> None:
    imds = entra_emulator.managed_identity_env()
    assert imds == {
        "AZURE_POD_IDENTITY_AUTHORITY_HOST": entra_emulator.urls.https_base,
        "ENTRA_CA_BUNDLE": Path(entra_emulator.ca_path).resolve().as_posix(),
    }
    app_service = entra_emulator.managed_identity_env("app_service")
    assert app_service["IDENTITY_HEADER"] == ensure_identity_header(entra_emulator.state_dir)
    with pytest.raises(EmulatorError, match="No managed-identity endpoint"):
        entra_emulator.managed_identity_env("cloud_shell")  # type: ignore[arg-type]


def test_the_identity_header_is_kept_private_in_the_state_dir(tmp_path: Path) -> None:
    first = ensure_identity_header(tmp_path)
    assert ensure_identity_header(tmp_path) == first  # the same across restarts
    assert stat.S_IMODE(os.stat(tmp_path / "identity-header").st_mode) == 0o600
    (tmp_path / "identity-header").write_text("short")  # not one the emulator made
    assert ensure_identity_header(tmp_path) != first


# -- IMDS's refusals ------------------------------------------------------------------------------
@pytest.mark.parametrize("metadata", [None, "True", "false"])
def test_imds_refuses_a_request_without_metadata_true(
    entra_emulator: EntraEmulator, host: Any, metadata: str | None
) -> None:
    env = host("imds")
    answer = session(entra_emulator).get(
        env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] + IMDS_PATH,
        params={"api-version": "2018-02-01", "resource": API_URI},
        headers={} if metadata is None else {"Metadata": metadata},
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_request",
        "error_description": "Required metadata header not specified",
    }


def test_imds_refuses_a_request_without_its_api_version(
    entra_emulator: EntraEmulator, host: Any
) -> None:
    env = host("imds")
    for params in ({"resource": API_URI}, {"resource": API_URI, "api-version": "2017-12-01"}):
        answer = session(entra_emulator).get(
            env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] + IMDS_PATH,
            params=params,
            headers={"Metadata": "true"},
        )
        assert answer.status_code == 400
        assert answer.json()["error"].startswith("Bad request. api-version was not specified")
        assert answer.json()["newest-versions"]


@pytest.mark.parametrize(
    "selector",
    [
        {"client_id": str(uuid.uuid4())},
        {"object_id": str(uuid.uuid4())},
        {"resource_id": USER_ID.replace("entra-auth-demo-identity", "nobody")},
        {"resource_id": VM_ID},  # the VM is no user-assigned identity
    ],
)
def test_imds_refuses_an_identity_the_host_does_not_have(
    entra_emulator: EntraEmulator, host: Any, selector: dict[str, str]
) -> None:
    host("imds")
    result = acquire(entra_emulator, msal.UserAssignedManagedIdentity(**selector), API_URI)
    assert result == {"error": "invalid_request", "error_description": "Identity not found"}


def test_imds_relays_entras_refusal_of_an_unknown_resource(
    entra_emulator: EntraEmulator, host: Any
) -> None:
    host("imds")
    result = acquire(entra_emulator, msal.SystemAssignedManagedIdentity(), "api://no-such-api")
    assert result["error"] == "invalid_resource"
    assert result["error_codes"] == [500011]
    assert result["error_description"].startswith(
        "AADSTS500011: The resource principal named api://no-such-api was not found"
    )


def test_imds_without_a_system_assigned_identity_defaults_to_the_only_user_assigned_one(
    entra_emulator: EntraEmulator, host: Any
) -> None:
    host("imds")
    only = user_assigned("only")
    with_identities(entra_emulator, only)
    result = acquire(entra_emulator, msal.SystemAssignedManagedIdentity(), API_URI)
    assert claims(result["access_token"])["oid"] == only.object_id

    with_identities(entra_emulator, only, user_assigned("another"))
    result = acquire(entra_emulator, msal.SystemAssignedManagedIdentity(), API_URI)
    assert result == {
        "error": "invalid_request",
        "error_description": "Multiple user assigned identities exist, please specify the "
        "clientId / resourceId of the identity in the token request",
    }
    named = acquire(entra_emulator, msal.UserAssignedManagedIdentity(client_id=only.client_id), API)
    assert claims(named["access_token"])["azp"] == only.client_id

    with_identities(entra_emulator)
    result = acquire(entra_emulator, msal.SystemAssignedManagedIdentity(), API_URI)
    assert result == {"error": "invalid_request", "error_description": "Identity not found"}


# -- App Service's refusals -----------------------------------------------------------------------
@pytest.mark.parametrize("header", [None, "", "not-the-header"])
def test_app_service_refuses_a_wrong_identity_header(
    entra_emulator: EntraEmulator, host: Any, monkeypatch: pytest.MonkeyPatch, header: str | None
) -> None:
    env = host("app_service")
    answer = session(entra_emulator).get(
        env["IDENTITY_ENDPOINT"],
        params={"api-version": "2019-08-01", "resource": API_URI},
        headers={} if header is None else {"X-IDENTITY-HEADER": header},
    )
    assert answer.status_code == 401
    body = answer.json()
    assert body["statusCode"] == 401
    assert body["correlationId"] == answer.headers["X-CORRELATION-ID"]

    monkeypatch.setenv("IDENTITY_HEADER", "not-the-header")  # what MSAL sends
    result = acquire(entra_emulator, msal.SystemAssignedManagedIdentity(), API_URI)
    assert result["error"] == "invalid_scope"  # MSAL's word for any App Service refusal
    assert result["error_description"].startswith("401, ")


def test_app_service_refuses_an_unknown_identity_and_an_unknown_resource(
    entra_emulator: EntraEmulator, host: Any
) -> None:
    host("app_service")
    stranger = msal.UserAssignedManagedIdentity(client_id=str(uuid.uuid4()))
    assert acquire(entra_emulator, stranger, API_URI) == {
        "error": "invalid_scope",
        "error_description": "400, No User Assigned or Delegated Managed Identity found for "
        "specified ClientId/ResourceId/PrincipalId.",
    }
    unknown = acquire(entra_emulator, msal.SystemAssignedManagedIdentity(), "api://no-such-api")
    assert unknown == {
        "error": "invalid_scope",
        "error_description": "500, An unexpected error occured while fetching the AAD Token.",
    }


def test_app_service_uses_the_system_assigned_identity_only(
    entra_emulator: EntraEmulator, host: Any
) -> None:
    host("app_service")
    with_identities(entra_emulator, user_assigned("only"))  # IMDS would default to it
    result = acquire(entra_emulator, msal.SystemAssignedManagedIdentity(), API_URI)
    assert result["error_description"] == "400, Unable to load the proper Managed Identity."


def test_app_service_wants_its_api_version(entra_emulator: EntraEmulator, host: Any) -> None:
    env = host("app_service")
    answer = session(entra_emulator).get(
        env["IDENTITY_ENDPOINT"],
        params={"api-version": "2017-09-01", "resource": API_URI},
        headers={"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "UnsupportedApiVersion"


# -- faults, counts, listeners --------------------------------------------------------------------
def test_managed_identity_is_a_fault_point_counted_like_the_others(
    entra_emulator: EntraEmulator, host: Any
) -> None:
    host("imds")
    entra_emulator.inject_fault("managed_identity", Fault("status", status=503, times=1))
    answer = session(entra_emulator).get(
        entra_emulator.urls.https_base + IMDS_PATH,
        params={"api-version": "2018-02-01", "resource": API_URI},
        headers={"Metadata": "true"},
    )
    assert answer.status_code == 503
    result = acquire(entra_emulator, msal.SystemAssignedManagedIdentity(), API_URI)
    assert "access_token" in result  # the fault was for one request
    assert entra_emulator.request_counts()["managed_identity"] == 2
    assert entra_emulator.request_counts()["token"] == 0  # no trip to the token endpoint


def test_the_browser_port_does_not_serve_managed_identity(entra_emulator: EntraEmulator) -> None:
    plain = requests.Session()
    plain.trust_env = False
    answer = plain.get(
        entra_emulator.urls.browser_base + IMDS_PATH,
        params={"api-version": "2018-02-01", "resource": API_URI},
        headers={"Metadata": "true"},
    )
    assert answer.status_code == 404


# -- the seed -------------------------------------------------------------------------------------
def test_the_default_seed_has_a_system_and_a_user_assigned_identity() -> None:
    seed = load_seed()
    kinds = {(i.kind, i.client_id, i.object_id) for i in seed.managed_identities}
    assert kinds == {("system", SYSTEM_CLIENT, SYSTEM_OID), ("user", USER_CLIENT, USER_OID)}


def _seed_with(*identities: dict[str, Any]) -> dict[str, Any]:
    return {
        "tenants": [{"id": CONTOSO, "domain": "contoso.example"}],
        "apps": [{"client_id": API, "tenant": "contoso.example", "display_name": "API"}],
        "managed_identities": list(identities),
    }


def _identity(**changes: Any) -> dict[str, Any]:
    return {
        "kind": "user",
        "client_id": str(uuid.uuid4()),
        "object_id": str(uuid.uuid4()),
        "tenant": "contoso.example",
        "display_name": "identity",
        "resource_id": USER_ID,
        **changes,
    }


@pytest.mark.parametrize(
    ("identities", "words"),
    [
        ([_identity(resource_id=None)], "managed_identities[0].resource_id: missing"),
        ([_identity(resource_id=VM_ID)], "not the id of a user-assigned identity"),
        ([_identity(kind="system", resource_id=USER_ID)], "the id of the resource it belongs"),
        (
            [
                _identity(kind="system", resource_id=None),
                _identity(kind="system", resource_id=None),
            ],
            "managed_identities[1].kind: a second system-assigned identity",
        ),
        ([_identity(client_id=API)], "managed_identities[0].client_id: '" + API),
        ([_identity(), _identity()], "managed_identities[1].resource_id"),
        ([_identity(tenant="nowhere.example")], "managed_identities[0].tenant"),
        ([_identity(kind="machine")], "managed_identities[0].kind: must be one of"),
    ],
)
def test_a_wrong_managed_identity_fails_at_start_with_its_path(
    identities: list[dict[str, Any]], words: str
) -> None:
    with pytest.raises(EmulatorError) as refused:
        seed_from_dict(_seed_with(*identities))
    assert words in str(refused.value)


# -- the command ----------------------------------------------------------------------------------
def test_the_emulator_command_prints_the_managed_identity_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .test_cli_and_seed import Command

    command = Command(tmp_path)
    try:
        host = command.field(r"AZURE_POD_IDENTITY_AUTHORITY_HOST=(\S+)")
        endpoint = command.field(r"IDENTITY_ENDPOINT=(\S+)")
        header = command.field(r"IDENTITY_HEADER=(\S+)")
        assert header == ensure_identity_header(tmp_path)
        assert endpoint == host + APP_SERVICE_PATH
        for name in MSAL_IDENTITY_SOURCES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", host)
        http = requests.Session()
        http.trust_env = False
        http.verify = str(tmp_path / "ca.pem")
        client = msal.ManagedIdentityClient(msal.SystemAssignedManagedIdentity(), http_client=http)
        result = client.acquire_token_for_client(resource=API_URI)
        assert claims(result["access_token"])["roles"] == ["Data.Read.All"]
    finally:
        command.close()
