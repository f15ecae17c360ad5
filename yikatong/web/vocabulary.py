"""Stored code values that pages show through the ``translate`` filter.

Values such as ``male``, ``success`` or ``migrant_worker`` live in the database and the API in
English; the pages translate them at render time. Listing them here with ``N_`` puts them in
the message catalogue (``make messages``), so the catalogue test notices a new value without a
translation.
"""

from __future__ import annotations

from yikatong.errors import N_

SEXES = (N_("male"), N_("female"))
RESIDENT_STATUSES = (N_("active"), N_("deceased"), N_("emigrated"))
CATEGORIES = (
    N_("elderly"),
    N_("student"),
    N_("disabled"),
    N_("veteran"),
    N_("low_income"),
    N_("migrant_worker"),
)
AUDIT_OUTCOMES = (N_("success"), N_("denied"), N_("failed"))
CHAIN_PROBLEMS = (N_("modified"), N_("deleted"), N_("reordered"), N_("truncated"))
CARD_CHANNELS = (
    N_("counter"),
    N_("online"),
    N_("instant"),
    N_("newborn"),
    N_("cross_province"),
)
APPLICATION_REASONS = (N_("first"), N_("replacement"), N_("renewal"))
APPLICATION_STATUSES = (
    N_("submitted"),
    N_("checked"),
    N_("in_production"),
    N_("ready"),
    N_("mailed"),
    N_("issued"),
    N_("rejected"),
    N_("withdrawn"),
)
CARD_STATES = (
    N_("temporary_loss"),
    N_("formal_loss"),
    N_("replaced"),
    N_("renewed"),
    N_("cancelled"),
)
CARD_OPERATIONS = (
    N_("complete_production"),
    N_("issue"),
    N_("activate_social_security"),
    N_("activate_bank"),
    N_("report_temporary_loss"),
    N_("cancel_temporary_loss"),
    N_("expire_temporary_loss"),
    N_("report_formal_loss"),
    N_("replace"),
    N_("renew"),
    N_("cancel"),
)
ECARD_STATUSES = (N_("active"), N_("suspended"), N_("revoked"))
QR_PURPOSES = (N_("identity"), N_("payment"), N_("medical"))
JOB_STATUSES = (N_("queued"), N_("running"), N_("succeeded"), N_("failed"))
IMPORT_MODES = (N_("all_or_nothing"), N_("skip_bad"))
