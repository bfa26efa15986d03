"""The redirect URI's checks before a code is redeemed, framework-free: one order of decisions
for every web adapter (which translates the outcome into its own response).

1. A repeated parameter or a query string over 16 KiB: garbled, refused (RFC 6749 §3.1: no
   parameter may appear twice).
2. The state of the sign-in this (signed-in) session finished: the browser's Back onto the used
   callback URL; quietly on to the page that sign-in was for.
3. A state this browser already used: "already used" (AADSTS54005's words).
4. A state of no sign-in under way in this browser: sign-in starts again when none is under
   way (the flow expired), else "started somewhere else" (login CSRF, a callback URL from
   another browser).
5. Otherwise the flow, taken out of the browser's pending sign-ins, to redeem.

Then ``redeem``: the code redeemed through MSAL (the ID token verified), the app's
``user_loader`` asked; the adapter starts the session (a new id) or answers the refusal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msal

from .. import aadsts
from ..errors import ProviderUnavailableError, SignInError
from ..logs import inert
from ..pending import PendingFlow, PendingSignIns
from . import pages
from . import session as websession
from .signin import SignedIn, SignInFlow, safe_return_path

MAX_QUERY_LENGTH = 16384


@dataclass(frozen=True)
class GoTo:
    """Redirect the browser to ``location`` (a same-origin path)."""

    location: str


@dataclass(frozen=True)
class Refuse:
    """Answer with ``page``; the browser's pending sign-ins are left as they were."""

    page: pages.Page


def check(
    params: Mapping[str, Sequence[str]],
    query_length: int,
    *,
    signed_in: bool,
    session: websession.Session,
    pending: PendingSignIns,
    login_path: str,
) -> GoTo | Refuse | PendingFlow:
    """What the callback does before any token request: see the module's docstring.
    ``params`` holds every value of each query parameter; ``signed_in``: this session speaks for
    a user (sealed)."""
    if any(len(values) > 1 for values in params.values()) or query_length > MAX_QUERY_LENGTH:
        return Refuse(pages.garbled_callback(retry=login_path))
    values = params.get("state") or ()
    state = values[0] if values else None
    if state and signed_in and websession.finished_here(session, state):
        last = session.get(websession.LAST_SIGN_IN) or {}
        return GoTo(safe_return_path(last.get("to")))
    if state and pending.was_used(state):
        entry = aadsts.lookup(54005)
        fix = entry.fix if entry is not None else None
        return Refuse(pages.callback_already_used(fix, retry=login_path))
    flow = pending.take(state) if state else None
    if flow is None:
        if not pending.flows:  # the flow expired (or never was): start again, no error page
            return GoTo(login_path)
        return Refuse(pages.callback_from_elsewhere(retry=login_path))
    return flow


def refused(error: SignInError, *, retry: str, log: logging.Logger) -> pages.Page:
    """The page of a sign-in the provider or the ID-token checks refused, logged once (the
    code to look up, never anything of the token)."""
    code = f"AADSTS{error.aadsts}" if error.aadsts else None
    log.info(
        "Sign-in refused: %s%s (entra-auth explain %s)",
        inert(error.code, 64),
        f" {code}" if code else "",
        code or inert(error.code, 64),
    )
    return pages.sign_in_refused(websession.failure_words(error), retry=retry)


@dataclass(frozen=True)
class Redeemed:
    """A verified sign-in, its tokens in ``cache``: start the session."""

    signed_in: SignedIn
    cache: msal.SerializableTokenCache


@dataclass(frozen=True)
class ProviderDown:
    """The identity provider could not be reached or answered nonsense: the adapter's 503
    (``Retry-After``). The code is single-use, so the way on is a new sign-in once it is back,
    to the page the user was going to; nobody was signed out."""

    error: ProviderUnavailableError


def redeem(
    sign_in: SignInFlow,
    flow: PendingFlow,
    query: Mapping[str, str],
    *,
    user_loader: Callable[[websession.SignedInUser], Any] | None,
    retry: str,
    log: logging.Logger,
) -> Redeemed | Refuse | ProviderDown:
    """The code redeemed (blocking: MSAL's token request; an async adapter runs this in a
    worker thread), then the app's ``user_loader``: None refuses the user (no session)."""
    cache = msal.SerializableTokenCache()
    try:
        signed_in = sign_in.complete(flow.flow, dict(query), cache)
    except ProviderUnavailableError as exc:
        return ProviderDown(exc)
    except SignInError as exc:
        return Refuse(refused(exc, retry=retry, log=log))
    user = websession.SignedInUser(dict(signed_in.user.claims), user_loader)
    if user_loader is not None and user.record is None:  # an awaitable counts as None
        log.info("Sign-in refused by the app's user_loader (no record for this user).")
        return Refuse(pages.no_account())
    return Redeemed(signed_in, cache)


__all__ = ["GoTo", "ProviderDown", "Redeemed", "Refuse", "check", "redeem", "refused"]
