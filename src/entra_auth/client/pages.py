"""What the library's pages say, once for every web adapter: each function is one page's
template, status and words (for the person in front of the browser; the developer's detail
goes in the folded part). An adapter renders ``Page.template`` with ``Page.context`` and adds
what only it knows (its URLs, the request, the current user)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import InteractionRequired, KeySetUnavailableError, ProviderUnavailableError
from .session import FailureWords, SignedInUser


def headers(frame_ancestors: str | None = None) -> dict[str, str]:
    """The headers of every answer the sign-in routes give: never cached, no referrer (the
    callback's URL holds the code), no sniffing, never framed, except the front-channel route,
    which only the IdP's sign-out page (``frame_ancestors``) may frame."""
    answer = {
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
    if frame_ancestors:
        answer["Content-Security-Policy"] = f"frame-ancestors {frame_ancestors}"
    else:
        answer["Content-Security-Policy"] = "frame-ancestors 'none'"
        answer["X-Frame-Options"] = "DENY"
    return answer


@dataclass(frozen=True)
class Page:
    template: str
    status: int
    context: dict[str, Any] = field(default_factory=dict)


def sign_in_error(
    title: str,
    message: str,
    *,
    retry: str,
    remedy: str = "Start the sign-in again from this app.",
    detail: str | None = None,
    developer_remedy: str | None = None,
    code: str | None = None,
    when: time.struct_time | None = None,
) -> Page:
    """``when`` (UTC): said on the page when only the user's organization can help, whose
    sign-in logs find the attempt by its time."""
    return Page(
        "entra_auth/sign_in_error.html",
        400,
        {
            "title": title,
            "message": message,
            "remedy": remedy,
            "detail": detail,
            "developer_remedy": developer_remedy,
            "code": code,
            "retry": retry,
            "when_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", when) if when else None,
            "when_text": time.strftime("%Y-%m-%d %H:%M UTC", when) if when else None,
        },
    )


def sign_in_refused(words: FailureWords, *, retry: str) -> Page:
    """A refused sign-in, in ``session.failure_words``'s words."""
    return sign_in_error(
        words.title,
        words.message,
        remedy=words.remedy,
        detail=words.detail,
        developer_remedy=words.developer_remedy,
        code=words.code,
        retry=retry,
        when=words.when,
    )


def garbled_callback(*, retry: str) -> Page:
    return sign_in_error(
        "We couldn't sign you in",
        "The answer from the sign-in service was incomplete or garbled.",
        detail="The callback's query string repeats a parameter or is over 16 KiB.",
        retry=retry,
    )


def callback_already_used(fix: str | None, *, retry: str) -> Page:
    """The browser's sign-in response was used already (a reload, Back after signing in in a
    session that did not finish it): AADSTS54005's words, the code folded."""
    return sign_in_error(
        "This sign-in link was already used",
        "This sign-in response was already used: the page was reloaded, or Back was pressed "
        "after signing in.",
        remedy="Sign in again to continue.",
        detail=fix,
        code="AADSTS54005",
        retry=retry,
    )


def callback_from_elsewhere(*, retry: str) -> Page:
    return sign_in_error(
        "This sign-in was started somewhere else",
        "This sign-in response does not belong to a sign-in this browser started.",
        remedy="Sign in again from this app.",
        detail="No sign-in under way in this browser has this state (a callback URL from "
        "another browser, or a forged one).",
        retry=retry,
    )


def missing_roles(user: SignedInUser, missing: list[str], *, retry: str) -> Page:
    return Page(
        "entra_auth/forbidden.html",
        403,
        {
            "title": "You don't have access to this page",
            "message": f"You are signed in as {user.username or user.name or 'this account'}, "
            "which does not have the role this page needs.",
            "remedy": "Ask the app's administrator for access, then sign in again.",
            "detail": f"The ID token's roles claim lacks: {', '.join(missing)}.",
            "developer_remedy": "Assign the app role to the user or a group (Entra admin center "
            "→ Enterprise applications → this app → Users and groups); app roles arrive with the "
            "next sign-in's ID token.",
            "roles": missing,
            "retry": retry,
        },
    )


def missing_roles_json(missing: list[str]) -> dict[str, Any]:
    """The same refusal for an API-style request."""
    return {"error": "forbidden", "error_description": "Missing app role(s).", "roles": missing}


def no_account() -> Page:
    return Page(
        "entra_auth/forbidden.html",
        403,
        {
            "title": "You don't have access to this app",
            "message": "You signed in with Microsoft, but this app has no account for you.",
            "remedy": "Ask the app's administrator for access.",
            "detail": "The app's user_loader returned None for this user.",
        },
    )


def no_token_after_consent(error: InteractionRequired) -> Page:
    """The user just signed in for these scopes and there is still no token: sending them
    back to the IdP would loop."""
    return Page(
        "entra_auth/forbidden.html",
        403,
        {
            "title": "This page is not available to you right now",
            "message": "You are signed in, but the app could not get a token for this page.",
            "remedy": "Try again later, or ask the app's administrator.",
            "detail": error.message,
            "developer_remedy": error.remedy,
        },
    )


def sign_out_question(*, form: str) -> Page:
    return Page(
        "entra_auth/sign_out.html",
        200,
        {
            "title": "Sign out?",
            "message": "You will be signed out of this app and of your Microsoft account in "
            "this browser.",
            "form": form,
        },
    )


# The store-down page when the app's own template cannot render (it needed the store too).
STORE_DOWN_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Temporarily unavailable</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto">
<h1>Temporarily unavailable</h1><p id="message">The session store is unavailable, so this
page cannot be shown right now. Nothing was lost: try again in a moment.</p></body></html>"""


def store_unavailable(*, retry: str | None) -> Page:
    return Page(
        "entra_auth/store_unavailable.html",
        503,
        {
            "title": "Temporarily unavailable",
            "message": "The session store is unavailable, so this page cannot be shown right "
            "now. Nothing was lost.",
            "remedy": "Try again in a moment.",
            "retry": retry,
        },
    )


def provider_unavailable(error: ProviderUnavailableError, *, retry: str | None) -> Page:
    """503 (502 for nonsense): the provider's message in words, the step and host folded."""
    status = error.http_status
    message, remedy = error.message, error.remedy
    if isinstance(error, KeySetUnavailableError):
        # Raised by discovery/keys with the URL and cause in its message: those are for the
        # log; the user reads words.
        message = (
            "The sign-in service (Microsoft Entra ID) is not available right now. Nothing was lost."
        )
        remedy = "Try again in a few seconds."
    service = "Microsoft Graph" if error.step == "Graph" else "The sign-in service"
    return Page(
        "entra_auth/unavailable.html",
        status,
        {
            "title": f"{service} is unavailable"
            if status == 503
            else f"{service} answered unexpectedly",
            "message": message,
            "remedy": remedy,
            "retry": retry,
            "retry_after": (error.retry_after or 5) if status == 503 else None,
            "detail": f"{error.step or 'request'} to {error.host or ''}: {error.cause or ''}",
            "code": error.code,
        },
    )


def provider_unavailable_json(error: ProviderUnavailableError) -> dict[str, Any]:
    """The same answer for an API-style request."""
    status = error.http_status
    message = provider_unavailable(error, retry=None).context["message"]
    return {
        "error": "temporarily_unavailable" if status == 503 else "bad_gateway",
        "error_description": message,
        "code": error.code,
        "retry_after": (error.retry_after or 5) if status == 503 else None,
    }


__all__ = [
    "STORE_DOWN_HTML",
    "Page",
    "callback_already_used",
    "callback_from_elsewhere",
    "garbled_callback",
    "headers",
    "missing_roles",
    "missing_roles_json",
    "no_account",
    "no_token_after_consent",
    "provider_unavailable",
    "provider_unavailable_json",
    "sign_in_error",
    "sign_in_refused",
    "sign_out_question",
    "store_unavailable",
]
