"""Every table of the platform, imported once so Alembic and the tests see the whole schema."""

from yikatong.audit.models import AuditEntry, AuditHead
from yikatong.db import Base
from yikatong.residents.models import Resident, ResidentCategory
from yikatong.staff.models import StaffMember, StaffSession

__all__ = [
    "AuditEntry",
    "AuditHead",
    "Base",
    "Resident",
    "ResidentCategory",
    "StaffMember",
    "StaffSession",
]
