"""Batch imports on the console (批量导入): upload a file of card applications or residents,
watch the job's progress (htmx polls every second), read and download its error report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from yikatong.deps import DbSession, StaffActor, verify_csrf
from yikatong.errors import N_, InvalidInput, YikatongError, field_errors
from yikatong.jobs import service
from yikatong.jobs.api import UploadRoute, request_factory
from yikatong.jobs.models import ACTIVE_STATUSES, Job, JobStatus
from yikatong.kit.actor import Actor, Permission
from yikatong.kit.params import RowId
from yikatong.web.i18n import lazy_gettext, locale_of, translate_message, use_locale
from yikatong.web.navigation import NavItem, register_nav
from yikatong.web.templating import render

router = APIRouter(prefix="/staff/imports", include_in_schema=False, route_class=UploadRoute)

register_nav(
    NavItem(
        "imports",
        lazy_gettext("Batch import"),
        "/staff/imports",
        permission=Permission.CARDS_OPERATE.value,
        icon="file",
        order=25,
    )
)

MODES = ("all_or_nothing", "skip_bad")
# A page lists this many refused rows; the CSV download has them all.
SHOWN_ERRORS = 200
STATUS_TONES = {"queued": "warning", "running": "info", "succeeded": "success", "failed": "danger"}


def _kind_label(job: Job) -> str:
    kind = service.find_kind(job.kind)
    return kind.label if kind is not None else job.kind


def _job_context(job: Job) -> dict[str, Any]:
    return {
        "job": job,
        "kind_label": _kind_label(job),
        "active": JobStatus(job.status) in ACTIVE_STATUSES,
        "stage_label": service.STAGE_LABELS.get(job.stage or "", job.stage or ""),
        "tone": STATUS_TONES.get(job.status, "secondary"),
        "errors": (job.error_report or [])[:SHOWN_ERRORS],
        "error_count": service.error_count(job),
    }


def _page(
    request: Request,
    session: DbSession,
    actor: Actor,
    *,
    form: dict[str, str] | None = None,
    error: YikatongError | None = None,
) -> Response:
    kinds = service.kinds_for(actor)
    return render(
        request,
        "jobs/imports.html",
        {
            "kinds": kinds,
            "jobs": [_job_context(job) for job in service.recent(session, actor)],
            "form": form or {"kind": kinds[0].name if kinds else "", "mode": MODES[0]},
            "modes": MODES,
            "limit_mib": service.UPLOAD_LIMIT_MIB,
            "error": error,
            "field_errors": field_errors(error),
        },
        status_code=error.status if error is not None else 200,
    )


@router.get("")
def imports(request: Request, session: DbSession, actor: StaffActor) -> Response:
    """The upload form and the recent import jobs with their outcome."""
    return _page(request, session, actor)


@router.post("", dependencies=[Depends(verify_csrf)], max_body_size=service.UPLOAD_BODY_LIMIT)
def upload(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    file: Annotated[UploadFile | None, File()] = None,
    kind: Annotated[str, Form(max_length=48)] = "",
    mode: Annotated[str, Form(max_length=16)] = MODES[0],
) -> Response:
    """Start an import: the job runs in the background; its page shows the progress."""
    form = {"kind": kind, "mode": mode}
    try:
        with session.begin_nested():
            if mode not in MODES:
                raise InvalidInput(N_("Choose how to treat bad rows"), field="mode")
            if file is None or not file.filename:
                raise InvalidInput(N_("Choose the file to import"), field="file")
            job = service.submit(
                session,
                actor,
                kind,
                stream=file.file,
                filename=file.filename,
                params={"skip_bad": mode == "skip_bad"},
                factory=request_factory(request),
            )
    except YikatongError as exc:
        if exc.keep_changes:
            session.commit()
        return _page(request, session, actor, form=form, error=exc)
    return RedirectResponse(f"/staff/imports/{job.id}", status_code=303)


@router.get("/{job_id}")
def job_page(request: Request, session: DbSession, actor: StaffActor, job_id: RowId) -> Response:
    """One import: progress while it runs, then its counts and refused rows."""
    job = service.get(session, actor, job_id)
    return render(request, "jobs/job.html", _job_context(job))


@router.get("/{job_id}/progress")
def progress(request: Request, session: DbSession, actor: StaffActor, job_id: RowId) -> Response:
    """The progress fragment htmx polls; once the job has ended it stops polling."""
    job = service.get(session, actor, job_id)
    return render(request, "jobs/_progress.html", _job_context(job))


@router.get("/{job_id}/errors.csv")
def errors_csv(request: Request, session: DbSession, actor: StaffActor, job_id: RowId) -> Response:
    """The refused rows as CSV, the messages in the clerk's language."""
    job = service.get(session, actor, job_id)
    with use_locale(locale_of(request)):
        body = service.error_csv(job, translate_message)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{job.id}-errors.csv"'},
    )
