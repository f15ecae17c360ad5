"""Random sequences of counter operations never break the card invariants (Hypothesis).

Invariants checked after every step, against the database:
- at most one live card per resident;
- each card's state is the target of its last recorded event;
- a card is on the blacklist exactly when it was once accepted and is now blocked;
- at most one open application per resident, and an issued application points at a card
  that was issued.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import make_resident, make_staff
from yikatong.cards import repository
from yikatong.cards import service as cards
from yikatong.cards.banks import COOPERATING_BANKS, demo_account_number
from yikatong.cards.lifecycle import (
    BLOCKED_STATES,
    COUNTER_OPERATIONS,
    Operation,
    allowed_operations,
)
from yikatong.cards.models import (
    LIVE_STATES,
    OPEN_APPLICATION_STATUSES,
    ApplicationStatus,
    Card,
    CardApplication,
    CardEvent,
    CardState,
    Channel,
)
from yikatong.errors import YikatongError
from yikatong.kit.actor import Role

RESIDENTS = 3
NATURAL_NEXT = {
    ApplicationStatus.SUBMITTED: ApplicationStatus.CHECKED,
    ApplicationStatus.CHECKED: ApplicationStatus.IN_PRODUCTION,
    ApplicationStatus.IN_PRODUCTION: ApplicationStatus.READY,
}
STEPS = (
    ApplicationStatus.CHECKED,
    ApplicationStatus.IN_PRODUCTION,
    ApplicationStatus.READY,
    ApplicationStatus.REJECTED,
    ApplicationStatus.WITHDRAWN,
)


def test_random_operations_keep_the_invariants(session: Session) -> None:
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625").actor()
    residents = [
        make_resident(session, region_code="441625", name=f"随机{i}").id for i in range(RESIDENTS)
    ]
    session.flush()
    rng = random.Random(7)

    class CardMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.savepoint = session.begin_nested()

        def teardown(self) -> None:
            if self.savepoint.is_active:
                self.savepoint.rollback()

        def _attempt(self, action: Callable[[], object]) -> None:
            # A refused operation must change nothing: run it in its own savepoint.
            with contextlib.suppress(YikatongError), session.begin_nested():
                action()

        def _cards(self) -> list[Card]:
            return list(session.scalars(select(Card).where(Card.resident_id.in_(residents))))

        @rule(who=st.integers(0, RESIDENTS - 1), channel=st.sampled_from(list(Channel)))
        def apply(self, who: int, channel: Channel) -> None:
            self._attempt(
                lambda: cards.apply(
                    session,
                    clerk,
                    resident_id=residents[who],
                    channel=channel,
                    mailing_address="河源市东源县仙塘镇"
                    if channel in cards.MAILED_CHANNELS
                    else None,
                    birth_certificate_number="R1" if channel is Channel.NEWBORN else None,
                )
            )

        @rule(who=st.integers(0, RESIDENTS - 1))
        def advance(self, who: int) -> None:
            """The next step of the progress trail."""
            application = repository.open_application_of(session, residents[who])
            if application is not None:
                step = NATURAL_NEXT.get(ApplicationStatus(application.status))
                if step is not None:
                    self._attempt(lambda: cards.advance(session, clerk, application.id, step))

        @rule(who=st.integers(0, RESIDENTS - 1), step=st.sampled_from(STEPS))
        def advance_any(self, who: int, step: ApplicationStatus) -> None:
            """Any step, legal or not (rejections, withdrawals, skipped steps)."""
            application = repository.open_application_of(session, residents[who])
            if application is not None:
                self._attempt(lambda: cards.advance(session, clerk, application.id, step))

        @rule(who=st.integers(0, RESIDENTS - 1))
        def new_issued_card(self, who: int) -> None:
            """The whole happy path in one step, so later steps have issued cards to work on."""

            def run() -> None:
                application = cards.apply(
                    session, clerk, resident_id=residents[who], channel=Channel.COUNTER
                )
                for step in (
                    ApplicationStatus.CHECKED,
                    ApplicationStatus.IN_PRODUCTION,
                    ApplicationStatus.READY,
                ):
                    cards.advance(session, clerk, application.id, step)
                bank = COOPERATING_BANKS[0]
                cards.issue_card(
                    session,
                    clerk,
                    application.card_id,  # type: ignore[arg-type]
                    bank_code=bank.code,
                    bank_account=demo_account_number(bank, rng),
                )

            self._attempt(run)

        @rule(who=st.integers(0, RESIDENTS - 1))
        def issue(self, who: int) -> None:
            application = repository.open_application_of(session, residents[who])
            if application is not None and application.card_id is not None:
                bank = COOPERATING_BANKS[1]
                self._attempt(
                    lambda: cards.issue_card(
                        session,
                        clerk,
                        application.card_id,  # type: ignore[arg-type]
                        bank_code=bank.code,
                        bank_account=demo_account_number(bank, rng),
                    )
                )

        @rule(card_index=st.integers(0, 20), pick=st.integers(0, 20))
        def operate(self, card_index: int, pick: int) -> None:
            """An operation the table allows for one of the cards."""
            all_cards = self._cards()
            if not all_cards:
                return
            card = all_cards[card_index % len(all_cards)]
            allowed = [
                op
                for op in allowed_operations(CardState(card.state))
                if op in COUNTER_OPERATIONS and op is not Operation.ISSUE
            ]
            if allowed:
                operation = allowed[pick % len(allowed)]
                self._attempt(
                    lambda: cards.operate(session, clerk, card.id, operation, reason="random")
                )

        @rule(card_index=st.integers(0, 20), operation=st.sampled_from(COUNTER_OPERATIONS))
        def operate_any(self, card_index: int, operation: Operation) -> None:
            """Any counter operation, mostly refused: a refusal must change nothing."""
            all_cards = self._cards()
            if all_cards:
                card = all_cards[card_index % len(all_cards)]
                self._attempt(
                    lambda: cards.operate(session, clerk, card.id, operation, reason="random")
                )

        @rule()
        def sweep(self) -> None:
            far_future = cards.utcnow().replace(year=2100)
            cards.sweep_temporary_losses(session, far_future)

        @invariant()
        def one_live_card_and_one_open_application(self) -> None:
            for resident_id in residents:
                live = session.scalar(
                    select(func.count())
                    .select_from(Card)
                    .where(Card.resident_id == resident_id, Card.state.in_(LIVE_STATES))
                )
                assert (live or 0) <= 1
                open_ = session.scalar(
                    select(func.count())
                    .select_from(CardApplication)
                    .where(
                        CardApplication.resident_id == resident_id,
                        CardApplication.status.in_(OPEN_APPLICATION_STATUSES),
                    )
                )
                assert (open_ or 0) <= 1

        @invariant()
        def states_follow_events_and_blacklist(self) -> None:
            listed = set(repository.blacklist_since(session, 0).added)
            for card in self._cards():
                last = session.scalars(
                    select(CardEvent)
                    .where(CardEvent.card_id == card.id)
                    .order_by(CardEvent.id.desc())
                ).first()
                if last is not None:
                    assert last.to_state == card.state
                ever_accepted = card.issue_date is not None
                blocked = CardState(card.state) in BLOCKED_STATES
                assert (card.token in listed) == (ever_accepted and blocked), card.state

        @invariant()
        def issued_applications_point_at_issued_cards(self) -> None:
            for application in session.scalars(
                select(CardApplication).where(
                    CardApplication.resident_id.in_(residents),
                    CardApplication.status == ApplicationStatus.ISSUED.value,
                )
            ):
                card = session.get(Card, application.card_id)
                assert card is not None
                assert card.issue_date is not None

    run_state_machine_as_test(
        CardMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
