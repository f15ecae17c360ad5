"""Counter receipts (回执): the card handed over (领卡回执) and a replacement or renewal accepted
(补换卡受理回执).

A receipt is never stored. It is rebuilt from what the records say (the card's lifecycle event
with who, where, when and why; the application and its trail; the proxy), so printing it again
gives the same document byte for byte, and a receipt exists only when its event does.
Viewing one is an audited read of personal data; the holder's name, ID number, bank account
and mailing address appear masked.

The receipt is an official Chinese document: its text is Chinese whatever language the console
is shown in, so the labels below are Chinese literals rather than catalogue messages.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from yikatong.audit import service as audit
from yikatong.cards import repository, service
from yikatong.cards.banks import BANKS_BY_CODE
from yikatong.cards.lifecycle import Operation
from yikatong.cards.models import (
    ApplicationStatus,
    Card,
    CardApplication,
    CardEvent,
    Channel,
)
from yikatong.crypto.masking import (
    mask_address,
    mask_bank_account,
    mask_id_number,
    mask_name,
)
from yikatong.errors import N_, Conflict
from yikatong.kit import pdf
from yikatong.kit.actor import Actor, Permission
from yikatong.reference.regions import find_region
from yikatong.residents.models import Resident
from yikatong.settings import get_settings

PLATFORM_SUFFIX = "社会保障卡居民服务“一卡通”"
TIME_FORMAT = "%Y-%m-%d %H:%M"

# How service.issue_card records who collected the card for the holder: the application's
# "issued" step carries "proxy <name> (<relation>)", the card event "proxy: <relation>".
_ISSUE_PROXY_NOTE = re.compile(r"^proxy (?P<name>.+) \((?P<relation>[^()]*)\)$")
_ISSUE_PROXY_REASON = re.compile(r"^proxy: (?P<relation>.+)$")

CHANNEL_LABELS = {
    Channel.COUNTER: "窗口申领",
    Channel.ONLINE: "网上申领（邮寄）",
    Channel.INSTANT: "立等可取",
    Channel.NEWBORN: "出生一件事",
    Channel.CROSS_PROVINCE: "跨省通办（邮寄）",
}
REPLACEMENT_LABELS = {Operation.REPLACE: "补卡", Operation.RENEW: "换卡"}
STATE_LABELS = {
    "issued": "已发放",
    "active": "已启用社保功能",
    "temporary_loss": "临时挂失",
    "formal_loss": "正式挂失",
}


class ReceiptKind(enum.StrEnum):
    ISSUE = "issue"  # 社会保障卡领卡回执
    REPLACEMENT = "replacement"  # 补换卡受理回执


TITLES = {
    ReceiptKind.ISSUE: "社会保障卡领卡回执",
    ReceiptKind.REPLACEMENT: "社会保障卡补换卡受理回执",
}
# Reference numbers: a prefix per kind, the local date and the id of the recorded event.
REFERENCE_PREFIXES = {ReceiptKind.ISSUE: "LK", ReceiptKind.REPLACEMENT: "BH"}


class ReceiptUnavailable(Conflict):
    """The card has no record of what the receipt would attest: it was never handed over, or
    never replaced or renewed."""

    code = "receipt_unavailable"
    title = N_("There is no receipt for this card yet")


@dataclass(frozen=True)
class ProxyOnReceipt:
    """Who handled the matter for the holder (代办人); the ID number masked, when recorded."""

    name: str | None
    relation: str
    id_number: str | None


@dataclass(frozen=True)
class IssueReceipt:
    """What a 领卡回执 says; personal data masked."""

    reference: str
    card_number: str
    holder_name: str
    holder_id_number: str
    issue_date: dt.date | None
    expiry_date: dt.date | None
    bank: str | None
    bank_account: str | None
    outlet: str | None
    clerk: str
    proxy: ProxyOnReceipt | None
    occurred_at: dt.datetime  # UTC, as stored


@dataclass(frozen=True)
class ReplacementReceipt:
    """What a 补换卡受理回执 says; personal data masked."""

    reference: str
    operation: Operation
    old_card_number: str
    old_state: str | None
    reason: str | None
    holder_name: str
    holder_id_number: str
    application_id: int
    channel: Channel
    collection_outlet: str | None
    mailing_address: str | None
    next_steps: str
    outlet: str | None
    clerk: str
    proxy: ProxyOnReceipt | None
    occurred_at: dt.datetime  # UTC, as stored


@dataclass(frozen=True)
class Receipt:
    kind: ReceiptKind
    card_id: int
    title: str
    filename: str
    details: IssueReceipt | ReplacementReceipt
    pdf: bytes


def platform_name() -> str:
    """The deployment's name on printed documents: its city and the platform."""
    code = get_settings().region_code
    found = find_region(code)
    return f"{found.name if found else code}{PLATFORM_SUFFIX}"


def _local(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(ZoneInfo(get_settings().timezone))


def _reference(kind: ReceiptKind, event: CardEvent) -> str:
    return f"{REFERENCE_PREFIXES[kind]}{_local(event.occurred_at):%Y%m%d}{event.id:08d}"


def _event(session: Session, card: Card, operations: tuple[Operation, ...]) -> CardEvent | None:
    wanted = {op.value for op in operations}
    return next(
        (e for e in repository.card_events(session, [card.id]) if e.operation in wanted), None
    )


def _holder(session: Session, card: Card) -> Resident:
    resident = session.get(Resident, card.resident_id)
    if resident is None:  # the foreign key makes this impossible; say so if it ever is not
        raise LookupError(f"card {card.id} has no resident {card.resident_id}")
    return resident


def _issue_proxy(
    session: Session, application: CardApplication | None, event: CardEvent
) -> ProxyOnReceipt | None:
    """Who collected the card for the holder, as issue recorded it (None: the holder did)."""
    if application is not None:
        issued = [
            step
            for step in repository.application_trail(session, application.id)
            if step.to_status == ApplicationStatus.ISSUED.value
        ]
        match = _ISSUE_PROXY_NOTE.match(issued[-1].note or "") if issued else None
        if match:
            name, relation = match["name"], match["relation"]
            # The ID number is kept only for the proxy who applied; it is shown when the same
            # person collected the card.
            same = application.proxy_name == name and application.proxy_relation == relation
            number = application.proxy_id_number if same else None
            return ProxyOnReceipt(name, relation, mask_id_number(number) if number else None)
    reason = _ISSUE_PROXY_REASON.match(event.reason or "")
    return ProxyOnReceipt(None, reason["relation"], None) if reason else None


def _application_proxy(application: CardApplication) -> ProxyOnReceipt | None:
    if not application.proxy_name:
        return None
    number = application.proxy_id_number
    return ProxyOnReceipt(
        application.proxy_name,
        application.proxy_relation or "",
        mask_id_number(number) if number else None,
    )


def issue_details(session: Session, card: Card) -> IssueReceipt:
    """The 领卡回执 of a card, from its issue event; :class:`ReceiptUnavailable` if none."""
    event = _event(session, card, (Operation.ISSUE,))
    if event is None:
        raise ReceiptUnavailable(
            "Card {card} has not been handed over, so it has no issue receipt",
            params={"card": card.card_number},
            kind=ReceiptKind.ISSUE.value,
        )
    holder = _holder(session, card)
    application = session.scalar(select(CardApplication).where(CardApplication.card_id == card.id))
    bank = BANKS_BY_CODE.get(card.bank_code) if card.bank_code else None
    return IssueReceipt(
        reference=_reference(ReceiptKind.ISSUE, event),
        card_number=card.card_number,
        holder_name=mask_name(holder.name),
        holder_id_number=mask_id_number(holder.id_number),
        issue_date=card.issue_date,
        expiry_date=card.expiry_date,
        bank=bank.name if bank else card.bank_code,
        bank_account=mask_bank_account(card.bank_account) if card.bank_account else None,
        outlet=event.outlet,
        clerk=event.actor,
        proxy=_issue_proxy(session, application, event),
        occurred_at=event.occurred_at,
    )


def _next_steps(channel: Channel, outlet: str | None, address: str | None) -> str:
    if channel is Channel.INSTANT:
        return "新卡在本网点即时制作，请在窗口等候领取。"
    if channel in service.MAILED_CHANNELS:
        return (
            f"新卡制作完成后邮寄至{address or '登记的邮寄地址'}，可凭申请编号查询进度和邮寄单号。"
        )
    return (
        "新卡制作完成（申请状态为“待领取”）后，请持本人有效身份证件和本回执到"
        f"{outlet or '受理网点'}领取。"
    )


def replacement_details(session: Session, card: Card) -> ReplacementReceipt:
    """The 补换卡受理回执 of an old card, from its replace or renew event and the application
    it opened; :class:`ReceiptUnavailable` if the card was never replaced or renewed."""
    event = _event(session, card, (Operation.REPLACE, Operation.RENEW))
    application = session.scalar(
        select(CardApplication)
        .where(CardApplication.replaces_card_id == card.id)
        .order_by(CardApplication.id)
        .limit(1)
    )
    if event is None or application is None:
        raise ReceiptUnavailable(
            "Card {card} has not been replaced or renewed, so it has no replacement receipt",
            params={"card": card.card_number},
            kind=ReceiptKind.REPLACEMENT.value,
        )
    holder = _holder(session, card)
    channel = Channel(application.channel)
    mailed = channel in service.MAILED_CHANNELS
    address = (
        mask_address(application.mailing_address)
        if mailed and application.mailing_address
        else None
    )
    collection = None if mailed else (application.outlet or event.outlet)
    return ReplacementReceipt(
        reference=_reference(ReceiptKind.REPLACEMENT, event),
        operation=Operation(event.operation),
        old_card_number=card.card_number,
        old_state=event.from_state,
        reason=event.reason,
        holder_name=mask_name(holder.name),
        holder_id_number=mask_id_number(holder.id_number),
        application_id=application.id,
        channel=channel,
        collection_outlet=collection,
        mailing_address=address,
        next_steps=_next_steps(channel, collection, address),
        outlet=event.outlet,
        clerk=event.actor,
        proxy=_application_proxy(application),
        occurred_at=event.occurred_at,
    )


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _proxy_rows(proxy: ProxyOnReceipt | None) -> list[tuple[str, str | None]]:
    if proxy is None:
        return [("代办人", "无（本人办理）")]
    return [
        ("代办人姓名", proxy.name),
        ("与持卡人关系", proxy.relation),
        ("代办人身份证号码", proxy.id_number or "未登记"),
    ]


def _receipt_document(
    kind: ReceiptKind,
    details: IssueReceipt | ReplacementReceipt,
    moment: dt.datetime,
    card_number: str,
    *,
    sections: tuple[pdf.Section, ...],
    notes: tuple[str, ...],
    signatures: tuple[str, ...],
) -> pdf.Document:
    """What every counter receipt shares: metadata, reference, the holder, footer, A5."""
    platform = platform_name()
    holder = pdf.Section(
        "持卡人",
        (
            ("姓名", details.holder_name),
            ("公民身份号码", details.holder_id_number),
        ),
    )
    return pdf.Document(
        title=TITLES[kind],
        author=platform,
        created_at=moment,
        issuer=platform,
        reference=f"回执编号：{details.reference}",
        subject=f"{TITLES[kind]} {card_number}",
        keywords=(details.reference, card_number),
        sections=(holder, *sections),
        notes=notes,
        signatures=signatures,
        footer=f"{platform}　{details.reference}",
        page_size=pdf.PageSize.A5,
    )


def issue_document(details: IssueReceipt) -> pdf.Document:
    """The printed layout of a 领卡回执."""
    moment = _local(details.occurred_at)
    return _receipt_document(
        ReceiptKind.ISSUE,
        details,
        moment,
        details.card_number,
        sections=(
            pdf.Section(
                "社会保障卡",
                (
                    ("社会保障卡号", details.card_number),
                    ("发卡日期", _date(details.issue_date)),
                    ("有效期至", _date(details.expiry_date)),
                    ("合作银行", details.bank),
                    ("银行账号", details.bank_account),
                ),
            ),
            pdf.Section(
                "办理信息",
                (
                    ("领卡方式", "代办领取" if details.proxy else "本人领取"),
                    *_proxy_rows(details.proxy),
                    ("办理网点", details.outlet),
                    ("经办人", details.clerk),
                    ("办理时间", moment.strftime(TIME_FORMAT)),
                ),
            ),
        ),
        notes=(
            "请当场核对卡面信息。社会保障卡的社保功能需启用后使用，金融账户请到合作银行激活。",
            "卡片遗失请及时挂失：可到服务窗口办理，也可在居民服务门户自助办理。",
            "本回执依据系统办理记录生成，凭回执编号可查询办理记录。",
        ),
        signatures=("持卡人（代办人）签名：", "日期："),
    )


def replacement_document(details: ReplacementReceipt) -> pdf.Document:
    """The printed layout of a 补换卡受理回执."""
    moment = _local(details.occurred_at)
    collection: tuple[str, str | None] = (
        ("邮寄地址", details.mailing_address)
        if details.channel in service.MAILED_CHANNELS
        else ("领卡网点", details.collection_outlet)
    )
    return _receipt_document(
        ReceiptKind.REPLACEMENT,
        details,
        moment,
        details.old_card_number,
        sections=(
            pdf.Section(
                "受理事项",
                (
                    ("业务类型", REPLACEMENT_LABELS[details.operation]),
                    ("原社会保障卡号", details.old_card_number),
                    (
                        "原卡状态",
                        STATE_LABELS.get(details.old_state or "", details.old_state),
                    ),
                    ("补换卡原因", details.reason or "未填写"),
                    ("原卡处理", "已作废，停止使用"),
                ),
            ),
            pdf.Section(
                "新卡申请",
                (
                    ("申请编号", str(details.application_id)),
                    ("申领渠道", CHANNEL_LABELS[details.channel]),
                    collection,
                    ("后续办理", details.next_steps),
                ),
            ),
            pdf.Section(
                "办理信息",
                (
                    *_proxy_rows(details.proxy),
                    ("受理网点", details.outlet),
                    ("经办人", details.clerk),
                    ("受理时间", moment.strftime(TIME_FORMAT)),
                ),
            ),
        ),
        notes=(
            "原卡自受理之时起作废，不能再使用。新卡领取后需重新启用社保功能、激活金融账户。",
            "本回执依据系统办理记录生成，凭申请编号或回执编号可查询办理进度。",
        ),
        signatures=("申请人（代办人）签名：", "日期："),
    )


def receipt(session: Session, actor: Actor, card_id: int, kind: ReceiptKind) -> Receipt:
    """The receipt of ``kind`` for a card, as data and as PDF (an audited read). Needs
    ``cards:read`` and the card inside the actor's region (404 otherwise); a card without the
    event the receipt attests is :class:`ReceiptUnavailable` (409)."""
    action = f"card.receipt.{kind.value}"
    audit.require(session, actor, Permission.CARDS_READ, action)
    card = service.get_card(session, actor, card_id)
    details: IssueReceipt | ReplacementReceipt
    if kind is ReceiptKind.ISSUE:
        details = issue_details(session, card)
        document = issue_document(details)
    else:
        details = replacement_details(session, card)
        document = replacement_document(details)
    audit.record(
        session,
        actor,
        action,
        object_type="card",
        object_id=card.id,
        region_code=card.region_code,
        detail={"reference": details.reference},
    )
    return Receipt(
        kind=kind,
        card_id=card.id,
        title=document.title,
        filename=f"receipt-{kind.value}-{card.card_number}.pdf",
        details=details,
        pdf=pdf.render(document),
    )
