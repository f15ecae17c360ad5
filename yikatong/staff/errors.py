"""Errors of staff login and account management."""

from __future__ import annotations

from yikatong.errors import N_, AuthenticationRequired, Conflict, RateLimited


class LoginFailed(AuthenticationRequired):
    """Wrong user name, password or one-time code; the attempt was counted."""

    code = "login_failed"
    title = N_("Wrong user name, password or verification code")
    keep_changes = True  # the failed attempt and its audit entry must persist


class AccountLocked(RateLimited):
    """Too many failed logins: the account is locked for a while."""

    code = "account_locked"
    title = N_("Account locked after repeated failed logins")
    keep_changes = True


class SessionExpired(AuthenticationRequired):
    """The login session is missing, expired or was ended."""

    code = "session_expired"
    title = N_("Please log in")


class UsernameTaken(Conflict):
    """Another staff account already uses this user name."""

    code = "username_taken"
    title = N_("User name already taken")
