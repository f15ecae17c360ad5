"""Every table of the platform, imported once so Alembic and the tests see the whole schema,
and every event handler registered."""

from yikatong.audit.models import AuditEntry, AuditHead
from yikatong.cards.models import (
    ApplicationEvent,
    BlacklistChange,
    BlacklistHead,
    Card,
    CardApplication,
    CardCounter,
    CardEvent,
)
from yikatong.db import Base
from yikatong.jobs.models import Job
from yikatong.portal.models import ResidentAccount, ResidentSession
from yikatong.residents.models import Resident, ResidentCategory
from yikatong.staff.models import StaffMember, StaffSession

__all__ = [
    "ApplicationEvent",
    "AuditEntry",
    "AuditHead",
    "Base",
    "BlacklistChange",
    "BlacklistHead",
    "Card",
    "CardApplication",
    "CardCounter",
    "CardEvent",
    "Job",
    "Resident",
    "ResidentAccount",
    "ResidentCategory",
    "ResidentSession",
    "StaffMember",
    "StaffSession",
]

# Services that subscribe to domain events (yikatong.kit.events) register their handlers on
# import, and so do kinds of background job (yikatong.jobs); importing them here gives the
# app, the CLI and the tests the full set.
import yikatong.cards.importing
import yikatong.cards.service
import yikatong.ecard.models
import yikatong.ecard.service
import yikatong.residents.importing  # noqa: F401 - card events, e-card, import jobs
