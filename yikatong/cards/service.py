"""Card applications and the card lifecycle (申领、制卡、发卡、挂失、补换、注销).

Every state change goes through :func:`yikatong.cards.lifecycle.next_state`, writes a
:class:`CardEvent` (who, where, when, why), an audit entry, a blacklist change when the card
starts or stops being accepted, and emits ``card.state_changed`` so the e-card follows at once.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yikatong.audit import service as audit
from yikatong.cards import repository
from yikatong.cards.banks import check_account_number, check_bank
from yikatong.cards.lifecycle import (
    ACCEPTED_STATES,
    BLOCKED_STATES,
    Operation,
    next_state,
)
from yikatong.cards.models import (
    ApplicationEvent,
    ApplicationReason,
    ApplicationStatus,
    BlacklistChange,
    BlacklistHead,
    Card,
    CardApplication,
    CardCounter,
    CardEvent,
    CardState,
    Channel,
)
from yikatong.crypto.fields import blind_index
from yikatong.crypto.keystore import get_keyring
from yikatong.db import utcnow
from yikatong.errors import N_, Conflict, InvalidInput, NotFound, YikatongError
from yikatong.kit import events
from yikatong.kit.actor import Actor, ActorKind, Permission
from yikatong.reference.idnumber import parse_id_number
from yikatong.residents.models import Resident, ResidentStatus
from yikatong.residents.service import age_on
from yikatong.residents.validation import china_today, is_mobile, normalize_phone
from yikatong.settings import get_settings

CARD_VALIDITY_YEARS = 10
IDENTIFICATION_INFIX = "D156000005"  # 卡识别码: issuing region + D156000005 + 16 hex
CARD_KEY_REF = "card-mk:v1"
BLACKLIST_HEAD_ID = 1

CARD_STATE_CHANGED = "card.state_changed"
CARD_ISSUED = "card.issued"

# Application progress, one table like the card lifecycle.
S = ApplicationStatus
APPLICATION_TRANSITIONS: dict[ApplicationStatus, frozenset[ApplicationStatus]] = {
    S.SUBMITTED: frozenset({S.CHECKED, S.REJECTED, S.WITHDRAWN}),
    S.CHECKED: frozenset({S.IN_PRODUCTION, S.REJECTED, S.WITHDRAWN}),
    S.IN_PRODUCTION: frozenset({S.READY, S.MAILED, S.REJECTED}),
    S.READY: frozenset({S.ISSUED}),
    S.MAILED: frozenset({S.ISSUED}),
    S.ISSUED: frozenset(),
    S.REJECTED: frozenset(),
    S.WITHDRAWN: frozenset(),
}
MAILED_CHANNELS = frozenset({Channel.ONLINE, Channel.CROSS_PROVINCE})


class DuplicateApplication(Conflict):
    """The resident already has an application in progress."""

    code = "duplicate_application"
    title = N_("An application for this resident is already in progress")


class CardExists(Conflict):
    """A first card was requested for a resident who has a live card."""

    code = "card_exists"
    title = N_("The resident already has a card")


class ResidentNotActive(Conflict):
    """Cards are only applied for and issued to living, resident persons."""

    code = "resident_not_active"
    title = N_("The resident is registered as deceased or emigrated")


class IllegalApplicationStep(Conflict):
    """The application cannot move to that status from where it is."""

    code = "illegal_application_step"
    title = N_("This application cannot move to that status")


@dataclass(frozen=True)
class Proxy:
    """Someone handling the matter for the resident (代办), with their identity."""

    name: str
    id_number: str
    relation: str


# What a resident may do to their own card in the portal; everything else is for the counter.
SELF_SERVICE_OPERATIONS = frozenset({Operation.REPORT_TEMPORARY_LOSS, Operation.REPLACE})


def _own(actor: Actor, resident_id: int) -> bool:
    """A resident acting on their own records (staff go through permissions and region)."""
    return actor.kind is ActorKind.RESIDENT and actor.id == str(resident_id)


def _visible(actor: Actor, resident_id: int, region_code: str) -> bool:
    return _own(actor, resident_id) or actor.covers(region_code)


def _authorise(session: Session, actor: Actor, permission: Permission, action: str) -> None:
    """Staff need ``permission``; residents pass here and are held to their own records."""
    if actor.kind is not ActorKind.RESIDENT:
        audit.require(session, actor, permission, action)


def _resident(session: Session, actor: Actor, resident_id: int) -> Resident:
    resident = session.get(Resident, resident_id)
    if resident is None or not _visible(actor, resident_id, resident.region_code):
        raise NotFound("No resident {id}", params={"id": resident_id})
    return resident


def get_card(session: Session, actor: Actor, card_id: int) -> Card:
    _authorise(session, actor, Permission.CARDS_READ, "card.read")
    card = session.get(Card, card_id)
    if card is None or not _visible(actor, card.resident_id, card.region_code):
        raise NotFound("No card {id}", params={"id": card_id})
    return card


def get_application(session: Session, actor: Actor, application_id: int) -> CardApplication:
    _authorise(session, actor, Permission.CARDS_READ, "card_application.read")
    application = session.get(CardApplication, application_id)
    if application is None or not _visible(actor, application.resident_id, application.region_code):
        raise NotFound("No application {id}", params={"id": application_id})
    return application


class Applicant(Protocol):
    """What the application rules read of a resident: a :class:`Resident` or a lighter row."""

    @property
    def id(self) -> int: ...

    @property
    def id_number(self) -> str: ...

    @property
    def birth_date(self) -> dt.date: ...

    @property
    def region_code(self) -> str: ...

    @property
    def status(self) -> str: ...


@dataclass(frozen=True)
class ApplicationRequest:
    """One application as asked for (申领), before the rules are applied: :func:`apply` takes
    one, :func:`apply_many` a batch (批量申领)."""

    resident_id: int
    channel: Channel
    reason: ApplicationReason = ApplicationReason.FIRST
    mailing_address: str | None = None
    recipient_phone: str | None = None
    outlet: str | None = None
    proxy: Proxy | None = None
    birth_certificate_number: str | None = None
    replaces_card_id: int | None = None
    note: str | None = None


def _check_proxy(proxy: Proxy | None, resident: Applicant) -> None:
    if proxy is None:
        return
    if not proxy.name.strip() or not proxy.relation.strip():
        raise InvalidInput(N_("A proxy needs a name and a relation to the resident"), field="proxy")
    number = parse_id_number(proxy.id_number).number
    if number == resident.id_number:
        raise InvalidInput(N_("The proxy cannot be the resident"), field="proxy_id_number")


def _application_problems(
    actor: Actor,
    resident: Applicant,
    request: ApplicationRequest,
    *,
    has_open_application: bool,
    has_live_card: bool,
    today: dt.date,
) -> list[YikatongError]:
    """Every rule ``request`` breaks, in the order :func:`apply` reports the first of them.

    The one statement of the application rules: :func:`apply` raises the first problem,
    :func:`apply_many` reports them all for each row of a batch.
    """
    problems: list[YikatongError] = []
    channel = request.channel
    if actor.kind is ActorKind.RESIDENT and channel not in MAILED_CHANNELS:
        problems.append(
            InvalidInput(
                N_("Online applications are mailed; other channels are at a counter"),
                field="channel",
            )
        )
    if resident.status != ResidentStatus.ACTIVE:
        problems.append(ResidentNotActive())
    if has_open_application:
        problems.append(DuplicateApplication())
    if request.reason is ApplicationReason.FIRST and has_live_card:
        problems.append(
            CardExists(N_("The resident already has a card: report it lost, replace or renew it"))
        )
    if channel in MAILED_CHANNELS and not (request.mailing_address or "").strip():
        problems.append(
            InvalidInput(N_("Online applications need a mailing address"), field="mailing_address")
        )
    if request.recipient_phone is not None:
        if channel not in MAILED_CHANNELS:
            problems.append(
                InvalidInput(
                    N_("A recipient phone is only for cards sent by post"), field="recipient_phone"
                )
            )
        elif not is_mobile(normalize_phone(request.recipient_phone)):
            problems.append(
                InvalidInput(
                    N_("A mainland mobile number: 11 digits starting 13-19"),
                    field="recipient_phone",
                )
            )
    if channel is Channel.NEWBORN:
        if not (request.birth_certificate_number or "").strip():
            problems.append(
                InvalidInput(
                    N_("A newborn application needs the birth certificate number"),
                    field="birth_certificate_number",
                )
            )
        if age_on(resident.birth_date, today) >= 1:
            problems.append(
                InvalidInput(N_("Only a child under one year old qualifies"), field="channel")
            )
    try:
        _check_proxy(request.proxy, resident)
    except YikatongError as exc:
        problems.append(exc)
    return problems


def _application_values(
    actor: Actor, resident: Applicant, request: ApplicationRequest
) -> dict[str, Any]:
    """The columns of a new application in status ``submitted`` (values normalised)."""
    proxy = request.proxy
    phone = (request.recipient_phone or "").strip()
    return {
        "resident_id": resident.id,
        "channel": request.channel.value,
        "reason": request.reason.value,
        "status": ApplicationStatus.SUBMITTED.value,
        "region_code": resident.region_code,
        "outlet": request.outlet,
        "mailing_address": (request.mailing_address or "").strip() or None,
        "recipient_phone": normalize_phone(phone) if phone else None,
        "replaces_card_id": request.replaces_card_id,
        "proxy_name": proxy.name.strip() if proxy else None,
        "proxy_id_number": parse_id_number(proxy.id_number).number if proxy else None,
        "proxy_relation": proxy.relation.strip() if proxy else None,
        "birth_certificate_number": (request.birth_certificate_number or "").strip() or None,
        "note": request.note,
        "created_by": actor.name,
    }


def _apply_audit_detail(request: ApplicationRequest) -> dict[str, Any]:
    return {
        "channel": request.channel.value,
        "reason": request.reason.value,
        "proxy": request.proxy is not None,
    }


def apply(
    session: Session,
    actor: Actor,
    *,
    resident_id: int,
    channel: Channel,
    reason: ApplicationReason = ApplicationReason.FIRST,
    mailing_address: str | None = None,
    recipient_phone: str | None = None,
    outlet: str | None = None,
    proxy: Proxy | None = None,
    birth_certificate_number: str | None = None,
    replaces_card_id: int | None = None,
    note: str | None = None,
) -> CardApplication:
    """Take an application through any channel (申领); returns it in status ``submitted``.
    Residents apply for themselves only online (mailed)."""
    _authorise(session, actor, Permission.CARDS_OPERATE, "card.apply")
    resident = _resident(session, actor, resident_id)
    request = ApplicationRequest(
        resident_id=resident.id,
        channel=channel,
        reason=reason,
        mailing_address=mailing_address,
        recipient_phone=(recipient_phone or "").strip() or None,
        outlet=outlet,
        proxy=proxy,
        birth_certificate_number=birth_certificate_number,
        replaces_card_id=replaces_card_id,
        note=note,
    )
    problems = _application_problems(
        actor,
        resident,
        request,
        has_open_application=repository.open_application_of(session, resident.id) is not None,
        has_live_card=reason is ApplicationReason.FIRST
        and repository.live_card_of(session, resident.id) is not None,
        today=china_today(),
    )
    if problems:
        raise problems[0]
    application = CardApplication(**_application_values(actor, resident, request))
    session.add(application)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # Two clerks at once: the database's one-open-application index decides.
        session.expunge(application)
        raise DuplicateApplication() from None
    _trail(session, application, None, ApplicationStatus.SUBMITTED, actor, outlet, note)
    audit.record(
        session,
        actor,
        "card.apply",
        object_type="card_application",
        object_id=application.id,
        region_code=resident.region_code,
        detail=_apply_audit_detail(request),
    )
    return application


# Core inserts: several times faster than the ORM's bulk path for the same rows.
_APPLICATIONS = cast(Table, CardApplication.__table__)
_APPLICATION_EVENTS = cast(Table, ApplicationEvent.__table__)


@dataclass
class BatchOutcome:
    """What :func:`apply_many` did with each request, by its position in the batch."""

    created: dict[int, int] = field(default_factory=dict)  # position -> application id
    refused: dict[int, list[YikatongError]] = field(default_factory=dict)


def apply_many(
    session: Session,
    actor: Actor,
    requests: Sequence[ApplicationRequest],
    *,
    write: bool = True,
) -> BatchOutcome:
    """The bulk path of :func:`apply` (批量申领): every request meets exactly the same rules
    (:func:`_application_problems`), checked against a few queries for the whole batch
    instead of several per request. A second request for the same resident in the batch is a
    duplicate of the first. Refused requests are reported, not raised: the caller decides
    between all or nothing and skipping them. With ``write`` the accepted ones are inserted in
    two statements, each with its trail step and its own ``card.apply`` audit entry, as
    :func:`apply` writes them; without, nothing is written (a dry run).
    """
    _authorise(session, actor, Permission.CARDS_OPERATE, "card.apply")
    outcome = BatchOutcome()
    if not requests:
        return outcome
    resident_ids = {r.resident_id for r in requests}
    residents = repository.applicants(session, resident_ids)
    today = china_today()  # the date printed on the card is the civil date at the counter
    # Two attempts: an application opened by someone else between the check and the insert
    # makes the one-open-application index refuse the insert; the second check finds it.
    for _attempt in range(2):
        outcome.refused.clear()
        with_open = repository.residents_with_open_application(session, resident_ids)
        with_card = repository.residents_with_live_card(session, resident_ids)
        accepted: list[tuple[int, ApplicationRequest, Applicant]] = []
        for position, request in enumerate(requests):
            resident = residents.get(request.resident_id)
            if resident is None or not _visible(actor, resident.id, resident.region_code):
                outcome.refused[position] = [
                    NotFound("No resident {id}", params={"id": request.resident_id})
                ]
                continue
            problems = _application_problems(
                actor,
                resident,
                request,
                has_open_application=resident.id in with_open,
                has_live_card=resident.id in with_card,
                today=today,
            )
            if problems:
                outcome.refused[position] = problems
                continue
            with_open.add(resident.id)  # a later request for the same resident is a duplicate
            accepted.append((position, request, resident))
        if not (write and accepted):
            return outcome
        try:
            with session.begin_nested():
                session.execute(
                    insert(_APPLICATIONS),
                    [_timestamped(_application_values(actor, r, q)) for _p, q, r in accepted],
                )
        except IntegrityError:
            continue
        break
    else:  # pragma: no cover - needs two concurrent writers racing twice
        raise DuplicateApplication("Applications kept appearing while the batch was written")
    ids = repository.open_application_ids(session, [r.id for _p, _q, r in accepted])
    session.execute(
        insert(_APPLICATION_EVENTS),
        [
            {
                "application_id": ids[resident.id],
                "from_status": None,
                "to_status": ApplicationStatus.SUBMITTED.value,
                "actor": actor.name,
                "outlet": request.outlet,
                "note": request.note,
                "occurred_at": utcnow(),
            }
            for _p, request, resident in accepted
        ],
    )
    audit.record_many(
        session,
        [
            audit.Pending(
                actor,
                "card.apply",
                object_type="card_application",
                object_id=ids[resident.id],
                region_code=resident.region_code,
                detail=_apply_audit_detail(request),
            )
            for _p, request, resident in accepted
        ],
    )
    outcome.created = {position: ids[resident.id] for position, _q, resident in accepted}
    return outcome


def _timestamped(values: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    return {**values, "created_at": now, "updated_at": now}


def _trail(
    session: Session,
    application: CardApplication,
    from_status: ApplicationStatus | None,
    to_status: ApplicationStatus,
    actor: Actor,
    outlet: str | None,
    note: str | None,
) -> None:
    session.add(
        ApplicationEvent(
            application_id=application.id,
            from_status=from_status.value if from_status else None,
            to_status=to_status.value,
            actor=actor.name,
            outlet=outlet,
            note=note,
        )
    )


def _draw_serial(session: Session, issuing_region: str) -> int:
    """The next card serial of the issuing region, under a row lock."""
    counter = session.execute(
        select(CardCounter).where(CardCounter.region_code == issuing_region).with_for_update()
    ).scalar_one_or_none()
    if counter is None:
        try:
            with session.begin_nested():
                session.add(CardCounter(region_code=issuing_region, last_serial=0))
        except IntegrityError:
            pass  # created by a concurrent request; lock it below
        counter = session.execute(
            select(CardCounter).where(CardCounter.region_code == issuing_region).with_for_update()
        ).scalar_one()
    counter.last_serial += 1
    return counter.last_serial


def card_number_for(serial: int) -> str:
    """9 characters: a letter for each hundred million, then 8 digits (A00000001)."""
    return f"{chr(ord('A') + serial // 10**8)}{serial % 10**8:08d}"


def _new_card(session: Session, application: CardApplication) -> Card:
    issuing_region = get_settings().region_code
    serial = _draw_serial(session, issuing_region)
    card = Card(
        resident_id=application.resident_id,
        region_code=application.region_code,
        card_number=card_number_for(serial),
        identification_code=(
            f"{issuing_region}{IDENTIFICATION_INFIX}{serial:08X}{secrets.token_hex(4).upper()}"
        ),
        token=secrets.token_hex(16),
        state=CardState.IN_PRODUCTION.value,
        issuing_region=issuing_region,
        key_ref=CARD_KEY_REF,
    )
    session.add(card)
    session.flush()
    application.card_id = card.id
    return card


def advance(
    session: Session,
    actor: Actor,
    application_id: int,
    to_status: ApplicationStatus,
    *,
    tracking_number: str | None = None,
    outlet: str | None = None,
    note: str | None = None,
) -> CardApplication:
    """Move an application one step (审核、制卡、待领、邮寄、驳回、撤回)."""
    audit.require(session, actor, Permission.CARDS_OPERATE, "card_application.advance")
    application = get_application(session, actor, application_id)
    current = ApplicationStatus(application.status)
    if to_status is ApplicationStatus.ISSUED:
        raise IllegalApplicationStep("Issue the card itself; the application follows")
    if to_status not in APPLICATION_TRANSITIONS[current]:
        raise IllegalApplicationStep(
            "An application that is {current} cannot become {target}",
            params={"current": current.value, "target": to_status.value},
            allowed=sorted(s.value for s in APPLICATION_TRANSITIONS[current]),
        )
    if to_status is ApplicationStatus.MAILED:
        if Channel(application.channel) not in MAILED_CHANNELS:
            raise IllegalApplicationStep("Only online applications are mailed")
        if not (tracking_number or "").strip():
            raise InvalidInput("Mailing needs the tracking number", field="tracking_number")
        application.tracking_number = tracking_number.strip() if tracking_number else None
    if to_status is ApplicationStatus.IN_PRODUCTION:
        _new_card(session, application)
    elif to_status in (ApplicationStatus.READY, ApplicationStatus.MAILED):
        card = _application_card(session, application)
        _transition(session, actor, card, Operation.COMPLETE_PRODUCTION, reason=note, outlet=outlet)
    elif to_status is ApplicationStatus.REJECTED and application.card_id is not None:
        card = _application_card(session, application)
        _transition(
            session, actor, card, Operation.CANCEL, reason="production failed", outlet=outlet
        )
    application.status = to_status.value
    _trail(session, application, current, to_status, actor, outlet, note)
    audit.record(
        session,
        actor,
        "card_application.advance",
        object_type="card_application",
        object_id=application.id,
        region_code=application.region_code,
        detail={"from": current.value, "to": to_status.value},
    )
    return application


def update_mailing_address(
    session: Session, actor: Actor, application_id: int, address: str
) -> CardApplication:
    """Change where an online application's card is mailed, until it has been mailed."""
    _authorise(session, actor, Permission.CARDS_OPERATE, "card_application.address")
    application = get_application(session, actor, application_id)
    if Channel(application.channel) not in MAILED_CHANNELS:
        raise IllegalApplicationStep("Only online applications are mailed")
    if ApplicationStatus(application.status) not in (
        ApplicationStatus.SUBMITTED,
        ApplicationStatus.CHECKED,
        ApplicationStatus.IN_PRODUCTION,
    ):
        raise IllegalApplicationStep("The card has already been mailed or handed over")
    address = address.strip()
    if not 6 <= len(address) <= 200:
        raise InvalidInput(
            "Give the full mailing address (6 to 200 characters)", field="mailing_address"
        )
    application.mailing_address = address
    audit.record(
        session,
        actor,
        "card_application.address",
        object_type="card_application",
        object_id=application.id,
        region_code=application.region_code,
    )
    return application


def _application_card(session: Session, application: CardApplication) -> Card:
    card = session.get(Card, application.card_id) if application.card_id else None
    if card is None:
        raise IllegalApplicationStep("The application has no card in production")
    return card


def issue_card(
    session: Session,
    actor: Actor,
    card_id: int,
    *,
    bank_code: str,
    bank_account: str,
    outlet: str | None = None,
    proxy: Proxy | None = None,
) -> Card:
    """Hand the card over (发卡), recording the cooperating bank and account number."""
    audit.require(session, actor, Permission.CARDS_OPERATE, "card.issue")
    card = get_card(session, actor, card_id)
    resident = _resident(session, actor, card.resident_id)
    if resident.status != ResidentStatus.ACTIVE:
        raise ResidentNotActive()
    bank = check_bank(bank_code)
    account = check_account_number(bank_account)
    _check_proxy(proxy, resident)
    application = session.scalar(select(CardApplication).where(CardApplication.card_id == card.id))
    today = china_today()  # the date printed on the card is the civil date at the counter
    _transition(
        session,
        actor,
        card,
        Operation.ISSUE,
        outlet=outlet,
        reason=f"proxy: {proxy.relation}" if proxy else None,
    )
    card.issue_date = today
    card.expiry_date = (
        today.replace(year=today.year + CARD_VALIDITY_YEARS)
        if not (today.month == 2 and today.day == 29)
        else dt.date(today.year + CARD_VALIDITY_YEARS, 2, 28)
    )
    card.bank_code = bank.code
    card.bank_account = account
    card.bank_account_index = blind_index("cards.bank_account", account)
    if application is not None:
        previous = ApplicationStatus(application.status)
        application.status = ApplicationStatus.ISSUED.value
        _trail(
            session,
            application,
            previous,
            ApplicationStatus.ISSUED,
            actor,
            outlet,
            f"proxy {proxy.name} ({proxy.relation})" if proxy else None,
        )
    events.emit(
        session,
        CARD_ISSUED,
        actor,
        card_id=card.id,
        resident_id=card.resident_id,
        token=card.token,
        replaces_card_id=application.replaces_card_id if application else None,
    )
    return card


def instant_issue(
    session: Session,
    actor: Actor,
    resident_id: int,
    *,
    bank_code: str,
    bank_account: str,
    outlet: str | None = None,
    proxy: Proxy | None = None,
) -> Card:
    """立等可取: apply, check, personalise at the branch and hand over in one visit. All steps
    are recorded on the trail; a failure at any step leaves nothing behind."""
    check_bank(bank_code)
    check_account_number(bank_account)
    application = apply(
        session, actor, resident_id=resident_id, channel=Channel.INSTANT, outlet=outlet, proxy=proxy
    )
    for step in (
        ApplicationStatus.CHECKED,
        ApplicationStatus.IN_PRODUCTION,
        ApplicationStatus.READY,
    ):
        advance(session, actor, application.id, step, outlet=outlet)
    return issue_card(
        session,
        actor,
        _application_card(session, application).id,
        bank_code=bank_code,
        bank_account=bank_account,
        outlet=outlet,
        proxy=proxy,
    )


def worklist(
    session: Session, actor: Actor, statuses: tuple[ApplicationStatus, ...], limit: int = 50
) -> list[CardApplication]:
    """Applications in the actor's region waiting at one of ``statuses``, oldest first."""
    audit.require(session, actor, Permission.CARDS_READ, "card_application.list")
    return list(
        session.scalars(
            select(CardApplication)
            .where(
                CardApplication.region_code.startswith(actor.scope),
                CardApplication.status.in_([s.value for s in statuses]),
            )
            .order_by(CardApplication.id)
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class OperationResult:
    card: Card
    new_application: CardApplication | None = None


def operate(
    session: Session,
    actor: Actor,
    card_id: int,
    operation: Operation,
    *,
    reason: str | None = None,
    outlet: str | None = None,
    channel: Channel = Channel.COUNTER,
    mailing_address: str | None = None,
) -> OperationResult:
    """Run one counter operation of the lifecycle on a card; replacement and renewal also
    open the application for the new card. Residents may report their own card lost and
    apply for a replacement by mail; nothing else."""
    _authorise(session, actor, Permission.CARDS_OPERATE, f"card.{operation.value}")
    card = get_card(session, actor, card_id)
    if actor.kind is ActorKind.RESIDENT and operation not in SELF_SERVICE_OPERATIONS:
        raise audit.deny(
            session,
            actor,
            f"card.{operation.value}",
            reason="not a self-service operation",
            object_type="card",
            object_id=card.id,
        )
    if operation in (Operation.ISSUE, Operation.COMPLETE_PRODUCTION):
        raise IllegalApplicationStep("Use the issue and production steps for this")
    if operation is Operation.EXPIRE_TEMPORARY_LOSS:
        raise IllegalApplicationStep("Temporary losses lapse by the scheduled sweep")
    if operation is Operation.CANCEL and not (reason or "").strip():
        raise InvalidInput("Say why the card is cancelled", field="reason")
    if operation is Operation.ACTIVATE_BANK and not card.bank_account:
        raise InvalidInput("The card has no bank account recorded", field="bank_account")
    if (
        operation in (Operation.REPLACE, Operation.RENEW)
        and channel in MAILED_CHANNELS
        and not (mailing_address or "").strip()
    ):
        # Checked before the old card dies, so a refused request changes nothing.
        raise InvalidInput("Online applications need a mailing address", field="mailing_address")
    _transition(session, actor, card, operation, reason=reason, outlet=outlet)
    if operation is Operation.CANCEL:
        # A card cancelled before it was issued takes its application with it.
        _withdraw_open_application(session, actor, card.resident_id, card.id, reason)
    new_application = None
    if operation in (Operation.REPLACE, Operation.RENEW):
        new_application = apply(
            session,
            actor,
            resident_id=card.resident_id,
            channel=channel,
            reason=ApplicationReason.REPLACEMENT
            if operation is Operation.REPLACE
            else ApplicationReason.RENEWAL,
            mailing_address=mailing_address,
            outlet=outlet,
            replaces_card_id=card.id,
            note=reason,
        )
    return OperationResult(card, new_application)


def _transition(
    session: Session,
    actor: Actor,
    card: Card,
    operation: Operation,
    *,
    reason: str | None,
    outlet: str | None,
) -> None:
    before = CardState(card.state)
    before_loss = CardState(card.state_before_loss) if card.state_before_loss else None
    after = next_state(before, operation, before_loss)
    now = utcnow()
    card.state = after.value
    if operation is Operation.REPORT_TEMPORARY_LOSS:
        card.state_before_loss = before.value
        card.temporary_loss_until = now + dt.timedelta(days=get_settings().temporary_loss_days)
    elif before is CardState.TEMPORARY_LOSS:
        card.state_before_loss = None
        card.temporary_loss_until = None
    if operation is Operation.ACTIVATE_SOCIAL_SECURITY:
        card.social_security_activated_at = now
    if operation is Operation.ACTIVATE_BANK:
        card.bank_activated_at = now
    session.add(
        CardEvent(
            card_id=card.id,
            operation=operation.value,
            from_state=before.value,
            to_state=after.value,
            actor_kind=str(actor.kind),
            actor=actor.name,
            outlet=outlet,
            reason=reason,
        )
    )
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # Only the one-live-card index can fail here: another live card appeared meanwhile.
        raise CardExists("The resident already has another live card") from None
    if before in ACCEPTED_STATES and after in BLOCKED_STATES:
        _blacklist(session, card.token, "add", operation.value)
    elif before in BLOCKED_STATES and after in ACCEPTED_STATES:
        _blacklist(session, card.token, "remove", operation.value)
    audit.record(
        session,
        actor,
        f"card.{operation.value}",
        object_type="card",
        object_id=card.id,
        region_code=card.region_code,
        detail={"from": before.value, "to": after.value, "outlet": outlet or ""},
    )
    events.emit(
        session,
        CARD_STATE_CHANGED,
        actor,
        card_id=card.id,
        resident_id=card.resident_id,
        token=card.token,
        from_state=before.value,
        to_state=after.value,
        operation=operation.value,
    )


def _blacklist(session: Session, token: str, action: str, reason: str) -> None:
    head = session.execute(
        select(BlacklistHead).where(BlacklistHead.id == BLACKLIST_HEAD_ID).with_for_update()
    ).scalar_one()
    head.version += 1
    session.add(BlacklistChange(version=head.version, token=token, action=action, reason=reason))


def sweep_temporary_losses(session: Session, now: dt.datetime | None = None) -> int:
    """Let lapsed temporary losses expire (a scheduled job); returns how many."""
    moment = now or utcnow()
    actor = Actor.system("sweep:temporary-loss")
    due = list(
        session.scalars(
            select(Card).where(
                Card.state == CardState.TEMPORARY_LOSS.value,
                Card.temporary_loss_until <= moment,
            )
        )
    )
    for card in due:
        _transition(
            session,
            actor,
            card,
            Operation.EXPIRE_TEMPORARY_LOSS,
            reason="temporary loss lapsed",
            outlet=None,
        )
    return len(due)


@dataclass(frozen=True)
class SignedBlacklist:
    since: int
    version: int
    added: list[str]
    removed: list[str]
    issued_at: str
    key_fingerprint: str
    signature: str

    def signed_bytes(self) -> bytes:
        return blacklist_message(self.since, self.version, self.added, self.removed, self.issued_at)


def blacklist_message(
    since: int, version: int, added: list[str], removed: list[str], issued_at: str
) -> bytes:
    """The exact bytes the platform signs: a terminal recomputes them to verify."""
    return "\n".join(
        ["YKT-BLACKLIST-1", str(since), str(version), issued_at, ",".join(added), ",".join(removed)]
    ).encode()


def signed_blacklist(session: Session, since: int) -> SignedBlacklist:
    """Changes after ``since``, signed with the platform's SM2 key (GM/T 0009 default ID)."""
    delta = repository.blacklist_since(session, since)
    issued_at = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
    key = get_keyring().platform_signing_key
    message = blacklist_message(delta.since, delta.version, delta.added, delta.removed, issued_at)
    return SignedBlacklist(
        since=delta.since,
        version=delta.version,
        added=delta.added,
        removed=delta.removed,
        issued_at=issued_at,
        key_fingerprint=key.public_key().fingerprint(),
        signature=key.sign(message).hex(),
    )


def _withdraw_open_application(
    session: Session, actor: Actor, resident_id: int, card_id: int | None, reason: str | None
) -> None:
    """Withdraw the resident's open application (only the one for ``card_id`` if given)."""
    application = repository.open_application_of(session, resident_id)
    if application is None or (card_id is not None and application.card_id != card_id):
        return
    current = ApplicationStatus(application.status)
    application.status = ApplicationStatus.WITHDRAWN.value
    _trail(session, application, current, ApplicationStatus.WITHDRAWN, actor, None, reason)


def _cancel_live_card(session: Session, event: events.Event, reason: str) -> None:
    resident_id = int(event.payload["resident_id"])
    card = repository.live_card_of(session, resident_id)
    if card is not None:
        _transition(session, event.actor, card, Operation.CANCEL, reason=reason, outlet=None)
    _withdraw_open_application(session, event.actor, resident_id, None, reason)


@events.subscribe("resident.deceased")
def _on_resident_deceased(session: Session, event: events.Event) -> None:
    _cancel_live_card(session, event, "death")


@events.subscribe("resident.emigrated")
def _on_resident_emigrated(session: Session, event: events.Event) -> None:
    _cancel_live_card(session, event, "emigration")
