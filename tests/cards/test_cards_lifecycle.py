"""The lifecycle table, exhaustively: every state × every operation."""

from __future__ import annotations

import pytest

from yikatong.cards.lifecycle import (
    ACCEPTED_STATES,
    BLOCKED_STATES,
    RESTORE,
    TERMINAL_STATES,
    TRANSITIONS,
    IllegalTransition,
    Operation,
    allowed_operations,
    next_state,
)
from yikatong.cards.models import LIVE_STATES, CardState

S, O = CardState, Operation  # noqa: E741 - short names keep the table readable

# The expected table written out independently, one row per state (R1.3).
EXPECTED: dict[CardState, dict[Operation, CardState | str]] = {
    S.IN_PRODUCTION: {O.COMPLETE_PRODUCTION: S.READY, O.CANCEL: S.CANCELLED},
    S.READY: {O.ISSUE: S.ISSUED, O.CANCEL: S.CANCELLED},
    S.ISSUED: {
        O.ACTIVATE_SOCIAL_SECURITY: S.ACTIVE,
        O.ACTIVATE_BANK: S.ISSUED,
        O.REPORT_TEMPORARY_LOSS: S.TEMPORARY_LOSS,
        O.REPORT_FORMAL_LOSS: S.FORMAL_LOSS,
        O.REPLACE: S.REPLACED,
        O.RENEW: S.RENEWED,
        O.CANCEL: S.CANCELLED,
    },
    S.ACTIVE: {
        O.ACTIVATE_BANK: S.ACTIVE,
        O.REPORT_TEMPORARY_LOSS: S.TEMPORARY_LOSS,
        O.REPORT_FORMAL_LOSS: S.FORMAL_LOSS,
        O.REPLACE: S.REPLACED,
        O.RENEW: S.RENEWED,
        O.CANCEL: S.CANCELLED,
    },
    S.TEMPORARY_LOSS: {
        O.CANCEL_TEMPORARY_LOSS: "restore",
        O.EXPIRE_TEMPORARY_LOSS: "restore",
        O.REPORT_FORMAL_LOSS: S.FORMAL_LOSS,
        O.REPLACE: S.REPLACED,
        O.CANCEL: S.CANCELLED,
    },
    S.FORMAL_LOSS: {O.REPLACE: S.REPLACED, O.CANCEL: S.CANCELLED},
    S.REPLACED: {},
    S.RENEWED: {},
    S.CANCELLED: {},
}


def test_the_table_is_exactly_the_expected_one() -> None:
    actual = {
        state: {
            op: ("restore" if target is RESTORE else target)
            for (st, op), target in TRANSITIONS.items()
            if st is state
        }
        for state in CardState
    }
    assert actual == EXPECTED


@pytest.mark.parametrize("state", list(CardState))
@pytest.mark.parametrize("operation", list(Operation))
def test_every_state_and_operation(state: CardState, operation: Operation) -> None:
    expected = EXPECTED[state].get(operation)
    if expected is None:
        with pytest.raises(IllegalTransition) as caught:
            next_state(state, operation, S.ACTIVE)
        assert caught.value.status == 409
        assert caught.value.extra["allowed"] == [op.value for op in allowed_operations(state)]
        assert state.value in caught.value.detail
    elif expected == "restore":
        assert next_state(state, operation, S.ISSUED) is S.ISSUED
        assert next_state(state, operation, S.ACTIVE) is S.ACTIVE
        with pytest.raises(ValueError, match="restore"):
            next_state(state, operation, None)
    else:
        assert next_state(state, operation) is expected


def test_terminal_states_have_no_way_out() -> None:
    for state in TERMINAL_STATES:
        assert allowed_operations(state) == []
    assert not TERMINAL_STATES & set(LIVE_STATES)


def test_accepted_and_blocked_partition_the_issued_states() -> None:
    assert ACCEPTED_STATES.isdisjoint(BLOCKED_STATES)
    issued_once = set(CardState) - {S.IN_PRODUCTION, S.READY}
    assert issued_once == ACCEPTED_STATES | BLOCKED_STATES
