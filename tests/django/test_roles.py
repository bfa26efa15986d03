"""App roles and groups → Django groups and the staff/superuser flags at each sign-in (removed
in Entra ID, removed here at the next one), the Django admin for a role mapped to staff, and
``entra_login_required``/``EntraLoginRequiredMixin`` with roles (sync and async)."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from werkzeug.serving import make_server

from entra_auth.emulator import EntraEmulator
from entra_auth.integrations.django.models import EntraUser

from ..helpers import MEGAN, WEB
from ..security.minting import Mint
from .conftest import Browser, text
from .test_signin import ADELE_OID, change_user

pytestmark = pytest.mark.django_db

EDITORS = "5e0c1f7a-0d55-4b6b-9b43-6a9c2f1d3e11"
READERS = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def adele() -> Any:
    return EntraUser.objects.get(object_id=ADELE_OID).user


def groups_of(user: Any) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


def without_admin_role(emulator: EntraEmulator) -> None:
    user = emulator.state.find_user(ADELE_OID)
    kept = tuple(r for r in user.app_roles if r.role != "Admin")
    change_user(emulator, ADELE_OID, app_roles=kept)


def test_app_roles_map_to_groups_and_staff_and_go_when_removed(
    browser: Browser, entra: EntraEmulator, settings: Any
) -> None:
    settings.ENTRA_SUPERUSER_ROLES = []  # managed: nobody is a superuser by role
    local = Group.objects.create(name="Given in Django")
    browser.sign_in()
    user = adele()
    assert groups_of(user) == ["Demo admins"]  # created on first use
    assert user.is_staff
    assert not user.is_superuser
    assert user.entra.roles == ["Admin"]
    user.groups.add(local)  # an administrator's own grant, not a role's
    browser.client.post("/logout")

    without_admin_role(entra)
    Browser(entra).sign_in()
    user = adele()
    assert groups_of(user) == ["Given in Django"]  # the role's group went, the local stayed
    assert not user.is_staff
    assert user.entra.roles == []


def test_flags_are_left_alone_without_their_settings(browser: Browser, settings: Any) -> None:
    del settings.ENTRA_STAFF_ROLES
    model = get_user_model()
    browser.sign_in()
    assert not adele().is_staff
    model.objects.update(is_staff=True)  # given in Django: no setting says otherwise
    Browser(browser.emulator).sign_in()
    assert adele().is_staff


def test_a_superuser_role_makes_a_superuser_who_is_staff(browser: Browser, settings: Any) -> None:
    del settings.ENTRA_STAFF_ROLES
    settings.ENTRA_SUPERUSER_ROLES = ["Admin"]
    browser.sign_in()
    user = adele()
    assert user.is_superuser
    assert user.is_staff


def test_the_admin_opens_for_a_role_mapped_to_staff(browser: Browser, entra: EntraEmulator) -> None:
    anonymous = browser.client.get("/admin/")
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"] == "/admin/login/?next=/admin/"
    to_sign_in = browser.client.get(anonymous.headers["Location"])
    assert to_sign_in.headers["Location"] == "/login?next=/admin/"  # the admin's login: Entra ID
    done = browser.sign_in(path=to_sign_in.headers["Location"])
    assert done.headers["Location"] == "/admin/"
    index = browser.client.get("/admin/")
    assert index.status_code == 200
    assert "Site administration" in text(index)

    megan = Browser(entra)
    megan.sign_in(user=MEGAN)
    refused = megan.client.get("/admin/")
    assert refused.status_code == 302  # the admin sends non-staff to its login page
    page = megan.client.get(refused.headers["Location"])
    assert page.status_code == 403
    assert "administrators" in text(page)
    assert megan.client.get("/admin/auth/user/").status_code == 302


@pytest.mark.parametrize("path", ["/admin-role", "/async-admin-role", "/cbv-admin"])
def test_a_role_protected_view(browser: Browser, entra: EntraEmulator, path: str) -> None:
    first = browser.client.get(path)
    assert first.status_code == 302
    assert first.headers["Location"] == f"/login?next={path}"
    browser.sign_in(path=path)
    assert browser.client.get(path).status_code == 200
    megan = Browser(entra)
    megan.sign_in(user=MEGAN, path=path)
    refused = megan.client.get(path)
    assert refused.status_code == 403
    assert "does not have the role this page needs" in text(refused)
    assert "Admin" in text(refused)
    as_api = megan.client.get(path, headers={"Accept": "application/json"})
    assert as_api.status_code == 403
    assert as_api.json() == {
        "error": "forbidden",
        "error_description": "Missing app role(s).",
        "roles": ["Admin"],
    }


@pytest.mark.parametrize("path", ["/page", "/async-page", "/cbv", "/cbv-async"])
def test_login_required_views_sync_and_async(browser: Browser, path: str) -> None:
    assert browser.client.get(path).headers["Location"] == f"/login?next={path}"
    browser.sign_in(path=path)
    assert browser.client.get(path).status_code == 200


def test_a_password_login_is_not_an_entra_sign_in(browser: Browser) -> None:
    get_user_model().objects.create_user("local", password="local-password-1")
    assert browser.client.login(username="local", password="local-password-1")
    assert browser.who()["authenticated"] is True
    assert browser.client.get("/page").headers["Location"] == "/login?next=/page"


# -- groups ---------------------------------------------------------------------------------------
def with_groups(emulator: EntraEmulator, *groups: str) -> None:
    """The web app's tokens carry ``groups`` (groupMembershipClaims), Adele in ``groups``."""
    seed = emulator.state.seed
    apps = tuple(
        dataclasses.replace(a, group_membership_claims="SecurityGroup") if a.client_id == WEB else a
        for a in seed.apps
    )
    emulator.state.seed = dataclasses.replace(seed, apps=apps)
    change_user(emulator, ADELE_OID, groups=groups)


def test_the_groups_claim_maps_to_groups(
    browser: Browser, entra: EntraEmulator, settings: Any
) -> None:
    settings.ENTRA_GROUP_GROUPS = {EDITORS.upper(): "Editors", READERS: ["Readers", "Staff"]}
    with_groups(entra, EDITORS)
    browser.sign_in()
    assert groups_of(adele()) == ["Demo admins", "Editors"]
    browser.client.post("/logout")
    with_groups(entra, READERS)
    Browser(entra).sign_in()
    assert groups_of(adele()) == ["Demo admins", "Readers", "Staff"]


@pytest.fixture
def fake_graph() -> Iterator[dict[str, Any]]:
    """A Microsoft Graph that answers ``transitiveMemberOf`` in two pages (the emulator's
    small Graph has no groups), and records what it was asked."""
    seen: dict[str, Any] = {"requests": []}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        seen["requests"].append(
            (path, environ.get("QUERY_STRING", ""), environ.get("HTTP_AUTHORIZATION", ""))
        )
        if not environ.get("HTTP_AUTHORIZATION", "").startswith("Bearer "):
            start_response("401 Unauthorized", [("Content-Type", "application/json")])
            return [b'{"error": {"code": "InvalidAuthenticationToken"}}']
        if "page=2" in environ.get("QUERY_STRING", ""):
            body: dict[str, Any] = {"value": [{"id": READERS}]}
        else:
            body = {
                "value": [{"id": EDITORS}, {"id": "not-mapped"}],
                "@odata.nextLink": f"{seen['base']}{path}?page=2",
            }
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    server = make_server("127.0.0.1", 0, app, threaded=True)
    seen["base"] = f"http://127.0.0.1:{server.port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def overflowing(emulator: EntraEmulator) -> None:
    """ID tokens as Entra ID sends them past 200 groups: no ``groups``, ``_claim_names``."""
    mint = Mint(emulator)

    def rewrite(claims: dict[str, Any]) -> str:
        claims = {k: v for k, v in claims.items() if k != "groups"}
        claims["_claim_names"] = {"groups": "src1"}
        claims["_claim_sources"] = {
            "src1": {"endpoint": "https://graph.windows.net/x/getMemberObjects"}
        }
        return mint.token(claims)

    emulator.rewrite_id_tokens(rewrite)


def test_overflowing_groups_are_read_from_graph(
    browser: Browser, entra: EntraEmulator, settings: Any, fake_graph: dict[str, Any]
) -> None:
    settings.ENTRA_GRAPH_URL = fake_graph["base"]
    settings.ENTRA_GROUP_GROUPS = {EDITORS: "Editors", READERS: "Readers"}
    with_groups(entra, EDITORS)
    overflowing(entra)
    browser.sign_in()
    assert groups_of(adele()) == ["Demo admins", "Editors", "Readers"]  # both pages
    paths = [p for p, _, _ in fake_graph["requests"]]
    assert paths == ["/v1.0/me/transitiveMemberOf/microsoft.graph.group"] * 2
    assert browser.who()["authenticated"] is True


def test_groups_that_graph_cannot_tell_are_removed(
    browser: Browser, entra: EntraEmulator, settings: Any
) -> None:
    """Fail closed: Graph unable to list the overflowing groups (here the emulator's Graph,
    which has no such route) leaves the user without the group-mapped Django groups."""
    settings.ENTRA_GROUP_GROUPS = {EDITORS: "Editors"}
    with_groups(entra, EDITORS)
    browser.sign_in()
    assert groups_of(adele()) == ["Demo admins", "Editors"]
    browser.client.post("/logout")
    overflowing(entra)
    Browser(entra).sign_in()
    assert groups_of(adele()) == ["Demo admins"]


def test_the_apps_own_template_replaces_the_librarys(
    browser: Browser, entra: EntraEmulator, settings: Any, tmp_path: Any
) -> None:
    (tmp_path / "entra_auth").mkdir()
    (tmp_path / "entra_auth" / "forbidden.html").write_text(
        '<p id="ours">{{ title }} / {{ current_user.name }} / {{ request.path }}</p>'
    )
    settings.ENTRA_TEMPLATE_DIRS = [str(tmp_path)]
    megan = Browser(entra)
    megan.sign_in(user=MEGAN)
    page = megan.client.get("/admin-role")
    assert page.status_code == 403
    assert text(page) == (
        '<p id="ours">You don&#39;t have access to this page / Megan Bowen / /admin-role</p>'
    )


def test_roles_from_a_tenant_not_trusted_for_admin_grant_nothing(
    browser: Browser, settings: Any
) -> None:
    """A multi-tenant app's roles are assigned by each tenant's own admins: only the tenants of
    ENTRA_ADMIN_TENANTS (by default the app's own) turn roles into Django groups and flags.
    Here Adele's tenant is not among them: her Admin role makes her neither staff nor a
    member of the role's group."""
    settings.ENTRA_SUPERUSER_ROLES = ["Admin"]
    settings.ENTRA_ADMIN_TENANTS = ["f4d2b1a0-6e2c-4f8e-9a57-3c1d2e4b5a69"]  # Fabrikam only
    browser.sign_in()
    user = adele()
    assert user.entra.roles == ["Admin"]  # recorded, for display
    assert not user.is_staff
    assert not user.is_superuser
    assert groups_of(user) == []


def test_only_superusers_may_point_an_entra_identity_at_a_user(
    browser: Browser, entra: EntraEmulator
) -> None:
    """Staff with the model permissions on EntraUser still cannot add or change rows: naming a
    (tid, oid) for a Django user is signing in as them."""
    from django.contrib.admin.sites import site
    from django.test import RequestFactory

    browser.sign_in()
    staff = adele()
    assert staff.is_staff
    assert not staff.is_superuser
    request = RequestFactory().get("/admin/")
    request.user = staff
    entra_admin = site._registry[EntraUser]
    assert not entra_admin.has_add_permission(request)
    assert not entra_admin.has_change_permission(request)
    request.user = get_user_model()(is_superuser=True, is_staff=True)
    assert entra_admin.has_add_permission(request)
    with pytest.raises(ValueError, match="GUID"):
        EntraUser.objects.link(staff, tenant_id="not-a-guid", object_id=ADELE_OID)
