"""API shapes of background jobs."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from yikatong.jobs.models import Job, JobStatus
from yikatong.jobs.service import error_count


class JobFailureOut(BaseModel):
    code: str = Field(description="Stable: rows_refused, import_file_invalid, server_stopped...")
    message: str


class JobOut(BaseModel):
    id: int
    kind: str = Field(examples=["card_applications.import"])
    status: JobStatus
    stage: str | None = Field(description="What a running job is doing: checking, writing...")
    file_name: str | None
    file_size: int | None
    total: int | None = Field(description="Rows to go through, when known")
    done: int = Field(description="Rows gone through so far")
    created_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    result: dict[str, int | bool | str] | None = Field(
        description="The outcome's counts: rows, imported, rejected_rows; and the mode"
    )
    failure: JobFailureOut | None
    error_count: int = Field(description="Refused fields in the error report")
    url: str
    errors_url: str = Field(description="The error report as CSV (row, field, message)")

    @classmethod
    def of(cls, job: Job) -> JobOut:
        url = f"/api/v1/jobs/{job.id}"
        return cls(
            id=job.id,
            kind=job.kind,
            status=JobStatus(job.status),
            stage=job.stage,
            file_name=job.file_name,
            file_size=job.file_size,
            total=job.total,
            done=job.done,
            created_by=job.created_by,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            result=job.result,
            failure=JobFailureOut(code=job.failure["code"], message=job.failure["message"])
            if job.failure
            else None,
            error_count=error_count(job),
            url=url,
            errors_url=f"{url}/errors",
        )
