"""What a signed-in browser session holds, framework-free: one definition for every web adapter.

A web adapter (Flask's, FastAPI's) keeps a server-side session per signed-in browser, a mapping
the adapter's session library loads and saves under an id carried by the cookie. What goes in it
and how it is trusted is decided here, once:

- ``USER`` (the kept claims of the verified ID token), ``ACCOUNT`` (MSAL's home account id),
  ``CACHE_ID`` (the user's token-cache entry, when it lives outside the session), and ``SEAL``:
  an HMAC of the session id and that identity, with a key derived from the app's secret, which
  the session store never holds. A store writer (Redis, the session files) can delete or roll
  back sessions, never change whom one speaks for: an edited or moved record is not sealed, and
  nobody is signed in by it (HX11).
- ``SIGNED_IN_AT`` (when: a front-channel sign-out of that ``sid`` ends sessions older than it),
  ``LAST_SIGN_IN`` (the fingerprint of the finished sign-in's state and where it went, so the
  browser's Back onto the used callback URL goes on quietly), ``FRESH`` (the scopes just
  consented, to stop a loop back to the IdP for a token that still cannot be had).
- Nothing for an anonymous visitor: sign-ins under way travel in the browser's own sealed cookie
  (``entra_auth.pending``), so anonymous requests store nothing (HX04).

``failure_words`` turns a refused sign-in into what the person signing in reads, the same on
every adapter's page.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import aadsts
from ..errors import ConfigurationError, SignInError
from ..pending import PendingFlow, state_fingerprint
from ..tokens import Principal
from .signin import SignedIn

USER, ACCOUNT, FRESH = "entra_user", "entra_account", "entra_fresh_sign_in"
CACHE_ID = "entra_cache_id"
SEAL = "entra_seal"
SIGNED_IN_AT = "entra_signed_in_at"
LAST_SIGN_IN = "entra_last_sign_in"
# Set at sign-out, read by the first page after it: a plain cookie, because the session is gone
# and nothing may be stored for anonymous visitors.
SIGNED_OUT_COOKIE = "entra_signed_out"
# The ID token's claims a session keeps: who, for display and roles, and the sign-in's ``sid``.
SIGNED_IN_KEEP = (
    "oid",
    "tid",
    "sub",
    "name",
    "preferred_username",
    "email",
    "roles",
    "idp",
    "iss",
    "aud",
    "ver",
    "iat",
    "exp",
    "sid",
)
Session = MutableMapping[str, Any]


def checked_loader(loader: Callable[[SignedInUser], Any]) -> Callable[[SignedInUser], Any]:
    """The app's ``user_loader``, refused at registration when it is ``async def``: its
    coroutine is never None, so every user would pass the check."""
    if inspect.iscoroutinefunction(loader) or inspect.iscoroutinefunction(
        getattr(loader, "__call__", None)  # noqa: B004 - a callable object's method
    ):
        raise ConfigurationError(
            f"user_loader {getattr(loader, '__name__', type(loader).__name__)!r} is async.",
            remedy="Register a plain function (def, not async def): it is called where no event "
            "loop awaits it. For an async database, load the record in your endpoint.",
        )
    return loader


class SignedInUser:
    """The signed-in user, from the verified ID token (claims for display; key on ``key``).

    ``record`` is what the app's ``user_loader`` returned for this user, asked at most once per
    user object (an adapter makes one per request)."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, data: dict[str, Any], loader: Callable[[SignedInUser], Any] | None = None):
        self.claims: dict[str, Any] = dict(data)
        self.oid: str = data["oid"]
        self.tid: str = data["tid"]
        self.sub: str = data["sub"]
        self.name: str | None = data.get("name")
        self.username: str | None = data.get("preferred_username")
        roles = data.get("roles")
        self.roles: frozenset[str] = frozenset(
            r for r in (roles if isinstance(roles, list) else ()) if isinstance(r, str)
        )
        self._loader = loader

    @property
    def key(self) -> tuple[str, str]:
        """``(oid, tid)``: what to key your own user record on (never email or UPN)."""
        return (self.oid, self.tid)

    def has_roles(self, *roles: str) -> bool:
        """Every one of ``roles`` is among the app roles the ID token carries."""
        return set(roles) <= self.roles

    @property
    def record(self) -> Any:
        """What the app's ``user_loader`` returned for this user (None without one)."""
        if self._loader is None:
            return None
        if "_record" not in self.__dict__:  # once: the user object lives for one request
            found = self._loader(self)
            if inspect.isawaitable(found):  # never truthy by mistake: refused (fail closed)
                if inspect.iscoroutine(found):
                    found.close()
                found = None
            self.__dict__["_record"] = found
        return self.__dict__["_record"]

    def principal(self) -> Principal:
        return Principal(
            oid=self.oid,
            tid=self.tid,
            sub=self.sub,
            name=self.name,
            roles=self.roles,
            claims=self.claims,
        )

    def __repr__(self) -> str:
        return f"SignedInUser(oid={self.oid!r}, tid={self.tid!r})"


class AnonymousUser:
    """``current_user`` when nobody is signed in: falsy, ``is_authenticated`` False."""

    is_authenticated = False
    is_anonymous = True
    oid = tid = sub = name = username = record = None
    roles: frozenset[str] = frozenset()

    @property
    def claims(self) -> dict[str, Any]:
        return {}

    def has_roles(self, *roles: str) -> bool:
        return False

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "AnonymousUser()"


ANONYMOUS = AnonymousUser()


# -- the seal -------------------------------------------------------------------------------------
def seal(key: bytes, session_id: str, session: Session) -> str:
    """HMAC of the session's id and identity (user, MSAL account, token-cache id)."""
    identity = json.dumps(
        [session_id, session.get(USER), session.get(ACCOUNT), session.get(CACHE_ID)],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hmac.new(key, identity.encode(), hashlib.sha256).hexdigest()


def is_sealed(key: bytes, session_id: str | None, session: Session) -> bool:
    """The session speaks for the user it names: sealed, with this key, to this session id."""
    given = session.get(SEAL)
    if not isinstance(given, str) or not session_id:
        return False
    return hmac.compare_digest(given, seal(key, session_id, session))


def user_data(key: bytes, session_id: str | None, session: Session) -> dict[str, Any] | None:
    """The kept claims of the user the session is sealed to, or None (nobody signed in)."""
    data = session.get(USER)
    if not isinstance(data, dict) or not is_sealed(key, session_id, session):
        return None
    if not all(isinstance(data.get(claim), str) for claim in ("oid", "tid", "sub")):
        return None
    return data


def start(
    session: Session,
    signed_in: SignedIn,
    *,
    state: str,
    return_to: str,
    scopes: Sequence[str],
    after_interaction: bool,
    challenge: str | None = None,
    now: float | None = None,
) -> None:
    """Write a new sign-in into an emptied session (the caller has cleared it, given it a new
    id, and seals it once the token cache's place is known)."""
    now = time.time() if now is None else now
    claims = dict(signed_in.user.claims)
    session[USER] = {k: claims[k] for k in SIGNED_IN_KEEP if k in claims}
    session[ACCOUNT] = signed_in.account_id
    session[SIGNED_IN_AT] = now
    session[LAST_SIGN_IN] = {"state": state_fingerprint(state), "to": return_to}
    if after_interaction:  # remembered to stop a loop if the same need comes straight back
        session[FRESH] = {"scopes": list(scopes), "at": now, "claims": _claims_digest(challenge)}


def _claims_digest(claims: str | None) -> str:
    return hashlib.sha256(claims.encode()).hexdigest()[:32] if claims else ""


def start_after(session: Session, signed_in: SignedIn, flow: PendingFlow) -> None:
    """``start`` for the sign-in ``flow`` (the pending one the callback redeemed) just
    completed: its state, page to return to, scopes, whether it was an interaction, and the
    claims it was asked with (every adapter's callback)."""
    start(
        session,
        signed_in,
        state=str(flow.flow.get("state", "")),
        return_to=flow.return_to,
        scopes=flow.flow.get("scope", []),
        after_interaction=flow.interaction,
        challenge=flow.flow.get("claims_challenge"),
    )


def finished_here(session: Session, state: str) -> bool:
    """The sign-in with this state is the one this (signed-in) session finished last."""
    last = session.get(LAST_SIGN_IN)
    return isinstance(last, dict) and hmac.compare_digest(
        str(last.get("state", "")), state_fingerprint(state)
    )


def just_consented(
    session: Session,
    scopes: Sequence[str],
    *,
    claims: str | None = None,
    now: float | None = None,
) -> bool:
    """The user signed in for these scopes (and these ``claims``, a claims challenge) less
    than a minute ago: another trip to the IdP for them would loop. A challenge for other
    claims than that sign-in's (CAE revoked the session since) is a new need."""
    fresh = session.get(FRESH) or {}
    now = time.time() if now is None else now
    recent = now - float(fresh.get("at", 0)) < 60
    same_claims = claims is None or fresh.get("claims") == _claims_digest(claims)
    return recent and same_claims and set(scopes) <= set(fresh.get("scopes", []))


def ended_since_sign_in(session: Session, ended_at: float | None) -> bool:
    """A front-channel sign-out of the session's ``sid`` at ``ended_at`` ends this session
    unless it signed in again after it."""
    if ended_at is None:
        return False
    signed_in_at = session.get(SIGNED_IN_AT)
    return not isinstance(signed_in_at, (int, float)) or ended_at >= signed_in_at


# -- the sign-in pages' settings and notices --------------------------------------------------
def session_file_limit(settings: Mapping[str, Any]) -> int:
    """``ENTRA_SESSION_FILE_LIMIT``: how many signed-in sessions a file store holds (without
    Redis; only a sign-in makes a session, so it bounds users, not visits)."""
    limit = int(settings.get("ENTRA_SESSION_FILE_LIMIT") or 10_000)
    if limit < 1:
        raise ConfigurationError(
            f"ENTRA_SESSION_FILE_LIMIT is {limit}.",
            remedy="Set it to how many signed-in sessions the file store may hold (default "
            "10000), or use Redis (REDIS_URL) in production.",
        )
    return limit


def signed_out_cookie(*, secure: bool) -> dict[str, Any]:
    """The ``set_cookie`` keywords (Flask's, Starlette's and Django's alike) of the cookie a
    sign-out leaves for the "You are signed out" notice: five minutes, the whole site, out of
    scripts' reach, ``SameSite=Lax`` (it must come back from the IdP's top-level redirect)."""
    return {
        "key": SIGNED_OUT_COOKIE,
        "value": "1",
        "max_age": 300,
        "path": "/",
        "secure": secure,
        "httponly": True,
        "samesite": "Lax",
    }


def signed_out_notice_seen(
    *, has_cookie: bool, status: int, content_type: str, sign_out_page: bool
) -> bool:
    """Whether this response shows the signed-out notice, so the cookie behind it can go: the
    first page (200, HTML) after the IdP sent the browser back; not the sign-out route itself."""
    return (
        has_cookie
        and status == 200
        and content_type.split(";")[0].strip().lower() == "text/html"
        and not sign_out_page
    )


# -- what the person signing in reads ------------------------------------------------------------
@dataclass(frozen=True)
class FailureWords:
    """The sign-in error page's words for a refused sign-in: the user's, and the developer's
    (``detail``, ``developer_remedy``, ``code``) for the folded part and the log."""

    title: str
    message: str
    remedy: str
    detail: str
    developer_remedy: str | None
    code: str | None
    when: time.struct_time | None  # UTC, when only the user's organization can help


def failure_words(error: SignInError) -> FailureWords:
    """What a refused sign-in says: an AADSTS code the person can act on (their device,
    password, account, their organization's policy) in their words, whatever the OAuth
    ``error``; a cancelled sign-in as such; anything else as a failure to try again."""
    code = f"AADSTS{error.aadsts}" if error.aadsts else None
    entry = aadsts.lookup(error.aadsts) if error.aadsts else None
    words = entry.user if entry is not None else None
    if words is not None:
        return FailureWords(
            words.title,
            words.message,
            words.remedy,
            error.message,
            error.remedy,
            code,
            time.gmtime() if words.ask_admin else None,
        )
    if error.code == "access_denied":
        return FailureWords(
            "Sign-in was cancelled.",
            "The sign-in was cancelled, or the permissions the app asked for were declined.",
            "You can try again whenever you are ready.",
            error.message,
            error.remedy,
            code,
            None,
        )
    return FailureWords(
        "Sign-in failed.",
        "Microsoft Entra ID could not sign you in to this app.",
        "Try again. If it keeps happening, tell the app's administrator when it happened.",
        error.message,
        error.remedy,
        code,
        None,
    )


__all__ = [
    "ANONYMOUS",
    "AnonymousUser",
    "FailureWords",
    "SignedInUser",
    "ended_since_sign_in",
    "failure_words",
    "finished_here",
    "is_sealed",
    "just_consented",
    "seal",
    "start",
    "user_data",
]
