"""Errors of background jobs and their uploads, each with a stable code (see /problems)."""

from __future__ import annotations

from yikatong.errors import N_, Conflict, InvalidInput, YikatongError


class UploadTooLarge(YikatongError):
    """The uploaded file is larger than an import accepts; split it into several files."""

    code = "upload_too_large"
    status = 413
    title = N_("The file is too large")

    def __init__(self, limit_mib: int) -> None:
        super().__init__(
            N_("Files of at most {limit} MiB are accepted; split the file into several"),
            params={"limit": limit_mib},
            errors=[{"field": "file", "message": f"At most {limit_mib} MiB"}],
        )


class UploadTypeInvalid(InvalidInput):
    """The uploaded file is not of a type the import reads (.csv in UTF-8, .xlsx), or its
    content does not match its name."""

    code = "upload_type_invalid"
    title = N_("This file cannot be imported")

    def __init__(self, detail: str, **params: object) -> None:
        super().__init__(detail, field="file", params=params)


class UnknownJobKind(InvalidInput):
    """No background job of that kind exists."""

    code = "unknown_job_kind"
    title = N_("Unknown kind of job")


class IllegalJobTransition(Conflict):
    """A job cannot move to that status from where it is (e.g. a finished job cannot run)."""

    code = "illegal_job_transition"
    title = N_("The job cannot change to that status")
