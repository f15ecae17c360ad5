"""Background jobs (后台任务): long operations started from a page or the API, run in the
server process, with their progress, outcome and error report."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from yikatong.db import Base, BigIntPK, utcnow


class JobStatus(enum.StrEnum):
    """queued → running → succeeded or failed; a job that never started can fail too."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)

# The one table of allowed status changes (applied only by service.transition).
JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
}


class Job(Base):
    """One background job: what it is, who started it, how far it got, how it ended."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    kind: Mapped[str] = mapped_column(String(48))  # registered kind: "card_applications.import"
    status: Mapped[str] = mapped_column(String(16))
    # What the job is doing now (e.g. "checking", "writing"), for the progress display.
    stage: Mapped[str | None] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The uploaded file: its name as sent, size and SM3 digest; the stored copy is deleted
    # when the job ends (it holds personal data), so ``stored_path`` is then empty.
    file_name: Mapped[str | None] = mapped_column(String(200))
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    file_sm3: Mapped[str | None] = mapped_column(String(64))
    stored_path: Mapped[str | None] = mapped_column(String(500))
    # Who started it and where: the region scopes who else may see it.
    created_by_id: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    region_code: Mapped[str] = mapped_column(String(6))
    total: Mapped[int | None] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    # Counts of the outcome (rows read, imported, refused...), shown on the page and the API.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Every refused row: [{"row", "field", "message", "template", "params"}] (downloadable CSV).
    error_report: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Why the job failed: {"code", "message", "template", "params"}.
    failure: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The process running it ("host:pid:token") and when it last said it was alive.
    runner: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]

    __table_args__ = (
        Index("ix_jobs_status", "status"),
        Index("ix_jobs_region_created", "region_code", "created_at"),
    )
