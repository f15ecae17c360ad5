"""The card lifecycle (R1.3) as one explicit table of allowed transitions.

Every state change of a card goes through :func:`next_state`; nothing else decides whether an
operation is allowed. ``RESTORE`` means "back to the state before the loss report" (a
temporary loss that is withdrawn or lapses returns the card to issued or active).
"""

from __future__ import annotations

import enum
from typing import Final

from yikatong.cards.models import CardState
from yikatong.errors import N_, Conflict


class Operation(enum.StrEnum):
    COMPLETE_PRODUCTION = "complete_production"  # 制卡完成
    ISSUE = "issue"  # 发卡
    ACTIVATE_SOCIAL_SECURITY = "activate_social_security"  # 启用社保功能
    ACTIVATE_BANK = "activate_bank"  # 激活金融账户
    REPORT_TEMPORARY_LOSS = "report_temporary_loss"  # 临时挂失
    CANCEL_TEMPORARY_LOSS = "cancel_temporary_loss"  # 解除临时挂失
    EXPIRE_TEMPORARY_LOSS = "expire_temporary_loss"  # 临时挂失到期（定时任务）
    REPORT_FORMAL_LOSS = "report_formal_loss"  # 正式挂失
    REPLACE = "replace"  # 补卡
    RENEW = "renew"  # 换卡
    CANCEL = "cancel"  # 注销


class _Restore:
    """Marker: the state recorded before the temporary loss."""

    def __repr__(self) -> str:
        return "RESTORE"


RESTORE: Final = _Restore()

S = CardState
O = Operation  # noqa: E741 - the table reads better with one-letter names

TRANSITIONS: Final[dict[tuple[CardState, Operation], CardState | _Restore]] = {
    (S.IN_PRODUCTION, O.COMPLETE_PRODUCTION): S.READY,
    (S.IN_PRODUCTION, O.CANCEL): S.CANCELLED,
    (S.READY, O.ISSUE): S.ISSUED,
    (S.READY, O.CANCEL): S.CANCELLED,
    (S.ISSUED, O.ACTIVATE_SOCIAL_SECURITY): S.ACTIVE,
    (S.ISSUED, O.ACTIVATE_BANK): S.ISSUED,
    (S.ISSUED, O.REPORT_TEMPORARY_LOSS): S.TEMPORARY_LOSS,
    (S.ISSUED, O.REPORT_FORMAL_LOSS): S.FORMAL_LOSS,
    (S.ISSUED, O.REPLACE): S.REPLACED,
    (S.ISSUED, O.RENEW): S.RENEWED,
    (S.ISSUED, O.CANCEL): S.CANCELLED,
    (S.ACTIVE, O.ACTIVATE_BANK): S.ACTIVE,
    (S.ACTIVE, O.REPORT_TEMPORARY_LOSS): S.TEMPORARY_LOSS,
    (S.ACTIVE, O.REPORT_FORMAL_LOSS): S.FORMAL_LOSS,
    (S.ACTIVE, O.REPLACE): S.REPLACED,
    (S.ACTIVE, O.RENEW): S.RENEWED,
    (S.ACTIVE, O.CANCEL): S.CANCELLED,
    (S.TEMPORARY_LOSS, O.CANCEL_TEMPORARY_LOSS): RESTORE,
    (S.TEMPORARY_LOSS, O.EXPIRE_TEMPORARY_LOSS): RESTORE,
    (S.TEMPORARY_LOSS, O.REPORT_FORMAL_LOSS): S.FORMAL_LOSS,
    (S.TEMPORARY_LOSS, O.REPLACE): S.REPLACED,
    (S.TEMPORARY_LOSS, O.CANCEL): S.CANCELLED,
    (S.FORMAL_LOSS, O.REPLACE): S.REPLACED,
    (S.FORMAL_LOSS, O.CANCEL): S.CANCELLED,
}

# No operation leaves these: the card is dead.
TERMINAL_STATES: Final = frozenset({S.REPLACED, S.RENEWED, S.CANCELLED})
# States in which terminals accept the card; every other issued-once state is blacklisted.
ACCEPTED_STATES: Final = frozenset({S.ISSUED, S.ACTIVE})
BLOCKED_STATES: Final = frozenset(
    {S.TEMPORARY_LOSS, S.FORMAL_LOSS, S.REPLACED, S.RENEWED, S.CANCELLED}
)
# Operations that staff at a counter may run by hand (the rest belong to production and jobs).
COUNTER_OPERATIONS: Final = (
    O.ISSUE,
    O.ACTIVATE_SOCIAL_SECURITY,
    O.ACTIVATE_BANK,
    O.REPORT_TEMPORARY_LOSS,
    O.CANCEL_TEMPORARY_LOSS,
    O.REPORT_FORMAL_LOSS,
    O.REPLACE,
    O.RENEW,
    O.CANCEL,
)


class IllegalTransition(Conflict):
    """The operation is not allowed in the card's current state; ``allowed`` lists what is."""

    code = "illegal_card_transition"
    title = N_("This operation is not allowed in the card's current state")


def allowed_operations(state: CardState) -> list[Operation]:
    """Operations the table allows from ``state``, in declaration order."""
    return [op for op in Operation if (state, op) in TRANSITIONS]


def next_state(
    state: CardState, operation: Operation, state_before_loss: CardState | None = None
) -> CardState:
    """The state after ``operation``, or :class:`IllegalTransition` naming the allowed ones."""
    target = TRANSITIONS.get((state, operation))
    if target is None:
        allowed = allowed_operations(state)
        raise IllegalTransition(
            "Cannot {operation} a card that is {state}; allowed: {allowed}",
            params={
                "operation": operation.value,
                "state": state.value,
                "allowed": ", ".join(op.value for op in allowed) or "none",
            },
            state=state.value,
            operation=operation.value,
            allowed=[op.value for op in allowed],
        )
    if isinstance(target, _Restore):
        if state_before_loss not in (S.ISSUED, S.ACTIVE):
            raise ValueError(f"no state to restore from {state_before_loss!r}")
        return state_before_loss
    return target
