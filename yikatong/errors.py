"""The one domain error base.

Every expected business failure is a :class:`YikatongError` subclass with a stable machine
``code`` (part of the API contract: clients switch on it) and an HTTP ``status``. The API edge
renders it as RFC 9457 problem details, the HTML edge as a readable message; both live in
:mod:`yikatong.web.errors`. Each code is registered with a one-line explanation, served at
``/problems/<code>`` so the ``type`` URI of a problem resolves to its documentation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    """Mark a message for extraction into the catalogues without translating it here."""
    return message


@dataclass(frozen=True)
class ProblemType:
    code: str
    status: int
    title: str
    explanation: str


PROBLEM_TYPES: dict[str, ProblemType] = {}


def problem_type(code: str, status: int, title: str, explanation: str) -> ProblemType:
    """Register a problem code; codes are stable and unique across the platform."""
    if code in PROBLEM_TYPES and PROBLEM_TYPES[code].status != status:
        raise ValueError(f"problem code {code!r} registered twice with different statuses")
    ptype = ProblemType(code, status, title, explanation)
    PROBLEM_TYPES[code] = ptype
    return ptype


class YikatongError(Exception):
    """Base of every expected failure. Subclasses set ``code``, ``status`` and ``title``."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request failed"
    explanation: ClassVar[str] = ""
    # When True the transaction owner commits what was flushed before the error was raised:
    # for failures that are themselves facts to keep (failed login counters, denied-access audit).
    keep_changes: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            problem_type(cls.code, cls.status, cls.title, cls.explanation or cls.__doc__ or "")

    def __init__(
        self,
        detail: str | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        keep_changes: bool | None = None,
        **extra: Any,
    ) -> None:
        # ``detail`` is an English message template (a msgid the web edge translates);
        # ``params`` fill its {name} fields; ``extra`` becomes extension members of the problem.
        self.detail_template = detail or self.title
        self.params = dict(params or {})
        self.detail = (
            self.detail_template.format(**self.params) if self.params else self.detail_template
        )
        self.extra = extra
        if keep_changes is not None:
            self.keep_changes = keep_changes
        super().__init__(self.detail)


def field_errors(error: YikatongError | None) -> dict[str, str]:
    """{field: message} of an error's ``errors`` member, for forms that show each next to its
    field; empty when there is no error or it names no field."""
    if error is None:
        return {}
    return {e["field"]: e["message"] for e in error.extra.get("errors", [])}


class InvalidInput(YikatongError):
    """Input is well-formed JSON/form data but breaks a business rule about its content."""

    code = "invalid_input"
    status = 422
    title = N_("Invalid input")

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        params: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail, params=params, **extra)
        if field is not None:
            self.extra.setdefault("errors", [{"field": field, "message": self.detail}])


class NotFound(YikatongError):
    """The requested object does not exist or is outside what the caller may see."""

    code = "not_found"
    status = 404
    title = N_("Not found")


class Conflict(YikatongError):
    """The request conflicts with the current state of the object."""

    code = "conflict"
    status = 409
    title = N_("Conflict")


class AuthenticationRequired(YikatongError):
    """The caller is not logged in, or the session has expired."""

    code = "authentication_required"
    status = 401
    title = N_("Authentication required")


class PermissionDenied(YikatongError):
    """The caller is logged in but their role or region does not allow this."""

    code = "permission_denied"
    status = 403
    title = N_("Permission denied")
    keep_changes = True  # the denial was audited before raising


class CsrfFailed(YikatongError):
    """A form or unsafe request arrived without a valid CSRF token."""

    code = "csrf_failed"
    status = 403
    title = N_("The form expired or did not come from this site; reload the page and retry")


class InvalidCharacters(YikatongError):
    """The request carries a NUL or another control character no field may hold."""

    code = "invalid_characters"
    status = 400
    title = N_("The request contains characters that are not allowed")


class RateLimited(YikatongError):
    """Too many attempts in a short time."""

    code = "rate_limited"
    status = 429
    title = N_("Too many attempts")


# Codes produced by the edges themselves rather than by a service.
problem_type(
    "validation_failed",
    422,
    N_("Request validation failed"),
    "The request body, query or path did not match the schema; `errors` names each field.",
)
problem_type(
    "internal_error",
    500,
    N_("Internal error"),
    "The platform failed unexpectedly; quote the request id to the operators.",
)
problem_type("http_error", 400, N_("HTTP error"), "A protocol-level error such as 404 or 405.")
