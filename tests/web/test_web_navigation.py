"""The data-driven console navigation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web_testapp import FakePrincipal

from yikatong.web.i18n import lazy_gettext
from yikatong.web.navigation import (
    NavItem,
    active_nav_key,
    nav_items_for,
    register_nav,
    registered_nav_items,
    unregister_nav,
)
from yikatong.web.templating import STATIC_DIR


@pytest.fixture
def items() -> Iterator[list[NavItem]]:
    made = [
        NavItem("t-all", lazy_gettext("Console"), "/t", order=-100),
        NavItem("t-cards", "Cards", "/t/cards", permission="card.read", icon="card", order=-90),
        NavItem("t-keys", "Keys", "/t/keys", permission="keys.manage", icon="key", order=-95),
    ]
    for item in made:
        register_nav(item)
    yield made
    for item in made:
        unregister_nav(item.key)


def test_items_are_filtered_by_permission_and_ordered(items: list[NavItem]) -> None:
    keys = [item.key for item in nav_items_for(FakePrincipal()) if item.key.startswith("t-")]
    assert keys == ["t-all", "t-cards"]
    admin = FakePrincipal(permissions={"card.read", "keys.manage"})
    keys = [item.key for item in nav_items_for(admin) if item.key.startswith("t-")]
    assert keys == ["t-all", "t-keys", "t-cards"]


def test_anonymous_visitors_get_no_console_navigation(items: list[NavItem]) -> None:
    assert nav_items_for(None) == []


def test_registering_again_is_idempotent_but_conflicts_fail(items: list[NavItem]) -> None:
    register_nav(NavItem("t-cards", "Cards", "/t/cards", "card.read", "card", -90))
    assert sum(item.key == "t-cards" for item in registered_nav_items()) == 1
    with pytest.raises(ValueError, match="already registered"):
        register_nav(NavItem("t-cards", "Cards", "/elsewhere"))


def test_urls_must_be_local_paths() -> None:
    with pytest.raises(ValueError, match="local path"):
        register_nav(NavItem("t-bad", "Bad", "https://evil.example"))


def test_active_item_is_the_longest_matching_prefix(items: list[NavItem]) -> None:
    assert active_nav_key(items, "/t/cards/42") == "t-cards"
    assert active_nav_key(items, "/t/cards") == "t-cards"
    assert active_nav_key(items, "/t") == "t-all"
    assert active_nav_key(items, "/t/cardsx") == "t-all"  # segment boundary, not string prefix
    assert active_nav_key(items, "/other") is None


def test_every_registered_icon_exists_in_the_sprite() -> None:
    sprite = (STATIC_DIR / "img" / "icons.svg").read_text(encoding="utf-8")
    for item in registered_nav_items():
        if item.icon:
            assert f'id="i-{item.icon}"' in sprite, f"nav item {item.key}: no icon {item.icon!r}"
