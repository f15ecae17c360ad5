"""The resident portal in a real browser at 360 px: register, log in, issue the e-card, show
the QR code, and read that code back from the screenshot as a bus validator would."""

from __future__ import annotations

import datetime as dt
import random
import re
import zlib
from typing import Any

import zxingcpp
from sqlalchemy import select

from tests.e2e.live import LiveServer
from tests.ecard.test_ecard_qr import _png_chunks, _unfilter
from yikatong.cards import service as cards
from yikatong.cards.banks import COOPERATING_BANKS, demo_account_number
from yikatong.cards.models import ApplicationStatus, Channel
from yikatong.ecard import qr
from yikatong.ecard.service import published_keys
from yikatong.kit.actor import Actor
from yikatong.residents.models import Resident

PHONE_VIEWPORT = {"width": 360, "height": 780}
PASSWORD = "Portal2026pw"
ECARD_PASSWORD = "582947"


def _card_holder(server: LiveServer) -> tuple[str, str, str, str]:
    """A Dongyuan resident with a mobile number, given an issued card:
    (ID number, card number, phone, card token)."""
    with server.session() as session:
        resident = session.scalars(
            select(Resident).where(Resident.region_code == "441625", Resident.phone.is_not(None))
        ).first()
        assert resident is not None
        clerk = Actor.system("e2e", region_code="441600")
        application = cards.apply(session, clerk, resident_id=resident.id, channel=Channel.COUNTER)
        for step in (
            ApplicationStatus.CHECKED,
            ApplicationStatus.IN_PRODUCTION,
            ApplicationStatus.READY,
        ):
            cards.advance(session, clerk, application.id, step)
        bank = COOPERATING_BANKS[2]
        card = cards.issue_card(
            session,
            clerk,
            application.card_id,  # type: ignore[arg-type]
            bank_code=bank.code,
            bank_account=demo_account_number(bank, random.Random(3)),
        )
        session.commit()
        assert resident.phone is not None
        return resident.id_number, card.card_number, resident.phone, card.token


def _grey(png: bytes) -> tuple[int, int, bytes]:
    """8-bit RGB or RGBA PNG (what Chromium writes) to 8-bit grey."""
    import struct

    chunks = _png_chunks(png)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, interlace) == (8, 0)
    channels = {2: 3, 6: 4}[colour]
    rows = _unfilter(zlib.decompress(chunks[b"IDAT"]), height, width * channels, channels)
    grey = bytearray()
    for line in rows:
        for x in range(width):
            r, g, b = line[x * channels : x * channels + 3]
            grey.append((r + g + b) // 3)
    return width, height, bytes(grey)


def test_resident_shows_a_code_a_validator_can_read(chromium: Any, live_server: LiveServer) -> None:
    id_number, card_number, phone, token = _card_holder(live_server)
    context = chromium.new_context(viewport=PHONE_VIEWPORT, locale="zh-CN")
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    base = live_server.url
    try:
        page.goto(base + "/portal/register")
        page.fill("#field-id_number", id_number)
        page.fill("#field-card_number", card_number)
        page.fill("#field-phone", phone)
        page.fill("#field-password", PASSWORD)
        page.click("form[action='/portal/register'] button[type=submit]")
        page.wait_for_url(re.compile(r"/portal/login"))
        page.fill("#field-id_number", id_number)
        page.fill("#field-password", PASSWORD)
        page.click("form[action='/portal/login'] button[type=submit]")
        page.wait_for_url(base + "/portal")
        assert card_number in page.inner_text("body")
        # Nothing overflows sideways on a 360 px phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]
        page.click("a[href='/portal/ecard']")
        page.fill("#field-password", ECARD_PASSWORD)
        page.fill("#field-password_again", ECARD_PASSWORD)
        page.click("form[action='/portal/ecard'] button[type=submit]")
        page.wait_for_selector("#ecard-code svg")
        assert re.search(r"[\u4e00-\u9fff]", page.inner_text("body"))
        png = page.locator("#ecard-code svg").screenshot()
        width, height, pixels = _grey(png)
        image = memoryview(pixels).cast("B", (height, width))
        found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
        assert len(found) == 1, "the QR code on the phone screen could not be read"
        now = dt.datetime.now(dt.UTC)
        verified = qr.verify_offline(
            found[0].text, qr.trusted_keys(published_keys(), now), now, qr.Purpose.IDENTITY
        )
        assert verified.token == token
        assert not problems, problems
    finally:
        context.close()
