"""Fixtures of the e-card tests: a clerk, a card holder, the resident's own actor, and a private
copy of the key ring for tests that rotate signing keys."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.card_factories import issued_card
from tests.factories import make_resident, make_staff
from yikatong.cards.models import Card
from yikatong.crypto.keystore import KeyRing, get_keyring, reset_keyring_cache
from yikatong.ecard import service
from yikatong.ecard.models import ECard, ECardLevel
from yikatong.kit.actor import Actor, Role
from yikatong.residents.models import Resident
from yikatong.settings import get_settings

PASSWORD = "739514"


def resident_actor(resident: Resident) -> Actor:
    """The resident portal's actor for ``resident``."""
    return Actor.resident(resident.id, "张*三", resident.region_code, ip="10.0.0.8")


@dataclass
class Holder:
    resident: Resident
    card: Card
    actor: Actor
    ecard: ECard | None = None


@pytest.fixture
def clerk(session: Session) -> Actor:
    return make_staff(session, Role.COUNTER_CLERK, region_code="441600").actor()


MakeHolder = Callable[..., Holder]


@pytest.fixture
def make_holder(session: Session, clerk: Actor) -> MakeHolder:
    """``make_holder(bank_activated=False, level=None)`` -> a resident with an issued card, and
    an e-card when ``level`` is given."""

    def make(
        *,
        bank_activated: bool = False,
        level: ECardLevel | None = ECardLevel.IDENTITY,
        region_code: str = "441602",
    ) -> Holder:
        resident = make_resident(session, region_code=region_code)
        card = issued_card(session, clerk, resident.id, bank_activated=bank_activated)
        holder = Holder(resident, card, resident_actor(resident))
        if level is not None:
            holder.ecard = service.issue_ecard(session, holder.actor, resident.id, PASSWORD, level)
        return holder

    return make


@pytest.fixture
def holder(make_holder: MakeHolder) -> Holder:
    return make_holder()


@pytest.fixture
def private_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyRing]:
    """A copy of the session's key ring (same data keys, so stored data stays readable) that a
    test may rotate without affecting the others."""
    source = get_settings().keystore_path
    get_keyring()  # make sure the ring exists before copying it
    target = tmp_path / "keys"
    shutil.copytree(source, target)
    monkeypatch.setenv("YIKATONG_KEYSTORE_PATH", str(target))
    get_settings.cache_clear()
    reset_keyring_cache()
    yield get_keyring()
    monkeypatch.undo()
    get_settings.cache_clear()
    reset_keyring_cache()
