"""Turning errors into answers: RFC 9457 problem details for the API, pages for people.

One mapping for both edges, so a code seen in the API is the code a clerk can quote from a page.
A 500 never carries internals: the exception is logged with the request id, and the answer
names only that id.
"""

from __future__ import annotations

import logging
from typing import Any, cast
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from yikatong.errors import (
    N_,
    PROBLEM_TYPES,
    AuthenticationRequired,
    YikatongError,
    problem_type,
)

log = logging.getLogger("yikatong.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"

problem_type(
    "invalid_data",
    422,
    N_("Invalid data"),
    "The database refused a value of the request (for example text with a NUL character).",
)

_HTTP_CODES = {
    404: problem_type("not_found", 404, N_("Not found"), "The requested object does not exist."),
    405: problem_type(
        "method_not_allowed", 405, N_("Method not allowed"), "This URL does not accept that method."
    ),
}


def is_api(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/.well-known/"))


def problem(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    detail_template: str | None = None,
    params: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    request_id = getattr(request.state, "request_id", None)
    if is_api(request):
        body: dict[str, Any] = {
            "type": f"/problems/{code}",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": request.url.path,
            "code": code,
        }
        if request_id:
            body["request_id"] = request_id
        body.update(extra or {})
        return JSONResponse(
            body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
        )

    from yikatong.web.templating import render

    return render(
        request,
        "error.html",
        {
            "status": status,
            "code": code,
            "title": title,
            "detail": detail,
            "detail_template": detail_template,
            "params": params or {},
            "errors": (extra or {}).get("errors", []),
            "request_id": request_id,
        },
        status_code=status,
        headers=headers,
    )


def _login_redirect(request: Request) -> Response:
    login_page = "/portal/login" if request.url.path.startswith("/portal") else "/staff/login"
    target = (
        login_page
        + "?next="
        + quote(request.url.path + ("?" + request.url.query if request.url.query else ""))
    )
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def on_domain_error(request: Request, exc: Exception) -> Response:
    exc = cast(YikatongError, exc)  # registered for this class only
    if (
        isinstance(exc, AuthenticationRequired)
        and not is_api(request)
        and request.method == "GET"
        and not request.url.path.startswith(("/staff/login", "/portal/login"))
    ):
        return _login_redirect(request)
    headers = {"WWW-Authenticate": 'Cookie realm="yikatong"'} if exc.status == 401 else None
    return problem(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        detail_template=exc.detail_template,
        params=exc.params,
        extra=exc.extra,
        headers=headers,
    )


class FieldError(BaseModel):
    field: str
    message: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, as every error of the API is answered."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["/problems/not_found"])
    title: str
    status: int
    detail: str
    instance: str
    code: str = Field(description="Stable machine code; documented at /problems/{code}")
    request_id: str | None = None
    errors: list[FieldError] | None = Field(default=None, description="One item per bad field")


PROBLEM_STATUSES = (401, 403, 404, 409, 422, 429)
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetails, "description": "Problem details (RFC 9457)"}
    for status in PROBLEM_STATUSES
}


def declare_problem_media_type(openapi: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents every model answer as application/json; problems are
    application/problem+json."""
    for item in openapi.get("paths", {}).values():
        for operation in item.values():
            for status, answer in operation.get("responses", {}).items():
                content = answer.get("content", {})
                if status.isdigit() and int(status) in PROBLEM_STATUSES and content:
                    schema = next(iter(content.values())).get("schema", {})
                    answer["content"] = {PROBLEM_MEDIA_TYPE: {"schema": schema}}
    return openapi


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        # ("body", 0) is a JSON decoding error: the position, not a field.
        if len(parts) == 2 and isinstance(loc[1], int):
            return parts[0]
        parts = parts[1:] or parts
    return ".".join(parts)


async def on_validation_error(request: Request, exc: Exception) -> Response:
    exc = cast(RequestValidationError, exc)
    errors = [
        {"field": _field_name(tuple(err.get("loc", ()))), "message": err.get("msg", "invalid")}
        for err in exc.errors()
    ]
    fields = ", ".join(e["field"] for e in errors)
    return problem(
        request,
        status=422,
        code="validation_failed",
        title=PROBLEM_TYPES["validation_failed"].title,
        detail=f"Invalid value for: {fields}" if fields else "Invalid request",
        extra={"errors": errors},
    )


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route accepts for this path (Starlette names only the first route's).

    Probes each method, because included routers do not expose their routes' methods.
    """
    allowed = {
        method
        for method in HTTP_METHODS
        for route in request.app.router.routes
        if route.matches({**request.scope, "method": method})[0] is Match.FULL
    }
    return ", ".join(m for m in HTTP_METHODS if m in allowed)


async def on_http_error(request: Request, exc: Exception) -> Response:
    exc = cast(StarletteHTTPException, exc)
    ptype = _HTTP_CODES.get(exc.status_code) or PROBLEM_TYPES["http_error"]
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return problem(
        request,
        status=exc.status_code,
        code=ptype.code,
        title=ptype.title,
        detail=str(exc.detail) if exc.detail else ptype.title,
        headers=headers or None,
    )


async def on_data_error(request: Request, exc: Exception) -> Response:
    """A value the database itself refuses (SQLSTATE class 22, e.g. a NUL in text) is bad
    input, not a platform failure: answer 422 without the database's words."""
    log.warning(
        "database refused a value on %s %s (request %s): %s",
        request.method,
        request.url.path,
        getattr(request.state, "request_id", "-"),
        exc.__class__.__name__,
    )
    ptype = PROBLEM_TYPES["invalid_data"]
    return problem(
        request,
        status=422,
        code=ptype.code,
        title=ptype.title,
        detail="A value in the request cannot be stored or searched for.",
    )


async def on_unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception(
        "unhandled error on %s %s (request %s)",
        request.method,
        request.url.path,
        getattr(request.state, "request_id", "-"),
        exc_info=exc,
    )
    ptype = PROBLEM_TYPES["internal_error"]
    return problem(
        request,
        status=500,
        code=ptype.code,
        title=ptype.title,
        detail="The platform could not complete the request. Quote the request id to support.",
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(YikatongError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(DataError, on_data_error)
    app.add_exception_handler(Exception, on_unexpected_error)
