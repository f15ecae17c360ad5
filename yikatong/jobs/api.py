"""Background jobs over HTTP (/api/v1/jobs): start an import by uploading its file, follow it,
fetch its error report; and the start-up check for jobs a stopped server left behind."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, Request, Response, UploadFile
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from yikatong.db import session_factory
from yikatong.deps import DbSession, StaffActor, verify_csrf_if_cookie_session
from yikatong.jobs import runner, service
from yikatong.jobs.errors import UploadTooLarge
from yikatong.jobs.schemas import JobOut
from yikatong.kit.params import RowId
from yikatong.problems import PROBLEM_MEDIA_TYPE

CSRF = [Depends(verify_csrf_if_cookie_session)]
UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {
        "description": "The file is larger than an import accepts (problem `upload_too_large`)",
        "content": {
            PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
        },
    }
}
# FastAPI's words for a body it cannot parse, so every such body is answered alike.
UNPARSABLE_BODY = "There was an error parsing the body"
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The error report: row, field, message (UTF-8 with BOM)",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


def request_factory(request: Request) -> sessionmaker[Session]:
    """The session factory of the request's application (the one ``get_db`` uses)."""
    return getattr(request.app.state, "session_factory", None) or session_factory()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """At start-up, fail the jobs a previous life of the server left unfinished."""
    factory = getattr(app.state, "session_factory", None) or session_factory()
    runner.recover_at_startup(factory)
    yield


class UploadRoute(APIRoute):
    """A route that takes a file: a body declared larger than the limit is refused before it
    is read (the route's ``max_body_size`` stops one that does not declare its size), and a
    malformed multipart body is answered like any unparsable body of the API."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > service.UPLOAD_BODY_LIMIT:
                raise UploadTooLarge(service.UPLOAD_LIMIT_MIB)
            try:
                return await handler(request)
            except HTTPException as exc:
                if isinstance(exc.__context__, MultiPartException):
                    raise HTTPException(400, UNPARSABLE_BODY) from exc
                raise

        return limited


def accept_upload(
    request: Request,
    response: Response,
    session: Session,
    actor: StaffActor,
    kind: str,
    file: UploadFile,
    params: dict[str, Any],
) -> JobOut:
    """Record a job for an uploaded file and answer 202 with it: the job starts once this
    request has committed."""
    job = service.submit(
        session,
        actor,
        kind,
        stream=file.file,
        filename=file.filename or "",
        params=params,
        factory=request_factory(request),
    )
    out = JobOut.of(job)
    response.headers["Location"] = out.url
    return out


router = APIRouter(tags=["jobs"], lifespan=lifespan)

UploadedFile = Annotated[UploadFile, File(description="A .csv (UTF-8) or .xlsx file")]
SkipBad = Annotated[
    bool,
    Form(description="Write the good rows and report the bad ones (default: all or nothing)"),
]


def submit(
    request: Request,
    response: Response,
    session: DbSession,
    actor: StaffActor,
    kind: Annotated[str, Form(min_length=1, max_length=48, examples=["residents.import"])],
    file: UploadedFile,
    skip_bad: SkipBad = False,
) -> JobOut:
    """Start an import job from an uploaded file (202); poll the job for its progress."""
    return accept_upload(request, response, session, actor, kind, file, {"skip_bad": skip_bad})


router.add_api_route(
    "",
    submit,
    methods=["POST"],
    response_model=JobOut,
    status_code=202,
    dependencies=CSRF,
    responses=UPLOAD_RESPONSES,
    route_class_override=UploadRoute,
    max_body_size=service.UPLOAD_BODY_LIMIT,
)


@router.get("", response_model=list[JobOut])
def recent(session: DbSession, actor: StaffActor) -> list[JobOut]:
    """The newest jobs you may see (yours, and those of your region you may run)."""
    return [JobOut.of(job) for job in service.recent(session, actor)]


@router.get("/{job_id:int}", response_model=JobOut)
def read(job_id: RowId, session: DbSession, actor: StaffActor) -> JobOut:
    """One job: status, stage, progress (done of total), and when finished its counts."""
    return JobOut.of(service.get(session, actor, job_id))


@router.get("/{job_id:int}/errors", response_class=Response, responses=CSV_RESPONSE)
def errors(job_id: RowId, session: DbSession, actor: StaffActor) -> Response:
    """The job's error report as CSV: every refused row with its field and reason."""
    job = service.get(session, actor, job_id)
    return Response(
        service.error_csv(job),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="job-{job.id}-errors.csv"'},
    )
