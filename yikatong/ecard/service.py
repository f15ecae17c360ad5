"""The electronic social security card (电子社保卡, R1.5) and its dynamic QR code (R1.6).

One e-card per physical card, issued from a card that is issued or active, at level 1 (identity
and queries) or level 2 (payment, only with the card's bank account activated), protected by
its own six-digit password (argon2id over an HMAC-SM3 pepper from the key ring, so a copy of
the database alone does not let anyone try the million possible passwords offline; five wrong
passwords lock it for a day or until a clerk resets it).

The e-card follows its card at once, in the card's own transaction (``card.state_changed``):
a loss suspends it, withdrawing a temporary loss reactivates it, replacement, renewal or
cancellation revokes it. When the replacement card is issued (``card.issued`` with
``replaces_card_id``) the e-card is re-bound automatically: a new e-card on the new card
carries over the password and any lockout, at level 2 only if the new card's bank account is
already activated (otherwise level 1; the holder upgrades after activation). Old codes die with
the old card either way, because a code carries the card's token.

Who may act: the resident on their own e-card (``Actor.resident``, from the portal) or staff
within their region — ``cards:operate`` to issue, change or reset, ``cards:read`` to view and
to verify codes online. Every change, read and verification is audited with the card token,
never the ID number.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yikatong.audit import service as audit
from yikatong.cards import repository as cards_repository
from yikatong.cards.lifecycle import ACCEPTED_STATES, TERMINAL_STATES
from yikatong.cards.models import Card, CardState
from yikatong.crypto.keystore import get_keyring
from yikatong.crypto.masking import mask_name
from yikatong.crypto.sm3 import hmac_sm3
from yikatong.db import utcnow
from yikatong.ecard import qr, repository
from yikatong.ecard.errors import (
    EcardCardNotUsable,
    EcardExists,
    EcardLevelInsufficient,
    EcardLevelRefused,
    EcardLocked,
    EcardNotActive,
    EcardNotFound,
    EcardPasswordWrong,
    EcardWeakPassword,
    QrCardBlocked,
    QrError,
    QrExpired,
    QrMalformed,
    QrNotYetValid,
    QrReplayed,
    QrWrongPurpose,
)
from yikatong.ecard.models import ECard, ECardLevel, ECardStatus
from yikatong.ecard.qr import PublishedKey, Purpose
from yikatong.errors import NotFound, YikatongError
from yikatong.kit import events
from yikatong.kit.actor import Actor, ActorKind, Permission
from yikatong.residents.models import Resident
from yikatong.settings import get_settings

MAX_PASSWORD_FAILURES = 5
PASSWORD_LOCKOUT = dt.timedelta(hours=24)  # like a bank card PIN; a clerk can reset sooner
# Retired signing keys stay published and accepted this long after their successor took over:
# far beyond a code's lifetime, so workers that have not reloaded the key ring yet and
# terminals that sync keys daily keep working through a rotation.
RETIRED_KEY_GRACE = dt.timedelta(hours=24)
PRUNE_EVERY = 256  # online verifications between two sweeps of expired nonces
PASSWORD_PEPPER_FIELD = "ecards.password"  # noqa: S105 - a key label, not a secret

ECARD_ISSUED = "ecard.issued"
ECARD_STATUS_CHANGED = "ecard.status_changed"

_hasher = PasswordHasher()
_verifications = itertools.count(1)
_SIX_DIGITS = re.compile(r"[0-9]{6}")


# --- passwords --------------------------------------------------------------------------------


def _peppered(password: str) -> bytes:
    return hmac_sm3(get_keyring().index_key_for(PASSWORD_PEPPER_FIELD), password.encode())


def _hash_password(password: str) -> str:
    return _hasher.hash(_peppered(password))


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, _peppered(password))
    except (VerificationError, InvalidHashError):
        return False


def _birth_date_forms(birth_date: dt.date) -> set[str]:
    y4, y2 = f"{birth_date.year:04d}", f"{birth_date.year % 100:02d}"
    m, d = f"{birth_date.month:02d}", f"{birth_date.day:02d}"
    return {y2 + m + d, m + d + y2, d + m + y2, y4 + m, m + y4, y4[2:] + m + d}


def check_password_policy(password: str, resident: Resident | None = None) -> None:
    """Six ASCII digits, not guessable: no run (123456, 654321), fewer than three different
    digits (000000, 121212), repeated half (258258), birth date or last six of the ID number."""
    if not _SIX_DIGITS.fullmatch(password):
        raise EcardWeakPassword("The password must be exactly six digits", field="password")
    steps = {int(b) - int(a) for a, b in itertools.pairwise(password)}
    guessable: list[str] = []
    if len(set(password)) < 3:
        guessable.append("too few different digits")
    if steps in ({1}, {-1}):
        guessable.append("consecutive digits")
    if password[:3] == password[3:]:
        guessable.append("a repeated group")
    if resident is not None:
        if password in _birth_date_forms(resident.birth_date):
            guessable.append("the birth date")
        if password == resident.id_number[-6:]:
            guessable.append("the end of the ID number")
    if guessable:
        raise EcardWeakPassword(
            "The password is too easy to guess ({why})",
            field="password",
            params={"why": ", ".join(guessable)},
        )


# --- who may act ------------------------------------------------------------------------------


def is_resident_actor(actor: Actor) -> bool:
    return actor.kind is ActorKind.RESIDENT


def _authorise(
    session: Session, actor: Actor, resident_id: int, permission: Permission, action: str
) -> Resident:
    """The resident acting on their own e-card, or staff holding ``permission`` in region."""
    own = is_resident_actor(actor)
    if own:
        if actor.id != str(resident_id):
            raise audit.deny(
                session,
                actor,
                action,
                reason="another resident's electronic card",
                object_type="resident",
                object_id=resident_id,
            )
    else:
        audit.require(session, actor, permission, action)
    resident = session.get(Resident, resident_id)
    if resident is None or not (own or actor.covers(resident.region_code)):
        raise NotFound("No resident {id}", params={"id": resident_id})
    return resident


def _live_ecard(session: Session, resident_id: int, *, for_update: bool = False) -> ECard:
    ecard = repository.live_ecard_of(session, resident_id, for_update=for_update)
    if ecard is None:
        raise EcardNotFound("The resident has no electronic card in use")
    return ecard


def _require_active(ecard: ECard) -> None:
    if ecard.status != ECardStatus.ACTIVE:
        raise EcardNotActive(
            "The electronic card is {status}",
            params={"status": ecard.status},
            status=ecard.status,
            reason=ecard.suspended_reason or ecard.revoked_reason,
        )


def _record(
    session: Session,
    actor: Actor,
    action: str,
    ecard: ECard,
    region_code: str,
    *,
    outcome: str = audit.Outcome.SUCCESS,
    **detail: object,
) -> None:
    audit.record(
        session,
        actor,
        action,
        object_type="ecard",
        object_id=ecard.id,
        region_code=region_code,
        outcome=outcome,
        detail={"card_id": ecard.card_id, **detail},
    )


# --- the e-card -------------------------------------------------------------------------------


def get_ecard(session: Session, actor: Actor, resident_id: int) -> ECard:
    """The resident's e-card in use (active or suspended); the read is audited."""
    resident = _authorise(session, actor, resident_id, Permission.CARDS_READ, "ecard.read")
    ecard = _live_ecard(session, resident_id)
    _record(session, actor, "ecard.read", ecard, resident.region_code)
    return ecard


def issue_ecard(
    session: Session,
    actor: Actor,
    resident_id: int,
    password: str,
    level: ECardLevel = ECardLevel.IDENTITY,
) -> ECard:
    """Issue (签发) the e-card of the resident's card in use, with its six-digit password.

    Refused with 409 when the resident has no issued or active card (``ecard_card_not_usable``),
    already has an e-card (``ecard_exists``), or asks for level 2 without an activated bank
    account (``ecard_level_refused``); 422 ``ecard_weak_password`` for a guessable password.
    """
    resident = _authorise(session, actor, resident_id, Permission.CARDS_OPERATE, "ecard.issue")
    level = ECardLevel(level)
    card = cards_repository.live_card_of(session, resident_id)
    if card is None or card.state not in ACCEPTED_STATES:
        raise EcardCardNotUsable()
    if repository.live_ecard_of(session, resident_id) is not None:
        raise EcardExists()
    if level is ECardLevel.PAYMENT and card.bank_activated_at is None:
        raise EcardLevelRefused()
    check_password_policy(password, resident)
    now = utcnow()
    # The holder may have given up this card's e-card before: it is issued again in place
    # (one row per card), keeping a lockout still running so that giving up and re-issuing
    # is no way around it.
    ecard = repository.ecard_of_card(session, card.id)
    if ecard is None:
        ecard = ECard(resident_id=resident_id, card_id=card.id, failed_attempts=0)
        session.add(ecard)
    elif ecard.locked_until is None or ecard.locked_until <= now:
        ecard.failed_attempts = 0
        ecard.locked_until = None
    ecard.level = int(level)
    ecard.status = ECardStatus.ACTIVE.value
    ecard.password_hash = _hash_password(password)
    ecard.suspended_reason = None
    ecard.revoked_reason = None
    ecard.revoked_at = None
    ecard.issued_at = now
    ecard.password_changed_at = now
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # The one-live-e-card index: a concurrent request issued one meanwhile.
        raise EcardExists() from None
    _record(session, actor, "ecard.issue", ecard, resident.region_code, level=int(level))
    events.emit(
        session,
        ECARD_ISSUED,
        actor,
        ecard_id=ecard.id,
        resident_id=resident_id,
        card_id=card.id,
        level=int(level),
        previous_ecard_id=None,
    )
    return ecard


def _check_password(
    session: Session, actor: Actor, ecard: ECard, password: str, action: str, region_code: str
) -> None:
    """Verify the password of a locked-for-update e-card, counting and auditing failures."""
    now = utcnow()
    if ecard.locked_until is not None and ecard.locked_until > now:
        _record(
            session,
            actor,
            action,
            ecard,
            region_code,
            outcome=audit.Outcome.DENIED,
            reason="locked",
        )
        raise EcardLocked(
            "The electronic card password is locked until {until}",
            params={"until": ecard.locked_until.isoformat(timespec="minutes")},
            locked_until=ecard.locked_until.isoformat(),
        )
    if not _password_matches(ecard.password_hash, password):
        ecard.failed_attempts += 1
        locked = ecard.failed_attempts >= MAX_PASSWORD_FAILURES
        left = MAX_PASSWORD_FAILURES - ecard.failed_attempts
        if locked:
            ecard.locked_until = now + PASSWORD_LOCKOUT
            ecard.failed_attempts = 0
        _record(
            session,
            actor,
            action,
            ecard,
            region_code,
            outcome=audit.Outcome.FAILED,
            locked=locked,
        )
        session.flush()
        if locked:
            until = now + PASSWORD_LOCKOUT
            raise EcardLocked(
                "Too many wrong passwords; the electronic card password is locked until {until}",
                params={"until": until.isoformat(timespec="minutes")},
                locked_until=until.isoformat(),
            )
        raise EcardPasswordWrong(
            "Wrong password; {left} attempt(s) left before it locks",
            params={"left": left},
            attempts_left=left,
        )
    ecard.failed_attempts = 0
    ecard.locked_until = None
    if _hasher.check_needs_rehash(ecard.password_hash):
        ecard.password_hash = _hash_password(password)


def verify_password(session: Session, actor: Actor, resident_id: int, password: str) -> ECard:
    """Check the e-card password (the second step before payment-level actions).

    A wrong password is counted and audited although the request fails (403
    ``ecard_password_wrong``, ``attempts_left``); the fifth in a row locks it for
    :data:`PASSWORD_LOCKOUT` (429 ``ecard_locked``). Both keep their changes.
    """
    action = "ecard.verify_password"
    resident = _authorise(session, actor, resident_id, Permission.CARDS_OPERATE, action)
    ecard = _live_ecard(session, resident_id, for_update=True)
    _require_active(ecard)
    _check_password(session, actor, ecard, password, action, resident.region_code)
    _record(session, actor, action, ecard, resident.region_code)
    return ecard


def change_password(
    session: Session, actor: Actor, resident_id: int, old_password: str, new_password: str
) -> ECard:
    """Change the password, proving the old one (counted like :func:`verify_password`)."""
    action = "ecard.change_password"
    resident = _authorise(session, actor, resident_id, Permission.CARDS_OPERATE, action)
    ecard = _live_ecard(session, resident_id, for_update=True)
    _require_active(ecard)
    check_password_policy(new_password, resident)
    if new_password == old_password:
        raise EcardWeakPassword("The new password must differ from the old one", field="password")
    _check_password(session, actor, ecard, old_password, action, resident.region_code)
    ecard.password_hash = _hash_password(new_password)
    ecard.password_changed_at = utcnow()
    _record(session, actor, action, ecard, resident.region_code)
    return ecard


def reset_password(session: Session, actor: Actor, resident_id: int, new_password: str) -> ECard:
    """A clerk who checked the holder in person sets a new password and lifts a lockout."""
    action = "ecard.reset_password"
    if is_resident_actor(actor):
        raise audit.deny(
            session, actor, action, reason="a reset needs a clerk", object_id=resident_id
        )
    resident = _authorise(session, actor, resident_id, Permission.CARDS_OPERATE, action)
    ecard = _live_ecard(session, resident_id, for_update=True)
    check_password_policy(new_password, resident)
    ecard.password_hash = _hash_password(new_password)
    ecard.password_changed_at = utcnow()
    ecard.failed_attempts = 0
    ecard.locked_until = None
    _record(session, actor, action, ecard, resident.region_code)
    return ecard


def upgrade_level(session: Session, actor: Actor, resident_id: int, password: str) -> ECard:
    """Raise the e-card to level 2 (payment); needs the password and an activated bank account."""
    action = "ecard.upgrade_level"
    resident = _authorise(session, actor, resident_id, Permission.CARDS_OPERATE, action)
    ecard = _live_ecard(session, resident_id, for_update=True)
    _require_active(ecard)
    card = session.get(Card, ecard.card_id)
    if card is None or card.bank_activated_at is None:
        raise EcardLevelRefused()
    _check_password(session, actor, ecard, password, action, resident.region_code)
    ecard.level = int(ECardLevel.PAYMENT)
    _record(session, actor, action, ecard, resident.region_code, level=ecard.level)
    return ecard


def downgrade_level(session: Session, actor: Actor, resident_id: int) -> ECard:
    """Back to level 1 (identity and queries only); needs no password, it only gives up."""
    action = "ecard.downgrade_level"
    resident = _authorise(session, actor, resident_id, Permission.CARDS_OPERATE, action)
    ecard = _live_ecard(session, resident_id)
    ecard.level = int(ECardLevel.IDENTITY)
    _record(session, actor, action, ecard, resident.region_code, level=ecard.level)
    return ecard


def revoke_ecard(session: Session, actor: Actor, resident_id: int) -> ECard:
    """The holder gives up the e-card (注销); it can be issued again from the same card."""
    action = "ecard.revoke"
    resident = _authorise(session, actor, resident_id, Permission.CARDS_OPERATE, action)
    ecard = _live_ecard(session, resident_id)
    _set_status(session, actor, ecard, ECardStatus.REVOKED, "holder", resident.region_code)
    return ecard


def _set_status(
    session: Session,
    actor: Actor,
    ecard: ECard,
    status: ECardStatus,
    reason: str | None,
    region_code: str,
) -> None:
    before = ecard.status
    ecard.status = status.value
    if status is ECardStatus.SUSPENDED:
        ecard.suspended_reason = reason
    elif status is ECardStatus.REVOKED:
        ecard.revoked_reason = reason
        ecard.revoked_at = utcnow()
    else:
        ecard.suspended_reason = None
    action = {
        ECardStatus.ACTIVE: "ecard.reactivate",
        ECardStatus.SUSPENDED: "ecard.suspend",
        ECardStatus.REVOKED: "ecard.revoke",
    }[status]
    _record(session, actor, action, ecard, region_code, reason=reason or "", previous=before)
    events.emit(
        session,
        ECARD_STATUS_CHANGED,
        actor,
        ecard_id=ecard.id,
        resident_id=ecard.resident_id,
        card_id=ecard.card_id,
        from_status=before,
        to_status=status.value,
        reason=reason,
    )


# --- following the card -----------------------------------------------------------------------


def _card_region(session: Session, card_id: int) -> str:
    card = session.get(Card, card_id)
    return card.region_code if card is not None else get_settings().region_code


@events.subscribe("card.state_changed")
def _follow_card(session: Session, event: events.Event) -> None:
    """Suspend, reactivate or revoke the card's e-card in the same transaction."""
    ecard = repository.ecard_of_card(session, int(event.payload["card_id"]))
    if ecard is None or ecard.status == ECardStatus.REVOKED:
        return
    state = CardState(event.payload["to_state"])
    reason = f"card:{state.value}"
    region = _card_region(session, ecard.card_id)
    if state in TERMINAL_STATES:
        _set_status(session, event.actor, ecard, ECardStatus.REVOKED, reason, region)
    elif state in ACCEPTED_STATES:
        # Only a suspension the card caused is lifted by the card.
        if ecard.status == ECardStatus.SUSPENDED and (ecard.suspended_reason or "").startswith(
            "card:"
        ):
            _set_status(session, event.actor, ecard, ECardStatus.ACTIVE, None, region)
    elif ecard.status == ECardStatus.ACTIVE or ecard.suspended_reason != reason:
        _set_status(session, event.actor, ecard, ECardStatus.SUSPENDED, reason, region)


@events.subscribe("card.issued")
def _rebind_on_replacement(session: Session, event: events.Event) -> None:
    """Carry the e-card over to a replacement or renewed card when that card is issued."""
    replaced_id = event.payload.get("replaces_card_id")
    if replaced_id is None:
        return
    new_card_id = int(event.payload["card_id"])
    old = repository.ecard_of_card(session, int(replaced_id))
    card = session.get(Card, new_card_id)
    if old is None or card is None or card.state not in ACCEPTED_STATES:
        return
    if repository.ecard_of_card(session, new_card_id) is not None:
        return
    if old.status != ECardStatus.REVOKED:
        # Normally the old card's own state change revoked it already.
        _set_status(
            session, event.actor, old, ECardStatus.REVOKED, "card:replaced", card.region_code
        )
        session.flush()
    elif not (old.revoked_reason or "").startswith("card:"):
        return  # the holder gave it up: a replacement card does not bring it back
    level = (
        ECardLevel.PAYMENT
        if old.level == ECardLevel.PAYMENT and card.bank_activated_at is not None
        else ECardLevel.IDENTITY
    )
    now = utcnow()
    ecard = ECard(
        resident_id=old.resident_id,
        card_id=new_card_id,
        level=int(level),
        status=ECardStatus.ACTIVE.value,
        password_hash=old.password_hash,
        failed_attempts=old.failed_attempts,
        locked_until=old.locked_until,
        previous_ecard_id=old.id,
        issued_at=now,
        password_changed_at=old.password_changed_at,
    )
    session.add(ecard)
    session.flush()
    _record(
        session,
        event.actor,
        "ecard.rebind",
        ecard,
        card.region_code,
        level=int(level),
        previous_ecard_id=old.id,
    )
    events.emit(
        session,
        ECARD_ISSUED,
        event.actor,
        ecard_id=ecard.id,
        resident_id=ecard.resident_id,
        card_id=new_card_id,
        level=int(level),
        previous_ecard_id=old.id,
    )


# --- keys -------------------------------------------------------------------------------------


def published_keys(now: dt.datetime | None = None) -> list[PublishedKey]:
    """The platform verification keys terminals should hold now (``GET /api/v1/ecard/keys``).

    Pending keys are published before they sign (terminals fetch them ahead of the take-over);
    retired keys stay for :data:`RETIRED_KEY_GRACE` after their successor took over; revoked
    keys are never published.
    """
    moment = now or utcnow()
    published = []
    for key in get_keyring().signing_keys:
        if key.revoked_at is not None:
            continue
        valid_until = key.retired_at + RETIRED_KEY_GRACE if key.retired_at else None
        if valid_until is not None and valid_until <= moment:
            continue
        published.append(
            PublishedKey(
                key.version, key.public_key, key.not_before, valid_until, key.state(moment)
            )
        )
    return published


# --- codes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedCode:
    """A code to show: its QR text and when it stops verifying."""

    text: str
    purpose: Purpose
    key_id: int
    issued_at: dt.datetime
    expires_at: dt.datetime


def issue_code(
    session: Session,
    actor: Actor,
    resident_id: int,
    purpose: Purpose,
    *,
    lifetime: int = qr.DEFAULT_LIFETIME,
    now: dt.datetime | None = None,
) -> IssuedCode:
    """Sign a fresh QR code (亮码) for the resident's active e-card.

    Payment codes need a level 2 e-card whose password is not locked. The portal asks for the
    e-card password (:func:`verify_password`) before it first shows a payment code and then
    refreshes codes without asking again. 404 ``ecard_not_found``, 409 ``ecard_not_active`` or
    ``ecard_level_insufficient``, 429 ``ecard_locked``.

    Issuing is not audited per code: it reads nothing but the holder's own pseudonymous token
    and changes nothing, and the portal refreshes a displayed code every minute. What is
    audited is what matters for misuse: every verification of a code (with its token and
    result), the password check that unlocks payment codes, and every change of the e-card.
    Staff issuing a code for a resident are audited (``ecard.issue_code``).
    """
    purpose = Purpose(purpose)
    resident_id = int(resident_id)
    action = "ecard.issue_code"
    if is_resident_actor(actor) and actor.id == str(resident_id):
        own = True
    else:
        own = False
        _authorise(session, actor, resident_id, Permission.CARDS_OPERATE, action)
    context = repository.code_context(session, resident_id)
    if context is None:
        raise EcardNotFound("The resident has no electronic card in use")
    if not own and not actor.covers(context.region_code):
        raise NotFound("No resident {id}", params={"id": resident_id})
    if context.ecard_status != ECardStatus.ACTIVE:
        raise EcardNotActive(
            "The electronic card is {status}",
            params={"status": context.ecard_status},
            status=context.ecard_status,
            reason=context.suspended_reason,
        )
    if context.card_state not in ACCEPTED_STATES:
        raise EcardNotActive("The card of this electronic card is not in use")
    moment = now or utcnow()
    if purpose is Purpose.PAYMENT:
        if context.ecard_level < ECardLevel.PAYMENT or not context.bank_activated:
            raise EcardLevelInsufficient()
        if context.locked_until is not None and context.locked_until > moment:
            raise EcardLocked(
                "The electronic card password is locked until {until}",
                params={"until": context.locked_until.isoformat(timespec="minutes")},
                locked_until=context.locked_until.isoformat(),
            )
    key_id, key = get_keyring().active_signing_key(moment)
    payload = qr.new_payload(
        key_id=key_id,
        token=context.card_token,
        purpose=purpose,
        region=context.issuing_region,
        now=moment,
        lifetime=lifetime,
    )
    text = qr.encode(qr.sign_code(payload, key))
    if not own:
        audit.record(
            session,
            actor,
            action,
            object_type="ecard",
            object_id=context.ecard_id,
            region_code=context.region_code,
            detail={"card_id": context.card_id, "purpose": purpose.value, "key_id": key_id},
        )
    return IssuedCode(
        text=text,
        purpose=purpose,
        key_id=key_id,
        issued_at=dt.datetime.fromtimestamp(payload.issued_at, dt.UTC),
        expires_at=dt.datetime.fromtimestamp(payload.expires_at, dt.UTC),
    )


@dataclass(frozen=True)
class OnlineVerification:
    """What a verifier learns from a code: the pseudonymous token, and only what the purpose
    needs (a masked name and county for identity and medical use; nothing more for payment)."""

    token: str
    purpose: Purpose
    key_id: int
    issued_at: dt.datetime
    expires_at: dt.datetime
    issuing_region: str
    ecard_level: int
    holder_name: str | None
    region_code: str | None


@dataclass(frozen=True)
class CodeCheck:
    """One code after the offline step of online verification, before the database step.

    ``code`` is set when signature, validity and purpose checked out, ``error`` otherwise;
    ``token`` and ``key_id`` are known whenever the signature was the platform's (an expired
    or wrong-purpose code still names its card in the audit trail).
    """

    actor: Actor
    purpose: Purpose
    code: qr.VerifiedCode | None = None
    error: QrError | None = None
    token: str | None = None
    key_id: int | None = None


def check_code(actor: Actor, code_text: str, purpose: Purpose, now: dt.datetime) -> CodeCheck:
    """The offline step: format, key, SM2 signature, validity and purpose.

    CPU only, no database and no shared state, so it can run in any thread: the terminal
    gateway runs it in a thread pool (the SM2 verification releases the GIL) while the event
    loop reads the next requests.
    """
    purpose = Purpose(purpose)
    try:
        code = qr.verify_offline(code_text, qr.trusted_keys(published_keys(now), now), now, purpose)
    except QrError as exc:
        token = key_id = None
        if isinstance(exc, QrExpired | QrNotYetValid | QrWrongPurpose):
            # The signature checked out before these: the token is the platform's own.
            payload = qr.decode(code_text).payload
            token, key_id = payload.token_hex, payload.key_id
        return CodeCheck(actor, purpose, error=exc, token=token, key_id=key_id)
    return CodeCheck(actor, purpose, code=code, token=code.token, key_id=code.key_id)


def settle_codes(
    session: Session, checks: Sequence[CodeCheck], now: dt.datetime
) -> list[OnlineVerification | YikatongError]:
    """The database step of online verification for many codes at once, in one transaction.

    For each code, in order: the verifier holds ``cards:read`` (else 403, audited as denied);
    the offline step passed; the card behind the token is issued or active — which is also
    what the blacklist says, since the blacklist is the set of tokens whose card is in a
    blocked state (``qr_card_blocked``); the e-card is active (``ecard_not_active``); a
    payment code comes from a level 2 e-card (``ecard_level_insufficient``); and the code's
    nonce was never accepted before (``qr_replayed``, also when the same code appears twice
    in one batch: the first one wins). Every verification, accepted or refused, is audited
    with the token, purpose and result; refusals are returned, not raised, so the batch
    commits with all of its audit entries.

    Three statements whatever the batch size (facts, nonces, audit), which is what lets the
    terminal gateway reach its rate: see :mod:`yikatong.ecard.gateway`.
    """
    results: list[OnlineVerification | YikatongError | None] = [
        None
        if check.actor.can(Permission.CARDS_READ)
        else audit.deny(
            session,
            check.actor,
            "ecard.verify_code",
            reason=f"missing permission {Permission.CARDS_READ.value}",
        )
        for check in checks
    ]
    denied = {i for i, result in enumerate(results) if result is not None}
    facts = repository.verification_facts(
        session,
        {c.code.token for i, c in enumerate(checks) if c.code is not None and i not in denied},
    )
    # The checks that need no nonce; the survivors claim their nonce, first one first.
    claims: dict[bytes, int] = {}
    for index, check in enumerate(checks):
        if index not in denied:
            results[index] = _refusal(check, facts)
            if results[index] is None and check.code is not None:
                if check.code.nonce in claims:
                    results[index] = QrReplayed()
                else:
                    claims[check.code.nonce] = index
    keep = dt.timedelta(seconds=qr.CLOCK_SKEW + 1)
    fresh = repository.consume_nonces(
        session, [(nonce, _expiry(checks[i]) + keep) for nonce, i in claims.items()]
    )
    entries: list[audit.Pending] = []
    for index, check in enumerate(checks):
        if index in denied:
            continue
        fact = facts.get(check.token) if check.token is not None else None
        result = results[index]
        if result is None and check.code is not None and check.code.nonce not in fresh:
            result = QrReplayed()
        if result is None:
            result = _accepted(check, fact)
        elif isinstance(result, YikatongError):
            result.keep_changes = True
        results[index] = result
        entries.append(_audit_entry(check, fact, result))
    audit.record_many(session, entries)
    accepted = sum(isinstance(r, OnlineVerification) for r in results)
    if accepted and _count_verifications(accepted):
        repository.prune_nonces(session, now)
    return [r for r in results if r is not None]


def _refusal(
    check: CodeCheck, facts: dict[str, repository.VerificationFacts]
) -> YikatongError | None:
    """Why a code that passed the offline step is still refused, before its nonce."""
    code = check.code
    if code is None:
        return check.error or QrMalformed()
    fact = facts.get(code.token)
    if fact is None or fact.card_state not in ACCEPTED_STATES:
        return QrCardBlocked()
    if fact.ecard_status != ECardStatus.ACTIVE:
        return EcardNotActive()
    if check.purpose is Purpose.PAYMENT and (fact.ecard_level or 0) < ECardLevel.PAYMENT:
        return EcardLevelInsufficient()
    return None


def _expiry(check: CodeCheck) -> dt.datetime:
    if check.code is None:  # pragma: no cover - only codes that passed claim a nonce
        raise ValueError("a refused code has no nonce to claim")
    return check.code.expires_at


def _accepted(
    check: CodeCheck, fact: repository.VerificationFacts | None
) -> OnlineVerification | YikatongError:
    code = check.code
    if code is None or fact is None:  # pragma: no cover - guarded by _refusal
        return QrCardBlocked()
    reveals_holder = check.purpose is not Purpose.PAYMENT
    return OnlineVerification(
        token=code.token,
        purpose=check.purpose,
        key_id=code.key_id,
        issued_at=code.issued_at,
        expires_at=code.expires_at,
        issuing_region=code.region,
        ecard_level=fact.ecard_level or int(ECardLevel.IDENTITY),
        holder_name=mask_name(fact.resident_name) if reveals_holder else None,
        region_code=fact.region_code if reveals_holder else None,
    )


def _audit_entry(
    check: CodeCheck,
    fact: repository.VerificationFacts | None,
    result: OnlineVerification | YikatongError,
) -> audit.Pending:
    """The audit entry of one verification: its token, purpose and result, never a name."""
    detail: dict[str, object] = {"token": check.token or "", "purpose": check.purpose.value}
    if isinstance(result, YikatongError):
        detail.update(result=result.code, key_id=check.key_id)
    else:
        detail["result"] = "accepted"
    return audit.Pending(
        check.actor,
        "ecard.verify_code",
        object_type="card" if fact is not None else None,
        object_id=fact.card_id if fact is not None else None,
        region_code=fact.region_code if fact is not None else get_settings().region_code,
        outcome=audit.Outcome.FAILED
        if isinstance(result, YikatongError)
        else audit.Outcome.SUCCESS,
        detail=detail,
    )


def _count_verifications(accepted: int) -> bool:
    """Count accepted verifications; True every :data:`PRUNE_EVERY` of them."""
    before = next(_verifications)
    for _ in range(accepted - 1):
        next(_verifications)
    return before // PRUNE_EVERY != (before + accepted) // PRUNE_EVERY


def verify_online(
    session: Session,
    actor: Actor,
    code_text: str,
    purpose: Purpose,
    *,
    now: dt.datetime | None = None,
) -> OnlineVerification:
    """Verify one code online: the offline checks (:func:`check_code`), then the database
    checks (:func:`settle_codes`): card in use and not blacklisted, e-card active, never
    accepted before. Every verification, accepted or refused, is audited.

    Errors: 403 without ``cards:read``; 422 ``qr_malformed``, ``qr_unknown_key``,
    ``qr_bad_signature``, ``qr_expired``, ``qr_not_yet_valid``, ``qr_wrong_purpose``;
    409 ``qr_replayed``, ``qr_card_blocked``, ``ecard_not_active``,
    ``ecard_level_insufficient``. Refusals keep their audit entry.
    """
    moment = now or utcnow()
    if not actor.can(Permission.CARDS_READ):
        # Refuse before any work, as every other service does.
        audit.require(session, actor, Permission.CARDS_READ, "ecard.verify_code")
    (result,) = settle_codes(session, [check_code(actor, code_text, purpose, moment)], moment)
    if isinstance(result, YikatongError):
        raise result
    return result


def prune_nonces(session: Session, now: dt.datetime | None = None) -> int:
    """Forget the nonces of codes that can no longer verify (a scheduled job, or the CLI)."""
    return repository.prune_nonces(session, now or utcnow())
