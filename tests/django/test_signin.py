"""Django web sign-in against the local Entra ID with the real MSAL: a real Django ``User``
keyed on ``(tid, oid)`` only, the session (no fixation, sealed), the callback's refusals
answered by the library's pages, sign-out here and at the IdP, front-channel sign-out."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import caches

from entra_auth.emulator import EntraEmulator
from entra_auth.integrations.django.models import EntraUser
from entra_auth.testing.driver import BrowserlessUser

from ..helpers import ADELE, CONTOSO, GUEST, MEGAN
from .conftest import Browser, query_of, text

pytestmark = pytest.mark.django_db

ADELE_OID = "0a9c7b3e-4d2f-4e8a-b1c6-5f3d2e1a0b9c"
BOB_GUEST_OID = "3d6f4e2b-7a5c-4b1d-84f9-8a6e5b4d3c2f"  # Bob's object in Contoso
BOB_HOME_OID = "2c7e5d3a-6f4b-4a0c-b3e8-7f5d4a3c2b1e"  # his own, in Fabrikam


def change_user(emulator: EntraEmulator, oid: str, **changes: Any) -> None:
    """Change a user of the emulator's directory (reset by the fixture after the test)."""
    seed = emulator.state.seed
    users = tuple(dataclasses.replace(u, **changes) if u.oid == oid else u for u in seed.users)
    emulator.state.seed = dataclasses.replace(seed, users=users)


def token_entries() -> list[str]:
    """The token-cache keys the default cache holds (LocMemCache's own key format)."""
    cache = caches["default"]
    return [k for k in cache._cache if "entra:tokens:" in k and not k.endswith(":lock")]


def test_sign_in_makes_a_django_user_keyed_on_tid_and_oid(browser: Browser) -> None:
    assert browser.who() == {"authenticated": False, "username": None, "entra": None}
    first = browser.client.get("/page")
    assert first.status_code == 302
    assert first.headers["Location"] == "/login?next=/page"
    done = browser.sign_in(path="/page")
    assert done.status_code == 302
    assert done.headers["Location"] == "/page"
    assert done.headers["Cache-Control"] == "no-store"
    assert done.headers["Referrer-Policy"] == "no-referrer"

    link = EntraUser.objects.get()
    assert (link.tenant_id, link.object_id) == (CONTOSO, ADELE_OID)
    user = link.user
    assert user.get_username() == f"{ADELE_OID}@{CONTOSO}"
    assert not user.has_usable_password()  # only Entra ID signs them in
    assert user.first_name == "Adele Vance"
    # Only the ``email`` claim fills it (absent unless asked for): never guessed from the UPN.
    assert user.email == ""
    assert link.username == ADELE
    assert link.display_name == "Adele Vance"
    assert link.last_sign_in_at is not None
    page = browser.client.get("/page")
    assert page.json() == {
        "authenticated": True,
        "username": user.get_username(),
        "entra": "Adele Vance",
    }
    assert page.headers["Cache-Control"] == "no-store"  # a signed-in user's page is theirs


def test_a_second_sign_in_is_the_same_user(browser: Browser, entra: EntraEmulator) -> None:
    browser.sign_in()
    first = EntraUser.objects.get().user_id
    browser.client.post("/logout")
    assert browser.who()["authenticated"] is False
    browser.sign_in()
    assert EntraUser.objects.get().user_id == first
    other = Browser(entra)  # another browser, another sign-in of the same person
    other.sign_in()
    assert get_user_model().objects.count() == 1
    assert other.who()["username"] == browser.who()["username"]


def test_a_changed_upn_and_email_are_the_same_user(browser: Browser, entra: EntraEmulator) -> None:
    browser.sign_in()
    user = EntraUser.objects.get().user
    browser.client.post("/logout")
    new = "adele.vance@contoso.example"
    change_user(entra, ADELE_OID, upn=new, email=new, name="Adele Vance-Smith")
    Browser(entra).sign_in(user=new)
    link = EntraUser.objects.get()
    assert link.user_id == user.pk  # the same User: keyed on (tid, oid), not the name
    assert link.username == new  # its display fields follow the ID token
    link.user.refresh_from_db()
    assert link.user.first_name == "Adele Vance-Smith"
    assert get_user_model().objects.count() == 1


def test_a_local_user_with_the_same_email_is_not_linked(browser: Browser) -> None:
    """Matching on email hands one person's account to whoever holds the address next (or
    claims it, unverified): a local account with Adele's email stays someone else's."""
    model = get_user_model()
    local = model.objects.create_user("adele-local", email=ADELE, password="local-password-1")
    local.is_staff = True
    local.save()
    browser.sign_in()
    signed_in = model.objects.get(username=browser.who()["username"])
    assert signed_in.pk != local.pk
    assert not signed_in.is_superuser
    assert not EntraUser.objects.filter(user=local).exists()
    assert model.objects.count() == 2


def test_a_local_user_holding_the_username_is_not_taken_over(browser: Browser) -> None:
    """A local user named like Adele's would-be username (``<oid>@<tid>``, a sign-up that
    squatted it) is not adopted by name either: Adele gets a user of her own, and the
    squatter's account (whose password someone else knows) is never hers."""
    model = get_user_model()
    squatter = model.objects.create_user(f"{ADELE_OID}@{CONTOSO}", password="local-password-1")
    browser.sign_in()
    who = browser.who()
    assert who["authenticated"] is True
    assert who["username"] != squatter.get_username()
    assert who["username"].startswith(f"{ADELE_OID}@{CONTOSO}-")
    assert not EntraUser.objects.filter(user=squatter).exists()
    assert EntraUser.objects.get(object_id=ADELE_OID).user.get_username() == who["username"]


def test_an_administrator_links_a_local_user_explicitly(browser: Browser) -> None:
    """The opt-in: a row naming the user's tid and oid (the admin's "Entra ID users", or
    ``EntraUser.objects.link``); their next sign-in is that local user."""
    model = get_user_model()
    local = model.objects.create_user("adele", email="old@example.com", password="pw-123456")
    EntraUser.objects.link(local, tenant_id=CONTOSO.upper(), object_id=ADELE_OID)
    browser.sign_in()
    assert browser.who()["username"] == "adele"
    assert model.objects.count() == 1
    local.refresh_from_db()
    assert local.first_name == "Adele Vance"  # display fields as the ID token says now


def test_a_guest_maps_by_their_object_in_the_resource_tenant(browser: Browser) -> None:
    browser.sign_in(user=GUEST)
    link = EntraUser.objects.get()
    assert (link.tenant_id, link.object_id) == (CONTOSO, BOB_GUEST_OID)
    assert link.object_id != BOB_HOME_OID  # not his home account's
    assert link.home_tenant_issuer  # the idp claim: a guest
    assert browser.who()["entra"] == "Bob Kelly (Fabrikam)"


def test_two_people_are_two_users(browser: Browser, entra: EntraEmulator) -> None:
    browser.sign_in()
    Browser(entra).sign_in(user=MEGAN)
    assert sorted(EntraUser.objects.values_list("username", flat=True)) == [ADELE, MEGAN]


def test_sign_in_gives_a_new_session_key(browser: Browser) -> None:
    """No session fixation: a session planted before the sign-in is deleted, its data gone."""
    planted = browser.client.session
    planted["planted"] = "by someone else"
    planted.save()
    before = planted.session_key
    browser.client.cookies["sessionid"] = before
    browser.sign_in()
    after = browser.client.cookies["sessionid"].value
    assert after != before
    assert not Session.objects.filter(session_key=before).exists()
    assert "planted" not in browser.session()
    assert browser.who()["authenticated"] is True


def test_an_edited_session_speaks_for_nobody(browser: Browser) -> None:
    """The sign-in is sealed to the session's key: a store writer who changes whom it names
    (here the oid of the kept claims) signs nobody in; the session is ended."""
    browser.sign_in()
    session = browser.session()
    user = dict(session["entra_user"])
    user["oid"] = "1b8d6c4f-5e3a-4f9b-a2d7-6e4c3f2b1a0d"  # Megan's
    session["entra_user"] = user
    session.save()
    assert browser.who() == {"authenticated": False, "username": None, "entra": None}
    assert browser.client.get("/page").status_code == 302


def test_a_session_of_a_deactivated_user_ends(browser: Browser) -> None:
    browser.sign_in()
    get_user_model().objects.update(is_active=False)
    assert browser.who()["authenticated"] is False
    assert "entra_user" not in browser.session()
    assert browser.sign_in().status_code == 403  # and cannot sign in again


def test_sign_out_ends_the_session_and_the_tokens_and_goes_to_the_idp(
    browser: Browser, entra: EntraEmulator
) -> None:
    browser.sign_in()
    key = browser.client.cookies["sessionid"].value
    assert len(token_entries()) == 1
    question = browser.client.get("/logout")  # a GET asks
    assert question.status_code == 200
    assert 'action="/logout"' in text(question)
    assert browser.who()["authenticated"] is True
    done = browser.client.post("/logout")
    assert done.status_code == 302
    location = done.headers["Location"]
    metadata = entra.http_session().get(f"{entra.authority}/v2.0/.well-known/openid-configuration")
    assert location.startswith(metadata.json()["end_session_endpoint"] + "?")
    assert query_of(location)["post_logout_redirect_uri"] == "http://localhost:5000/"
    assert not Session.objects.filter(session_key=key).exists()
    assert token_entries() == []
    assert browser.who()["authenticated"] is False
    assert done.cookies["entra_signed_out"].value == "1"
    assert browser.client.get("/").status_code == 200  # JSON: no notice shown, kept
    assert browser.client.cookies["entra_signed_out"].value == "1"
    browser.client.get("/html")  # the first page that can show it forgets it
    assert browser.client.cookies["entra_signed_out"]["max-age"] == 0
    # The IdP's page signs the browser out there and comes back.
    back = BrowserlessUser(browser.idp.session).sign_out(location)
    assert back.continue_to == "http://localhost:5000/"
    assert browser.client.get("/logout").status_code == 302  # nobody to sign out: no question


def test_sign_out_posted_from_another_site_is_refused(browser: Browser) -> None:
    browser.sign_in()
    refused = browser.client.post("/logout", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert browser.who()["authenticated"] is True
    same = browser.client.post("/logout", headers={"Origin": "http://testserver"})
    assert same.status_code == 302
    assert browser.who()["authenticated"] is False


# -- the callback's refusals: the library's pages -------------------------------------------------
def test_a_replayed_callback_is_refused_with_the_already_used_page(browser: Browser) -> None:
    params = browser.authorize(browser.begin())
    other = Browser(browser.emulator)
    other.client.cookies = browser.client.cookies  # the same browser, a copy of its cookies
    assert browser.callback(params).status_code == 302
    browser.client.post("/logout")
    replay = other.callback(params)  # the callback URL again, its flow already taken
    assert replay.status_code == 400
    assert "already used" in text(replay)
    assert replay.headers["Cache-Control"] == "no-store"
    assert "Traceback" not in text(replay)
    assert other.who()["authenticated"] is False


def test_a_state_from_another_browser_is_refused(browser: Browser, entra: EntraEmulator) -> None:
    victim = Browser(entra)
    victim.begin()  # the victim has a sign-in under way of their own
    attackers = browser.authorize(browser.begin())  # the attacker's callback URL
    answer = victim.callback(attackers)
    assert answer.status_code == 400
    assert "started somewhere else" in text(answer)
    assert victim.who()["authenticated"] is False
    assert EntraUser.objects.count() == 0


def test_a_callback_without_a_sign_in_under_way_starts_again(browser: Browser) -> None:
    answer = browser.callback({"code": "x", "state": "never-started"})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/login"


def test_a_garbled_callback_is_refused(browser: Browser) -> None:
    params = browser.authorize(browser.begin())
    answer = browser.callback(urlencode(params) + "&state=again")
    assert answer.status_code == 400
    assert "incomplete or garbled" in text(answer)


def test_back_to_the_callback_after_sign_in_goes_on_quietly(browser: Browser) -> None:
    params = browser.authorize(browser.begin("/page"))
    assert browser.callback(params).headers["Location"] == "/page"
    again = browser.callback(params)
    assert again.status_code == 302
    assert again.headers["Location"] == "/page"


def test_a_refused_sign_in_is_the_librarys_error_page(browser: Browser) -> None:
    params = browser.authorize(browser.begin(), consent=False)
    answer = browser.callback(params)
    assert answer.status_code == 400
    assert "Sign-in was cancelled" in text(answer)
    assert browser.who()["authenticated"] is False


def test_the_callback_logs_no_code(browser: Browser, caplog: pytest.LogCaptureFixture) -> None:
    params = browser.authorize(browser.begin())
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    assert browser.callback(params).status_code == 302
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert params["code"] not in logged
    assert params["state"] not in logged


# -- front-channel sign-out -----------------------------------------------------------------------
def test_front_channel_logout_ends_that_sign_in_without_its_cookie(
    browser: Browser, entra: EntraEmulator
) -> None:
    browser.sign_in()
    other = Browser(entra)
    other.sign_in(user=MEGAN)
    sid = browser.session()["entra_user"]["sid"]
    assert len(token_entries()) == 2
    frame = Browser(entra).client.get("/logout/front-channel?" + urlencode({"sid": sid}))
    assert frame.status_code == 200
    csp = frame.headers["Content-Security-Policy"]
    assert csp.startswith("frame-ancestors ")
    assert entra.urls.browser_base.rstrip("/") in csp.split()
    assert "X-Frame-Options" not in frame.headers
    assert browser.who()["authenticated"] is False
    assert other.who()["entra"] == "Megan Bowen"
    assert len(token_entries()) == 1  # the ended session's tokens went with it
    assert Browser(entra).client.get("/logout/front-channel").status_code == 400


def test_async_views_under_djangos_asgi_handler(browser: Browser) -> None:
    """The middleware and ``entra_login_required`` in async mode (ASGI): the session, the
    Django user and a token from the user's cache, the database reached from the event loop
    through Django's own thread hops."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    client = AsyncClient()
    anonymous = async_to_sync(client.get)("/async-page")
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"] == "/login?next=/async-page"
    browser.sign_in()
    client.cookies = browser.client.cookies
    page = async_to_sync(client.get)("/async-page")
    assert page.status_code == 200, page.content[:300]
    assert page.json()["username"] == f"{ADELE_OID}@{CONTOSO}"
    assert page.json()["token"] > 100
    assert async_to_sync(client.get)("/cbv-async").status_code == 200
    assert async_to_sync(client.get)("/async-admin-role").status_code == 200
