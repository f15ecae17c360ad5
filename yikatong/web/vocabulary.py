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
