"""The clerk's electronic card pages (电子社保卡 at the counter): the e-card panel of the card
file, issuing, password reset, level changes, revocation (注销), and verifying a code at the desk.

The card file loads the panel as an htmx fragment (the cards domain sits below this one and
does not import it); without JavaScript the same URL is a full page. Each form posts normally
and is also sent by htmx into the panel. A success redirects (POST-redirect-GET) to the panel
with a message saying what was done; a refusal shows the panel again with the reason on the form
it came from and what was typed, passwords excepted. Under htmx a refusal answers 200, because
htmx does not swap error answers and the reason must replace the form; otherwise it answers
with the error's status. Denials and unknown or out-of-region residents are error pages.

Every rule (permission, region, card state, password policy, lockout) is the service's; a form
only checks that both password entries match and that its confirmation box is ticked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from yikatong.cards import repository as cards_repository
from yikatong.cards.lifecycle import ACCEPTED_STATES
from yikatong.cards.models import Card, CardState
from yikatong.db import savepoint, utcnow
from yikatong.deps import DbSession, StaffActor, region_label, verify_csrf
from yikatong.ecard import repository, service
from yikatong.ecard.errors import EcardNotFound
from yikatong.ecard.models import ECard, ECardLevel, ECardStatus
from yikatong.ecard.qr import Purpose
from yikatong.errors import N_, InvalidInput, NotFound, PermissionDenied, YikatongError
from yikatong.errors import field_errors as error_fields
from yikatong.kit.actor import Actor, Permission
from yikatong.kit.params import RowId
from yikatong.residents import service as residents_service
from yikatong.residents.schemas import ResidentOut
from yikatong.web.i18n import LazyString, format_datetime, gettext, lazy_gettext, translate_message
from yikatong.web.navigation import NavItem, register_nav
from yikatong.web.templating import is_htmx_partial, render

router = APIRouter(prefix="/staff/ecard", include_in_schema=False)

register_nav(
    NavItem(
        "ecard",
        lazy_gettext("E-card verification"),
        "/staff/ecard/verify",
        permission=Permission.CARDS_READ.value,
        icon="scan",
        order=25,
    )
)

# What the panel says after a change (?done=...); unknown values show nothing.
DONE_MESSAGES: dict[str, LazyString] = {
    "issued": lazy_gettext("The electronic card is issued."),
    "password_reset": lazy_gettext("The password is reset; any lockout is lifted."),
    "upgraded": lazy_gettext("The electronic card is now at payment level (level 2)."),
    "downgraded": lazy_gettext("The electronic card is back at identity level (level 1)."),
    "revoked": lazy_gettext("The electronic card is revoked."),
}
LEVEL_LABELS: dict[int, LazyString] = {
    ECardLevel.IDENTITY: lazy_gettext("Level 1: identity and queries"),
    ECardLevel.PAYMENT: lazy_gettext("Level 2: payment"),
}
# The service's refusal details these pages show, so that the catalogue translates them.
SERVICE_DETAILS = (
    N_("The password must be exactly six digits"),
    N_("The password is too easy to guess ({why})"),
    N_("too few different digits"),
    N_("consecutive digits"),
    N_("a repeated group"),
    N_("the birth date"),
    N_("the end of the ID number"),
    N_("Wrong password; {left} attempt(s) left before it locks"),
    N_("The electronic card password is locked until {until}"),
    N_("Too many wrong passwords; the electronic card password is locked until {until}"),
    N_("The electronic card is {status}"),
    N_("The resident has no electronic card in use"),
    N_("The card of this electronic card is not in use"),
)


class _Readable:
    """A refusal in the page's language, translated when the page renders: the service's
    detail with its parameters made readable (guessable-password reasons translated one by
    one, a lockout end in local time, a status in words)."""

    __slots__ = ("error",)

    def __init__(self, error: YikatongError) -> None:
        self.error = error

    def __str__(self) -> str:
        params: dict[str, Any] = dict(self.error.params)
        why, status = params.get("why"), params.get("status")
        if isinstance(why, str):
            # The list separator is a message of its own ("、" in Chinese).
            params["why"] = gettext(", ").join(gettext(part) for part in why.split(", "))
        if isinstance(status, str):
            params["status"] = gettext(status)
        until = self.error.extra.get("locked_until")
        if "until" in params and isinstance(until, str):
            params["until"] = format_datetime(dt.datetime.fromisoformat(until))
        return translate_message(self.error.detail_template, params)


@dataclass
class Refusal:
    """A form the service (or the form's own check) refused: which form, why, what was typed."""

    form: str
    error: YikatongError
    values: Mapping[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return translate_message(self.error.title)

    @property
    def message(self) -> _Readable:
        return _Readable(self.error)

    @property
    def fields(self) -> dict[str, _Readable | str]:
        """{field: message} of the fields the refusal names, in the page's language."""
        return {
            name: _Readable(self.error) if text == self.error.detail else translate_message(text)
            for name, text in error_fields(self.error).items()
        }


def _reason_label(reason: str | None) -> str | None:
    """Why an e-card is suspended or revoked, in words ("card:temporary_loss", "holder")."""
    if not reason:
        return None
    if reason.startswith("card:"):
        return translate_message(
            N_("The card is {state}"), {"state": gettext(reason.removeprefix("card:"))}
        )
    if reason == "holder":
        return gettext("Given up by the holder")
    return reason


@dataclass(frozen=True)
class PanelState:
    """What the panel shows of one resident's e-card and the card it comes from."""

    resident_id: int
    ecard: ECard | None  # the e-card in use, or the card's revoked one, or none
    card: Card | None  # the card in use
    locked_until: dt.datetime | None
    can_issue_from_card: bool

    @property
    def live(self) -> bool:
        return self.ecard is not None and self.ecard.status != ECardStatus.REVOKED

    @property
    def reason(self) -> str | None:
        if self.ecard is None:
            return None
        if self.ecard.status == ECardStatus.SUSPENDED:
            return _reason_label(self.ecard.suspended_reason)
        if self.ecard.status == ECardStatus.REVOKED:
            return _reason_label(self.ecard.revoked_reason)
        return None

    @property
    def bank_activated(self) -> bool:
        return self.card is not None and self.card.bank_activated_at is not None


def _panel_state(session: Session, actor: Actor, resident_id: int) -> PanelState:
    """Read through the service (permission, region, audited read); when there is no e-card in
    use, the card's given-up or revoked one is shown, if any."""
    try:
        ecard: ECard | None = service.get_ecard(session, actor, resident_id)
    except EcardNotFound:
        ecard = None
    card = cards_repository.live_card_of(session, resident_id)
    if ecard is None and card is not None:
        ecard = repository.ecard_of_card(session, card.id)
    now = utcnow()
    locked = (
        ecard.locked_until
        if ecard is not None and ecard.locked_until is not None and ecard.locked_until > now
        else None
    )
    return PanelState(
        resident_id=resident_id,
        ecard=ecard,
        card=card,
        locked_until=locked,
        can_issue_from_card=card is not None and CardState(card.state) in ACCEPTED_STATES,
    )


def _panel(
    request: Request,
    session: Session,
    actor: Actor,
    resident_id: int,
    *,
    done: str = "",
    refusal: Refusal | None = None,
) -> Response:
    """The panel: a fragment under htmx, else a full page with the resident's masked name."""
    state = _panel_state(session, actor, resident_id)
    fragment = is_htmx_partial(request)
    status_code = refusal.error.status if refusal is not None and not fragment else 200
    context: dict[str, Any] = {
        "state": state,
        "done": DONE_MESSAGES.get(done),
        "refusal": refusal,
        "can_operate": actor.can(Permission.CARDS_OPERATE),
        "level_labels": LEVEL_LABELS,
        "level_options": [(int(level), label) for level, label in LEVEL_LABELS.items()],
        "max_failures": service.MAX_PASSWORD_FAILURES,
        "verify": _verify_context(),
    }
    if fragment:
        return render(request, "ecard/_panel.html", context, status_code=status_code)
    resident = residents_service.get(session, actor, resident_id)
    context["resident"] = ResidentOut.masked(resident, dt.datetime.now(dt.UTC).date())
    return render(request, "ecard/page.html", context, status_code=status_code)


def _attempt(session: Session, action: Callable[[], object]) -> YikatongError | None:
    """Run a form's action in a savepoint (:func:`db.savepoint`); return its refusal."""
    try:
        with savepoint(session):
            action()
    except YikatongError as exc:
        return exc
    return None


def _not_for_the_form(error: YikatongError) -> bool:
    """A denial or an unknown (or out-of-region) resident is an error page, not a form message."""
    if isinstance(error, EcardNotFound):
        return False
    return isinstance(error, NotFound | PermissionDenied)


def _act(
    request: Request,
    session: Session,
    actor: Actor,
    resident_id: int,
    form: str,
    done: str,
    action: Callable[[], object],
    values: Mapping[str, str] | None = None,
) -> Response:
    error = _attempt(session, action)
    if error is None:
        return RedirectResponse(
            f"/staff/ecard/residents/{resident_id}?done={done}", status_code=303
        )
    if _not_for_the_form(error):
        raise error
    return _panel(
        request, session, actor, resident_id, refusal=Refusal(form, error, dict(values or {}))
    )


def _same_password(password: str, password_again: str) -> None:
    if password != password_again:
        raise InvalidInput(N_("The two passwords differ"), field="password_again")


def _ticked(value: str, message: str, name: str) -> None:
    if value != "1":
        raise InvalidInput(message, field=name)


# --- the panel and its forms -------------------------------------------------------------------


@router.get("/residents/{resident_id}")
def panel(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    resident_id: RowId,
    done: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    """The resident's e-card: state, lockout and the actions the clerk may take."""
    return _panel(request, session, actor, resident_id, done=done)


@router.post("/residents/{resident_id}/issue", dependencies=[Depends(verify_csrf)])
def issue(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    resident_id: RowId,
    password: Annotated[str, Form(max_length=16)] = "",
    password_again: Annotated[str, Form(max_length=16)] = "",
    level: Annotated[str, Form(max_length=2)] = "1",
) -> Response:
    """签发 at the counter: the holder types the six-digit password twice on the PIN pad."""

    def run() -> None:
        try:
            chosen = ECardLevel(int(level))
        except ValueError:
            raise InvalidInput(N_("Choose a level"), field="level") from None
        _same_password(password, password_again)
        service.issue_ecard(session, actor, resident_id, password, chosen)

    return _act(request, session, actor, resident_id, "issue", "issued", run, {"level": level})


@router.post("/residents/{resident_id}/password", dependencies=[Depends(verify_csrf)])
def reset_password(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    resident_id: RowId,
    password: Annotated[str, Form(max_length=16)] = "",
    password_again: Annotated[str, Form(max_length=16)] = "",
    identity_checked: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """A new password set by the holder after the clerk checked them in person (lifts a lock)."""

    def run() -> None:
        _ticked(
            identity_checked,
            N_("Tick the box once you have checked the holder's identity in person"),
            "identity_checked",
        )
        _same_password(password, password_again)
        service.reset_password(session, actor, resident_id, password)

    return _act(
        request,
        session,
        actor,
        resident_id,
        "reset",
        "password_reset",
        run,
        {"identity_checked": identity_checked},
    )


@router.post("/residents/{resident_id}/upgrade", dependencies=[Depends(verify_csrf)])
def upgrade(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    resident_id: RowId,
    password: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """To level 2 (payment): the holder types the current password; wrong ones are counted."""
    return _act(
        request,
        session,
        actor,
        resident_id,
        "upgrade",
        "upgraded",
        lambda: service.upgrade_level(session, actor, resident_id, password),
    )


@router.post("/residents/{resident_id}/downgrade", dependencies=[Depends(verify_csrf)])
def downgrade(
    request: Request, session: DbSession, actor: StaffActor, resident_id: RowId
) -> Response:
    """Back to level 1 (identity and queries)."""
    return _act(
        request,
        session,
        actor,
        resident_id,
        "downgrade",
        "downgraded",
        lambda: service.downgrade_level(session, actor, resident_id),
    )


@router.post("/residents/{resident_id}/revoke", dependencies=[Depends(verify_csrf)])
def revoke(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    resident_id: RowId,
    confirm: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """注销 at the holder's request; the box confirms the holder was told what it means."""

    def run() -> None:
        _ticked(confirm, N_("Tick the box to confirm the revocation"), "confirm")
        service.revoke_ecard(session, actor, resident_id)

    return _act(request, session, actor, resident_id, "revoke", "revoked", run)


# --- verifying a code at the desk --------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    """An accepted code as the desk sees it (never an ID number)."""

    holder_name: str | None
    county: str | None
    level: LazyString | str
    purpose: str
    expires_at: dt.datetime
    token: str


def _verify_context(
    code: str = "",
    purpose: str = Purpose.IDENTITY.value,
    result: Verified | None = None,
    error: YikatongError | None = None,
) -> dict[str, Any]:
    return {
        "code": code,
        "purpose": purpose,
        "purpose_options": [(p.value, lazy_gettext(p.value)) for p in Purpose],
        "result": result,
        "refusal": Refusal("verify", error) if error is not None else None,
    }


@router.get("/verify")
def verify_form(request: Request, actor: StaffActor) -> Response:
    """The desk's verification form: paste or scan a code, choose what it is accepted for."""
    return render(request, "ecard/verify.html", {"verify": _verify_context()})


@router.post("/verify", dependencies=[Depends(verify_csrf)])
def verify(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    code: Annotated[str, Form(max_length=512)] = "",
    purpose: Annotated[str, Form(max_length=16)] = Purpose.IDENTITY.value,
) -> Response:
    """Verify a code online (signature, validity, purpose, card, e-card, once only)."""
    text = code.strip()
    outcome: list[Verified] = []

    def run() -> None:
        try:
            chosen = Purpose(purpose)
        except ValueError:
            raise InvalidInput(N_("Choose a purpose"), field="purpose") from None
        if not text:
            raise InvalidInput(N_("Paste or scan the code"), field="code")
        result = service.verify_online(session, actor, text, chosen)
        outcome.append(
            Verified(
                holder_name=result.holder_name,
                county=region_label(result.region_code) if result.region_code else None,
                level=LEVEL_LABELS.get(result.ecard_level, str(result.ecard_level)),
                purpose=result.purpose.value,
                expires_at=result.expires_at,
                token=result.token,
            )
        )

    error = _attempt(session, run)
    if error is not None and isinstance(error, PermissionDenied):
        raise error
    fragment = is_htmx_partial(request)
    # An accepted code is cleared from the form, ready for the next scan; a refused one stays.
    context = _verify_context(
        code=text if error is not None else "",
        purpose=purpose,
        result=outcome[0] if outcome else None,
        error=error,
    )
    status_code = error.status if error is not None and not fragment else 200
    template = "ecard/_verify.html" if fragment else "ecard/verify.html"
    return render(request, template, {"verify": context}, status_code=status_code)
