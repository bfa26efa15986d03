"""entra_auth.client.session: what a signed-in session holds and when it is trusted, on its own
(the Flask and FastAPI adapters' sign-in tests run it end to end)."""

from __future__ import annotations

from typing import Any

import pytest

from entra_auth.client import session as websession
from entra_auth.client.signin import SignedIn
from entra_auth.errors import SignInError
from entra_auth.tokens import Principal

KEY = b"k" * 32
CLAIMS = {
    "oid": "0a9c7b3e-4d2f-4e8a-b1c6-5f3d2e1a0b9c",
    "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "sub": "s" * 43,
    "name": "Adele Vance",
    "roles": ["Admin"],
    "sid": "sid-1",
    "nonce": "not kept",
}


def signed_in_session(session_id: str = "session-1") -> dict[str, Any]:
    session: dict[str, Any] = {}
    user = Principal(oid=CLAIMS["oid"], tid=CLAIMS["tid"], sub=CLAIMS["sub"], claims=CLAIMS)
    websession.start(
        session,
        SignedIn(user=user, account_id="home-account"),
        state="the-state",
        return_to="/profile",
        scopes=["User.Read"],
        after_interaction=True,
        now=1000.0,
    )
    session[websession.SEAL] = websession.seal(KEY, session_id, session)
    return session


def test_a_started_session_keeps_only_the_listed_claims_and_is_sealed_to_its_id() -> None:
    session = signed_in_session()
    assert "nonce" not in session[websession.USER]
    assert websession.user_data(KEY, "session-1", session) == {
        k: v for k, v in CLAIMS.items() if k != "nonce"
    }


@pytest.mark.parametrize(
    "tamper",
    [
        "moved to another session id",
        "user edited",
        "account edited",
        "cache id planted",
        "seal removed",
        "another key",
    ],
)
def test_a_record_changed_by_a_store_writer_speaks_for_nobody(tamper: str) -> None:
    """HX11's rule: the seal binds the identity to the session id with a key the store never
    holds; any change leaves nobody signed in."""
    session, session_id, key = signed_in_session(), "session-1", KEY
    if tamper == "moved to another session id":
        session_id = "session-2"
    elif tamper == "user edited":
        session[websession.USER]["oid"] = "another-user"
    elif tamper == "account edited":
        session[websession.ACCOUNT] = "another-account"
    elif tamper == "cache id planted":
        session[websession.CACHE_ID] = "someone-elses-tokens"
    elif tamper == "seal removed":
        del session[websession.SEAL]
    else:
        key = b"x" * 32
    assert websession.user_data(key, session_id, session) is None
    assert not websession.is_sealed(key, session_id, session)


def test_no_session_id_and_a_user_without_its_ids_are_nobody() -> None:
    session = signed_in_session()
    assert websession.user_data(KEY, None, session) is None
    session[websession.USER].pop("sub")
    session[websession.SEAL] = websession.seal(KEY, "session-1", session)
    assert websession.user_data(KEY, "session-1", session) is None


def test_back_onto_the_finished_callback_and_the_consent_loop_guard() -> None:
    session = signed_in_session()
    assert websession.finished_here(session, "the-state")
    assert not websession.finished_here(session, "another-state")
    assert websession.just_consented(session, ["User.Read"], now=1030.0)
    assert not websession.just_consented(session, ["User.Read"], now=1061.0)
    assert not websession.just_consented(session, ["Mail.Read"], now=1030.0)


def test_a_front_channel_sign_out_ends_sessions_older_than_it() -> None:
    session = signed_in_session()  # signed in at 1000
    assert websession.ended_since_sign_in(session, 1000.0)
    assert websession.ended_since_sign_in(session, 1500.0)
    assert not websession.ended_since_sign_in(session, 999.0)
    assert not websession.ended_since_sign_in(session, None)


def test_signed_in_user_asks_the_loader_once_and_anonymous_is_falsy() -> None:
    asked: list[websession.SignedInUser] = []
    user = websession.SignedInUser(CLAIMS, lambda u: asked.append(u) or {"id": 7})
    assert user.record == {"id": 7}
    assert user.record == {"id": 7}
    assert len(asked) == 1
    assert user.key == (CLAIMS["oid"], CLAIMS["tid"])
    assert user.has_roles("Admin")
    assert not websession.ANONYMOUS
    assert not websession.ANONYMOUS.is_authenticated
    assert websession.ANONYMOUS.record is None
    assert not websession.ANONYMOUS.has_roles()


def test_failure_words_speak_to_the_person_signing_in() -> None:
    blocked = websession.failure_words(
        SignInError("AADSTS53003: blocked.", aadsts=53003, code="access_denied")
    )
    assert blocked.code == "AADSTS53003"
    assert blocked.when is not None
    assert "AADSTS" not in blocked.title + blocked.message + blocked.remedy
    cancelled = websession.failure_words(SignInError("declined", code="access_denied"))
    assert cancelled.title == "Sign-in was cancelled."
    assert cancelled.when is None
    other = websession.failure_words(SignInError("AADSTS50126: wrong", aadsts=50126))
    assert other.title == "Sign-in failed."
    assert other.code == "AADSTS50126"
    assert other.detail == "AADSTS50126: wrong"


def test_the_callback_checks_in_their_order() -> None:
    """``client.callback.check``, the adapters' one order of decisions before a redemption
    (the catalogue's FL/HX05 cases run it end to end on both adapters)."""
    from entra_auth.client import callback
    from entra_auth.pending import PendingFlow, PendingSignIns

    def pending_with(*states: str) -> PendingSignIns:
        pending = PendingSignIns()
        for state in states:
            pending.add({"state": state}, return_to="/claims", interaction=False, now=0.0)
        return pending

    def check(params: dict[str, list[str]], pending: PendingSignIns, **kw: Any) -> Any:
        options: dict[str, Any] = {"signed_in": False, "session": {}, "login_path": "/login"}
        return callback.check(params, 10, pending=pending, **{**options, **kw})

    twice = check({"state": ["a", "b"]}, pending_with("a"))
    assert isinstance(twice, callback.Refuse)
    assert twice.page.context["title"] == "We couldn't sign you in"
    too_long = callback.check(
        {}, 20_000, signed_in=False, session={}, pending=pending_with(), login_path="/login"
    )
    assert isinstance(too_long, callback.Refuse)
    back = check(
        {"state": ["the-state"]}, pending_with(), signed_in=True, session=signed_in_session()
    )
    assert back == callback.GoTo("/profile")  # the session finished that sign-in
    flow = check({"state": ["s1"], "code": ["c"]}, pending := pending_with("s1"))
    assert isinstance(flow, PendingFlow)
    assert flow.return_to == "/claims"
    again = check({"state": ["s1"]}, pending)
    assert isinstance(again, callback.Refuse)
    assert again.page.context["code"] == "AADSTS54005"
    assert check({"state": ["s9"]}, pending_with()) == callback.GoTo("/login")  # expired
    foreign = check({"state": ["s9"]}, pending_with("s1"))
    assert isinstance(foreign, callback.Refuse)
    assert foreign.page.context["title"] == "This sign-in was started somewhere else"
    not_signed_in = check({"state": ["the-state"]}, pending_with(), session=signed_in_session())
    assert not_signed_in == callback.GoTo("/login")  # a sealed-session check is the adapter's
