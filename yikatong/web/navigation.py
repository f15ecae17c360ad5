"""The staff console's navigation, filled in by each domain when its pages exist.

A domain module registers its entry at import time, next to its routes::

    register_nav(NavItem("cards", lazy_gettext("Cards"), "/staff/cards",
                         permission="card.read", icon="card", order=20))

``render()`` shows each signed-in staff member the entries their role allows. ``icon`` names
a symbol in ``static/img/icons.svg`` (without the ``i-`` prefix).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from yikatong.web.i18n import LazyString


class Principal(Protocol):
    """What the web layer needs to know about the signed-in staff member."""

    @property
    def display_name(self) -> str: ...

    @property
    def username(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def role_label(self) -> str: ...

    @property
    def region_code(self) -> str: ...

    @property
    def region_name(self) -> str: ...

    def can(self, permission: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class NavItem:
    """One console navigation entry; ``permission=None`` shows it to all signed-in staff."""

    key: str
    label: LazyString | str
    url: str
    permission: str | None = None
    icon: str | None = None
    order: int = 100

    def visible_to(self, principal: Principal | None) -> bool:
        """Whether ``principal`` may see this entry (anonymous visitors see none)."""
        if principal is None:
            return False
        return self.permission is None or principal.can(self.permission)


_registry: dict[str, NavItem] = {}
_lock = threading.Lock()


def register_nav(item: NavItem) -> NavItem:
    """Add ``item``; registering the same item again is a no-op, a different one an error."""
    if not item.url.startswith("/"):
        raise ValueError(f"nav item {item.key!r}: url must be a local path, got {item.url!r}")
    with _lock:
        existing = _registry.get(item.key)
        if existing is not None and existing != item:
            raise ValueError(f"nav item {item.key!r} is already registered as {existing!r}")
        _registry[item.key] = item
    return item


def unregister_nav(key: str) -> None:
    """Remove an entry (for tests); unknown keys are ignored."""
    with _lock:
        _registry.pop(key, None)


def registered_nav_items() -> list[NavItem]:
    """Every registered entry in display order."""
    with _lock:
        items = list(_registry.values())
    return sorted(items, key=lambda item: (item.order, item.key))


def nav_items_for(principal: Principal | None) -> list[NavItem]:
    """The entries ``principal`` may see, in display order."""
    return [item for item in registered_nav_items() if item.visible_to(principal)]


def active_nav_key(items: list[NavItem], path: str) -> str | None:
    """The entry whose url is the longest prefix of ``path`` (on a segment boundary)."""
    best: NavItem | None = None
    for item in items:
        base = item.url.rstrip("/")
        matches = path in (item.url, base) or path.startswith(base + "/")
        if matches and (best is None or len(item.url) > len(best.url)):
            best = item
    return best.key if best else None
