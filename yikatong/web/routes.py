"""All HTML routes: the public pages and each domain's console pages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from yikatong.audit.views import router as audit_views
from yikatong.cards.views import router as cards_views
from yikatong.ecard.views import router as ecard_views
from yikatong.errors import PROBLEM_TYPES, NotFound
from yikatong.jobs.views import router as jobs_views
from yikatong.portal.views import router as portal_views
from yikatong.residents.views import router as residents_views
from yikatong.staff.views import router as staff_views
from yikatong.web.pages import router as pages_router
from yikatong.web.templating import render

problems_router = APIRouter(include_in_schema=False)


@problems_router.get("/problems")
def problem_index(request: Request) -> Response:
    """Every stable error code of the API, for department engineers."""
    return render(
        request,
        "problems.html",
        {
            "problems": sorted(PROBLEM_TYPES.values(), key=lambda p: p.code),
            "selected": None,
        },
    )


@problems_router.get("/problems/{code}")
def problem_page(request: Request, code: str) -> Response:
    ptype = PROBLEM_TYPES.get(code)
    if ptype is None:
        raise NotFound(f"No problem type {code}")
    return render(request, "problems.html", {"problems": [ptype], "selected": ptype})


web_router = APIRouter()
for router in (
    pages_router,
    problems_router,
    staff_views,
    residents_views,
    cards_views,
    jobs_views,
    ecard_views,
    audit_views,
    portal_views,
):
    web_router.include_router(router)
