"""The versioned API: every domain's router mounted under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from yikatong import __version__
from yikatong.audit.api import router as audit_router
from yikatong.cards.api import blacklist_router
from yikatong.cards.api import router as cards_router
from yikatong.deps import DbSession
from yikatong.ecard.api import router as ecard_router
from yikatong.jobs.api import router as jobs_router
from yikatong.problems import PROBLEM_RESPONSES
from yikatong.reference.api import router as reference_router
from yikatong.residents.api import router as residents_router
from yikatong.settings import get_settings
from yikatong.staff.api import router as staff_router


class Health(BaseModel):
    status: str
    version: str
    region_code: str
    database: str


system_router = APIRouter(tags=["system"])


@system_router.get("/health", response_model=Health)
def health(session: DbSession) -> Health:
    """Liveness and database reachability."""
    session.execute(text("SELECT 1"))
    return Health(
        status="ok",
        version=__version__,
        region_code=get_settings().region_code,
        database=session.get_bind().dialect.name,
    )


api_router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
# Routers are matched in order, and FastAPI's nested routers cost a few microseconds per route
# tried: the terminals' hot path (online verification) comes first.
api_router.include_router(ecard_router, prefix="/ecard")
api_router.include_router(system_router)
api_router.include_router(staff_router)
api_router.include_router(audit_router, prefix="/audit")
api_router.include_router(residents_router, prefix="/residents")
api_router.include_router(cards_router, prefix="/cards")
api_router.include_router(blacklist_router, prefix="/blacklist")
api_router.include_router(reference_router, prefix="/reference", tags=["reference"])
api_router.include_router(jobs_router, prefix="/jobs")
