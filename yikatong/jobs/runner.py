"""Running background jobs in the server process, and finding the ones a dead process left.

A job starts only after the transaction that recorded it has committed
(:func:`start_after_commit`), on a worker thread with its own sessions: the request that asked
for it has long returned 202. The job owns its transactions (:meth:`JobContext.transaction`);
its progress goes to the job row in separate short transactions every few hundred rows, so a
page polling the job sees it move while the work is still uncommitted.

SQLite (development and tests; production runs PostgreSQL) has one writer at a time, and
this platform takes the write lock at the start of every transaction. While a job's own
transaction is open there, a second transaction would wait for the lock the same thread
holds, so progress inside it is not written: the job row shows the stage it entered last.

Every process names itself (``host:pid:token``) on the jobs it runs and, where the database
allows concurrent writers, refreshes their ``heartbeat_at``. :func:`recover` (at start-up and
when jobs are listed) fails each queued or running job whose process is gone: one on this
host whose pid is not alive or is now ours, or one whose heartbeat stopped. Such a job is
reported, never silently lost; as its work commits only with its final status, it left
nothing behind.

Tests run jobs in the caller's thread (:data:`inline`, on by default when
``YIKATONG_ENV=test``); one test runs the real thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from yikatong.db import transaction, utcnow
from yikatong.errors import N_, YikatongError
from yikatong.jobs import service
from yikatong.jobs.models import Job, JobStatus
from yikatong.kit.actor import Actor
from yikatong.settings import Environment, get_settings

log = logging.getLogger("yikatong.jobs")

HOSTNAME = socket.gethostname()
RUNNER_ID = f"{HOSTNAME}:{os.getpid()}:{secrets.token_hex(4)}"
HEARTBEAT_SECONDS = 15.0
STALE_AFTER = dt.timedelta(minutes=2)
# Two jobs at once at most: imports are heavy, and requests keep the other threads.
WORKERS = 2
# After each transaction of a job on SQLite, let requests waiting for the write lock take it.
SQLITE_YIELD_SECONDS = 0.002

inline: bool = get_settings().env is Environment.TEST

_executor: ThreadPoolExecutor | None = None
_active: set[int] = set()  # jobs this process has accepted and not yet ended
_lock = threading.Lock()
_heartbeat: threading.Thread | None = None


def _serial_writes(factory: sessionmaker[Session]) -> bool:
    bind = factory.kw.get("bind")
    return bind is None or bind.dialect.name == "sqlite"


class JobContext:
    """What a running job gets: who asked, with which file and parameters, and the means to
    open transactions, report progress and record its outcome."""

    def __init__(
        self,
        job: Job,
        kind: service.JobKind,
        actor: Actor,
        factory: sessionmaker[Session],
    ) -> None:
        self.job_id = job.id
        self.kind = kind
        self.actor = actor
        self.params: dict[str, Any] = dict(job.params or {})
        self.path = Path(job.stored_path or "")
        self.file_sm3 = job.file_sm3
        self.finished = False
        self._factory = factory
        self._serial = _serial_writes(factory)
        self._open = 0

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in a transaction of its own: committed when the block ends, rolled back
        when it raises."""
        try:
            with self._factory() as session, transaction(session):
                self._open += 1
                try:
                    yield session
                finally:
                    self._open -= 1
        finally:
            if self._serial:
                time.sleep(SQLITE_YIELD_SECONDS)

    def progress(self, done: int, total: int | None, stage: str | None = None) -> None:
        """Record how far the job got, in a short transaction of its own."""
        if self._serial and self._open:
            return  # the write lock is this job's own (see the module docstring)
        with self._factory() as session, transaction(session):
            service.record_progress(session, self.job_id, done, total, stage)

    def finish(
        self,
        session: Session,
        *,
        succeeded: bool,
        result: dict[str, Any],
        errors: list[dict[str, Any]],
        failure: dict[str, Any] | None = None,
        done: int | None = None,
    ) -> None:
        """Record the outcome in ``session``: call it in the transaction that writes the
        job's work, so the two commit together."""
        service.finish(
            session,
            self.job_id,
            succeeded=succeeded,
            result=result,
            errors=errors,
            failure=failure,
            done=done,
        )
        self.finished = True


def start_after_commit(
    session: Session, job_id: int, actor: Actor, factory: sessionmaker[Session], path: Path
) -> None:
    """Run job ``job_id`` once ``session`` commits; forget it (and its file) if it rolls back."""
    with _lock:
        _active.add(job_id)  # before the commit, so recovery never takes it for a dead one

    def committed(_session: Session) -> None:
        dispatch(job_id, actor, factory)

    def rolled_back(_session: Session) -> None:
        path.unlink(missing_ok=True)
        with _lock:
            _active.discard(job_id)
        event.remove(session, "after_commit", committed)

    event.listen(session, "after_commit", committed, once=True)
    event.listen(session, "after_rollback", rolled_back, once=True)


def dispatch(job_id: int, actor: Actor, factory: sessionmaker[Session]) -> None:
    """Run the job now (:data:`inline`) or on a worker thread."""
    global _executor  # noqa: PLW0603 - one pool per process, created on first use
    if inline:
        run(job_id, actor, factory)
        return
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="yikatong-job")
        executor = _executor
    executor.submit(run, job_id, actor, factory)
    if not _serial_writes(factory):
        _ensure_heartbeat(factory)


def _begin(job_id: int, actor: Actor, factory: sessionmaker[Session]) -> JobContext | None:
    with factory() as session, transaction(session):
        job = service.start(session, job_id, RUNNER_ID)
        if job is None:
            log.warning("job %s is no longer queued; not started", job_id)
            return None
        return JobContext(job, service.kind_of(job.kind), actor, factory)


def _fail(
    factory: sessionmaker[Session],
    job_id: int,
    failure: dict[str, Any],
    errors: list[dict[str, Any]] | None = None,
) -> None:
    with factory() as session, transaction(session):
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return
        service.fail(session, job, failure, errors)
        job.stored_path = None


def run(job_id: int, actor: Actor, factory: sessionmaker[Session]) -> None:
    """Run one job to its end: succeeded or failed, never left running."""
    path: str | None = None
    try:
        with factory() as session:
            job = session.get(Job, job_id)
            path = job.stored_path if job is not None else None
        context = _begin(job_id, actor, factory)
        if context is None:
            return
        try:
            context.kind.run(context)
        except YikatongError as exc:
            _fail(factory, job_id, service.failure_of(exc), service.report_of(exc))
        except Exception:
            log.exception("job %s (%s) stopped on an unexpected error", job_id, context.kind.name)
            _fail(factory, job_id, service.failure("internal_error", UNEXPECTED, {"id": job_id}))
        else:
            if not context.finished:
                _fail(factory, job_id, service.failure("no_result", NO_RESULT))
    except Exception:
        log.exception("job %s: its outcome could not be recorded", job_id)
    finally:
        if path:
            Path(path).unlink(missing_ok=True)
        with _lock:
            _active.discard(job_id)


UNEXPECTED = N_(
    "The job stopped on an unexpected error and none of its changes were kept; "
    "quote job {id} to support"
)
NO_RESULT = N_("The job ended without recording a result")
SERVER_STOPPED = N_(
    "The server stopped before this job finished; none of its changes were kept. Start it again."
)


# --- liveness: heartbeats and recovery ----------------------------------------------------


def _ensure_heartbeat(factory: sessionmaker[Session]) -> None:
    """Keep ``heartbeat_at`` fresh for this process's jobs while it has any."""
    global _heartbeat  # noqa: PLW0603 - one heartbeat thread per process
    with _lock:
        if _heartbeat is not None:
            return
        _heartbeat = threading.Thread(
            target=_beat, args=(factory,), name="yikatong-job-heartbeat", daemon=True
        )
        _heartbeat.start()


def _beat(factory: sessionmaker[Session]) -> None:
    global _heartbeat  # noqa: PLW0603 - the thread says it has ended, under the lock
    while True:
        time.sleep(HEARTBEAT_SECONDS)
        with _lock:
            ids = set(_active)
            if not ids:  # decided under the lock, so a new job starts a new heartbeat
                _heartbeat = None
                return
        try:
            with factory() as session, transaction(session):
                service.heartbeat(session, ids)
        except Exception:  # a missed beat is retried; recovery waits several of them
            log.warning("job heartbeat failed", exc_info=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def is_dead(job: Job, now: dt.datetime, *, heartbeats: bool) -> bool:
    """Whether the process that runs ``job`` is gone (see the module docstring)."""
    with _lock:
        if job.id in _active:
            return False
    host, _, rest = (job.runner or "").partition(":")
    pid_text = rest.partition(":")[0]
    if job.runner == RUNNER_ID:
        return True  # ours, yet not running here: its thread ended without recording it
    if host == HOSTNAME and pid_text.isdigit():
        pid = int(pid_text)
        if pid == os.getpid() or not _pid_alive(pid):
            return True  # a previous life of this process, or a process that has exited
        if not heartbeats:
            return False
    last = job.heartbeat_at or job.started_at or job.created_at
    return heartbeats and now - last > STALE_AFTER


def recover(session: Session) -> list[int]:
    """Fail every queued or running job whose process is gone; returns their ids."""
    bind = session.get_bind()
    heartbeats = bind.dialect.name != "sqlite"
    now = utcnow()
    failed = []
    for job in service.active_jobs(session):
        if is_dead(job, now, heartbeats=heartbeats):
            service.fail(session, job, service.failure("server_stopped", SERVER_STOPPED))
            service.forget_file(job)
            failed.append(job.id)
            log.warning("job %s (%s) failed: its server process is gone", job.id, job.kind)
    return failed


def recover_at_startup(factory: sessionmaker[Session]) -> None:
    """Start-up: report the jobs a previous life of the server left unfinished. A database
    not migrated yet has no jobs table; the server still starts."""
    try:
        with factory() as session, transaction(session):
            recover(session)
    except Exception:
        log.warning("could not check for unfinished jobs at start-up", exc_info=True)
