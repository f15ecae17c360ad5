"""Domain events inside one transaction: how a lower domain tells higher ones what happened.

Domains depend downwards only (residents → cards → ecard → ...). When a lower domain changes
something a higher one must react to — a resident registered as deceased cancels the card, a
card reported lost suspends the e-card — it ``emit``s an event, and the higher domain has
registered a handler with ``@subscribe``. Handlers run synchronously, in the emitter's session
and transaction: either everything happens or nothing does. (Delivery to other systems, R7.2,
will subscribe here and write to a transactional outbox.)

Handlers are registered when their domain's ``service`` module is imported; ``yikatong.models``
imports every domain, so the app, the CLI and the tests always have the full set.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from yikatong.kit.actor import Actor


@dataclass(frozen=True)
class Event:
    name: str
    actor: Actor
    payload: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Session, Event], None]

_handlers: dict[str, list[Handler]] = defaultdict(list)


def subscribe(name: str) -> Callable[[Handler], Handler]:
    """Register the decorated function for events called ``name`` (once per function)."""

    def register(handler: Handler) -> Handler:
        if handler not in _handlers[name]:
            _handlers[name].append(handler)
        return handler

    return register


def emit(session: Session, name: str, actor: Actor, **payload: Any) -> None:
    """Run every handler of ``name`` now, in this session and transaction."""
    event = Event(name, actor, payload)
    for handler in list(_handlers.get(name, ())):
        handler(session, event)


def handlers_of(name: str) -> list[Handler]:
    return list(_handlers.get(name, ()))
