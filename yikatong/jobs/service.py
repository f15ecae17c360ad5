"""Background jobs (后台任务): record a job and its uploaded file, move it through its statuses,
keep its progress and outcome, and say who may see it.

A job is recorded by the request that asks for it (status ``queued``) and started by
:mod:`yikatong.jobs.runner` only once that request's transaction has committed. Each kind of
job registers itself with :func:`register_kind` (the card applications import, the resident
import); a kind's work and its final status commit in one transaction, so a job that did not
finish left nothing behind. Statuses change only through :func:`transition`, which applies
:data:`~yikatong.jobs.models.JOB_TRANSITIONS`.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from yikatong.audit import service as audit
from yikatong.crypto.sm3 import sm3_hex
from yikatong.db import utcnow
from yikatong.errors import N_, NotFound, YikatongError
from yikatong.jobs.errors import (
    IllegalJobTransition,
    UnknownJobKind,
    UploadTooLarge,
    UploadTypeInvalid,
)
from yikatong.jobs.models import ACTIVE_STATUSES, JOB_TRANSITIONS, Job, JobStatus
from yikatong.kit.actor import Actor, ActorKind, Permission

if TYPE_CHECKING:
    from yikatong.jobs.runner import JobContext

# 20 MiB holds about 200,000 rows of applications: more belongs in several files.
UPLOAD_LIMIT_MIB = 20
UPLOAD_LIMIT = UPLOAD_LIMIT_MIB * 1024 * 1024
# Room for the other form fields and the multipart framing around the file.
UPLOAD_BODY_LIMIT = UPLOAD_LIMIT + 64 * 1024
# Uploaded files wait here until their job ends (then they are deleted: they hold personal
# data). Private to the server's user; the job runs in the process that received the file.
UPLOAD_DIR = Path(tempfile.gettempdir()) / "yikatong-uploads"

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls (and .doc) container
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")
RECENT_LIMIT = 20


@dataclass(frozen=True)
class JobKind:
    """A kind of background job: who may start it, which files it takes, what it runs.

    ``run`` receives a :class:`~yikatong.jobs.runner.JobContext`; it opens its transactions
    with ``context.transaction()``, reports ``context.progress(...)`` and calls
    ``context.finish(...)`` inside the transaction that writes its work.
    """

    name: str
    label: str  # an English msgid, shown translated on the pages
    permission: Permission
    run: Callable[[JobContext], None]
    suffixes: frozenset[str]
    # The file's columns, for the upload page: every one it reads, and those it needs.
    columns: tuple[str, ...] = ()
    required: tuple[str, ...] = ()


_kinds: dict[str, JobKind] = {}
_kinds_lock = threading.Lock()


def register_kind(kind: JobKind) -> JobKind:
    """Make ``kind`` available (once per name; registering the same kind again is a no-op)."""
    with _kinds_lock:
        existing = _kinds.get(kind.name)
        if existing is not None and existing != kind:
            raise ValueError(f"job kind {kind.name!r} is already registered")
        _kinds[kind.name] = kind
    return kind


def find_kind(name: str) -> JobKind | None:
    return _kinds.get(name)


def kind_of(name: str) -> JobKind:
    kind = _kinds.get(name)
    if kind is None:
        raise UnknownJobKind(N_("No kind of job {kind}"), params={"kind": name}, field="kind")
    return kind


def kinds_for(actor: Actor) -> list[JobKind]:
    """The kinds of job ``actor`` may start, in a stable order."""
    return sorted((k for k in _kinds.values() if actor.can(k.permission)), key=lambda k: k.name)


# --- statuses -----------------------------------------------------------------------------


def transition(job: Job, to: JobStatus) -> None:
    """Move ``job`` to ``to`` if the table allows it; stamp when it started or ended."""
    current = JobStatus(job.status)
    if to not in JOB_TRANSITIONS[current]:
        raise IllegalJobTransition(
            N_("A job that is {current} cannot become {target}"),
            params={"current": current.value, "target": to.value},
        )
    job.status = to.value
    now = utcnow()
    if to is JobStatus.RUNNING:
        job.started_at = now
        job.heartbeat_at = now
    elif to in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        job.finished_at = now


def failure(code: str, template: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Why a job failed, as stored: a stable code, the English text and its msgid."""
    values = dict(params or {})
    return {
        "code": code,
        "message": template.format(**values) if values else template,
        "template": template,
        "params": values,
    }


def failure_of(error: YikatongError) -> dict[str, Any]:
    return failure(error.code, error.detail_template, error.params)


def report_of(error: YikatongError) -> list[dict[str, Any]]:
    """An error that refused the whole file as rows of the error report (e.g. a bad header)."""
    row = error.extra.get("row")
    return [
        {
            "row": row if isinstance(row, int) else None,
            "field": item.get("field", ""),
            "message": item.get("message", error.detail),
            "template": error.detail_template,
            "params": dict(error.params),
        }
        for item in error.extra.get("errors", [{"field": "", "message": error.detail}])
    ]


def _locked(session: Session, job_id: int) -> Job | None:
    return session.execute(
        select(Job).where(Job.id == job_id).with_for_update()
    ).scalar_one_or_none()


def start(session: Session, job_id: int, runner: str) -> Job | None:
    """queued → running, by ``runner``; None when the job is no longer waiting (e.g. it was
    failed as stale meanwhile)."""
    job = _locked(session, job_id)
    if job is None or job.status != JobStatus.QUEUED:
        return None
    transition(job, JobStatus.RUNNING)
    job.runner = runner
    return job


def record_progress(
    session: Session, job_id: int, done: int, total: int | None, stage: str | None
) -> None:
    """How far a running job got (and that it is alive)."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING.value)
        .values(done=done, total=total, stage=stage, heartbeat_at=utcnow())
    )


def heartbeat(session: Session, job_ids: Iterable[int]) -> None:
    ids = list(job_ids)
    if ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(ids), Job.status.in_([s.value for s in ACTIVE_STATUSES]))
            .values(heartbeat_at=utcnow())
        )


def finish(
    session: Session,
    job_id: int,
    *,
    succeeded: bool,
    result: Mapping[str, Any],
    errors: list[dict[str, Any]],
    failure: Mapping[str, Any] | None = None,
    done: int | None = None,
) -> Job:
    """Record how a running job ended, in the transaction of its work (so both or neither)."""
    job = _locked(session, job_id)
    if job is None:
        raise NotFound("No job {id}", params={"id": job_id})
    transition(job, JobStatus.SUCCEEDED if succeeded else JobStatus.FAILED)
    job.result = dict(result)
    job.error_report = errors
    job.failure = dict(failure) if failure is not None else None
    job.stage = None
    job.stored_path = None  # the runner deletes the file when the job ends
    if done is not None:
        job.done = done
        job.total = max(job.total or 0, done)
    return job


def fail(
    session: Session,
    job: Job,
    failure: Mapping[str, Any],
    errors: list[dict[str, Any]] | None = None,
) -> None:
    """Mark a job that could not complete as failed (its work, if any, was rolled back)."""
    transition(job, JobStatus.FAILED)
    job.failure = dict(failure)
    job.stage = None
    if errors is not None:
        job.error_report = errors


def forget_file(job: Job) -> None:
    """Delete the stored upload of a job that has ended (it holds personal data)."""
    if job.stored_path:
        Path(job.stored_path).unlink(missing_ok=True)
        job.stored_path = None


def active_jobs(session: Session) -> list[Job]:
    return list(
        session.scalars(select(Job).where(Job.status.in_([s.value for s in ACTIVE_STATUSES])))
    )


# --- uploads and submission ---------------------------------------------------------------


@dataclass(frozen=True)
class StoredUpload:
    path: Path
    name: str
    size: int
    sm3: str


def _display_name(filename: str) -> str:
    name = _UNSAFE_NAME.sub("_", Path(filename.replace("\\", "/")).name).strip()
    return name[-200:] or "upload"


def check_upload(data: bytes, filename: str, kind: JobKind) -> str:
    """The file's suffix if ``data`` is a file ``kind`` reads: the right suffix and content
    that matches it (a workbook is a zip container; a CSV is text)."""
    suffix = Path(filename).suffix.lower()
    accepted = ", ".join(sorted(kind.suffixes))
    if suffix not in kind.suffixes:
        raise UploadTypeInvalid(
            N_("Files of type {suffix} cannot be imported; use {accepted}"),
            suffix=suffix or "(none)",
            accepted=accepted,
        )
    if not data:
        raise UploadTypeInvalid(N_("The file is empty"))
    head = data[:8192]
    if suffix in (".xlsx", ".xlsm"):
        if not head.startswith(_ZIP_MAGIC):
            raise UploadTypeInvalid(
                N_("The file is named {suffix} but is not an Excel workbook"), suffix=suffix
            )
    elif head.startswith((_ZIP_MAGIC, _OLE_MAGIC)) or b"\x00" in head:
        raise UploadTypeInvalid(
            N_("The file is named {suffix} but is not a text file"), suffix=suffix
        )
    return suffix


def store_upload(stream: BinaryIO, filename: str, kind: JobKind) -> StoredUpload:
    """Check and keep an uploaded file for its job: at most :data:`UPLOAD_LIMIT` bytes, of a
    type ``kind`` reads, written readable by this user only."""
    data = stream.read(UPLOAD_LIMIT + 1)
    if len(data) > UPLOAD_LIMIT:
        raise UploadTooLarge(UPLOAD_LIMIT_MIB)
    suffix = check_upload(data, filename, kind)
    UPLOAD_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = UPLOAD_DIR / f"{uuid.uuid4().hex}{suffix}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return StoredUpload(path, _display_name(filename), len(data), sm3_hex(data))


def submit(
    session: Session,
    actor: Actor,
    kind_name: str,
    *,
    stream: BinaryIO,
    filename: str,
    params: Mapping[str, Any],
    factory: sessionmaker[Session],
) -> Job:
    """Record a job for an uploaded file (status ``queued``) and have it start once the
    caller's transaction commits; if that transaction rolls back, the file is deleted and
    nothing runs. ``factory`` makes the job's own sessions."""
    from yikatong.jobs import runner

    kind = kind_of(kind_name)
    audit.require(session, actor, kind.permission, "job.submit")
    upload = store_upload(stream, filename, kind)
    try:
        job = Job(
            kind=kind.name,
            status=JobStatus.QUEUED.value,
            params=dict(params),
            file_name=upload.name,
            file_size=upload.size,
            file_sm3=upload.sm3,
            stored_path=str(upload.path),
            created_by_id=actor.id,
            created_by=actor.name,
            region_code=actor.region_code,
            done=0,
            runner=runner.RUNNER_ID,
            created_at=utcnow(),
        )
        session.add(job)
        session.flush()
        audit.record(
            session,
            actor,
            "job.submit",
            object_type="job",
            object_id=job.id,
            region_code=actor.region_code,
            detail={"kind": kind.name, "file_sm3": upload.sm3, "size": upload.size, **params},
        )
    except BaseException:
        upload.path.unlink(missing_ok=True)
        raise
    runner.start_after_commit(session, job.id, actor, factory, upload.path)
    return job


# --- reading ------------------------------------------------------------------------------


def visible(actor: Actor, job: Job) -> bool:
    """Its creator sees a job; so does staff allowed to run its kind in its region."""
    if actor.kind not in (ActorKind.STAFF, ActorKind.SYSTEM):
        return False
    if job.created_by_id == actor.id and actor.kind is ActorKind.STAFF:
        return True
    kind = _kinds.get(job.kind)
    return kind is not None and actor.can(kind.permission) and actor.covers(job.region_code)


def _recover_stale(session: Session) -> None:
    """Whoever looks at jobs sees one whose server process is gone as failed, not running."""
    from yikatong.jobs import runner

    runner.recover(session)


def get(session: Session, actor: Actor, job_id: int) -> Job:
    _recover_stale(session)
    job = session.get(Job, job_id)
    if job is None or not visible(actor, job):
        raise NotFound("No job {id}", params={"id": job_id})
    return job


def recent(session: Session, actor: Actor, limit: int = RECENT_LIMIT) -> list[Job]:
    """The newest jobs ``actor`` may see."""
    _recover_stale(session)
    if actor.kind not in (ActorKind.STAFF, ActorKind.SYSTEM):
        return []
    kinds = [k.name for k in _kinds.values() if actor.can(k.permission)]
    query = select(Job).where(
        or_(
            Job.created_by_id == actor.id,
            Job.kind.in_(kinds) & Job.region_code.startswith(actor.scope),
        )
    )
    return [
        job
        for job in session.scalars(query.order_by(Job.id.desc()).limit(limit))
        if visible(actor, job)
    ]


# Spreadsheets run a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def error_csv(job: Job, translate: Callable[[str, Mapping[str, Any]], str] | None = None) -> str:
    """The error report as CSV (row, field, message), with a BOM so Excel reads UTF-8;
    ``translate`` renders each message in the reader's language (English without)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["row", "field", "message"])
    for item in job.error_report or []:
        message = (
            translate(item.get("template") or item["message"], item.get("params") or {})
            if translate is not None
            else item["message"]
        )
        writer.writerow(
            [_cell(item.get("row") or ""), _cell(item.get("field", "")), _cell(message)]
        )
    return out.getvalue()


def error_count(job: Job) -> int:
    return len(job.error_report or [])


STAGE_LABELS = {
    "checking": N_("Checking rows"),
    "writing": N_("Writing"),
    "importing": N_("Importing"),
}
