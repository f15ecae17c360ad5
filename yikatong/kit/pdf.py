"""Printable PDF documents (回执、对账单、声明): one page layout every domain reuses.

A document is described as data (:class:`Document`: title, key/value sections, notes, signature
lines, footer) and rendered by :func:`render` with reportlab. Chinese text uses reportlab's
built-in CID font ``STSong-Light``: the PDF names the font instead of embedding it, so no font
file ships with the platform and rendering works offline; every PDF reader carries or
substitutes a Song typeface for it. Output is deterministic: the same document renders to the
same bytes (reportlab's invariant mode, with the creation date taken from the document, never
from the clock), so a receipt can be regenerated from its records at any time.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from io import BytesIO
from typing import Any, Final
from urllib.parse import quote
from xml.sax.saxutils import escape

from fastapi.responses import Response
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4, A5
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

FONT: Final = "STSong-Light"
PDF_MEDIA_TYPE: Final = "application/pdf"
CREATOR: Final = "yikatong"
EMPTY_VALUE: Final = "—"

# OpenAPI declaration of a PDF answer, for `responses=` of an API route.
PDF_OPENAPI_RESPONSE: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": "The document as PDF",
        "content": {PDF_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


class PageSize(enum.StrEnum):
    A4 = "A4"
    A5 = "A5"

    @property
    def points(self) -> tuple[float, float]:
        return A4 if self is PageSize.A4 else A5

    @property
    def margin(self) -> float:
        return 18 * mm if self is PageSize.A4 else 12 * mm


@dataclass(frozen=True)
class Section:
    """A headed table of label/value rows; a value of ``None`` prints as a dash."""

    heading: str | None
    rows: Sequence[tuple[str, str | None]]


@dataclass(frozen=True)
class Document:
    """Everything a printed document says. ``created_at`` (timezone-aware) becomes the PDF's
    creation date: pass the time of the recorded event so the output does not depend on when
    it is rendered."""

    title: str
    author: str
    created_at: dt.datetime
    sections: Sequence[Section]
    issuer: str = ""  # printed above the title (the platform or office)
    reference: str = ""  # printed under the title, right-aligned
    notes: Sequence[str] = ()
    signatures: Sequence[str] = ()  # labelled blank lines, side by side on one row
    footer: str = ""
    subject: str = ""
    keywords: Sequence[str] = ()
    page_size: PageSize = PageSize.A4


@cache
def _register_font() -> str:
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


@dataclass(frozen=True)
class _Styles:
    issuer: ParagraphStyle
    title: ParagraphStyle
    reference: ParagraphStyle
    heading: ParagraphStyle
    label: ParagraphStyle
    value: ParagraphStyle
    note: ParagraphStyle
    signature: ParagraphStyle


def _styles(page: PageSize) -> _Styles:
    font = _register_font()
    base = 10.5 if page is PageSize.A4 else 9

    def style(name: str, size: float, **extra: Any) -> ParagraphStyle:
        # CJK wrapping breaks between any two characters, which Chinese text needs.
        return ParagraphStyle(
            name, fontName=font, fontSize=size, leading=size * 1.35, wordWrap="CJK", **extra
        )

    return _Styles(
        issuer=style("issuer", base, alignment=TA_CENTER, textColor=colors.HexColor("#444444")),
        title=style("title", base + 6, alignment=TA_CENTER, spaceBefore=2, spaceAfter=4),
        reference=style("reference", base - 1, alignment=TA_RIGHT),
        heading=style("heading", base + 0.5, spaceBefore=5, spaceAfter=2),
        label=style("label", base, textColor=colors.HexColor("#333333")),
        value=style("value", base),
        note=style("note", base - 1, textColor=colors.HexColor("#333333")),
        signature=style("signature", base),
    )


def _text(value: str) -> str:
    """Recorded text is data, not markup: escape it for reportlab's paragraph parser."""
    return escape(value).replace("\n", "<br/>")


def _section(section: Section, styles: _Styles, width: float) -> list[Flowable]:
    flowables: list[Flowable] = []
    if section.heading:
        flowables.append(Paragraph(_text(section.heading), styles.heading))
    rows = [
        [
            Paragraph(_text(label), styles.label),
            Paragraph(_text(value if value else EMPTY_VALUE), styles.value),
        ]
        for label, value in section.rows
    ]
    if rows:
        table = Table(rows, colWidths=[width * 0.3, width * 0.7])
        table.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#999999")),
                    ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#F2F2F2")),
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                    ("TOPPADDING", (0, 0), (-1, -1), 2),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ]
            )
        )
        flowables.append(table)
    return flowables


def _signatures(labels: Sequence[str], styles: _Styles, width: float) -> Flowable:
    """One row of labels, each over a blank line to sign or write on."""
    cells = [Paragraph(_text(label), styles.signature) for label in labels]
    table = Table([cells], colWidths=[width / len(labels)] * len(labels), rowHeights=[9 * mm])
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.5, colors.black),
                ("RIGHTPADDING", (0, 0), (-1, -1), 4 * mm),
            ]
        )
    )
    return table


def pdf_date(moment: dt.datetime) -> str:
    """A timezone-aware time as a PDF date string, ``D:20260315103000+08'00'``."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("a PDF date needs a timezone-aware time")
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"D:{moment:%Y%m%d%H%M%S}{sign}{hours:02d}'{rest:02d}'"


def render(document: Document) -> bytes:
    """The document as PDF bytes; the same document always gives the same bytes."""
    stamp = pdf_date(document.created_at)
    page = document.page_size
    styles = _styles(page)
    width, height = page.points
    margin = page.margin
    buffer = BytesIO()
    template = SimpleDocTemplate(
        buffer,
        pagesize=(width, height),
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin + 6 * mm,  # room for the footer
        title=document.title,
        author=document.author,
        subject=document.subject,
        keywords=list(document.keywords),
        creator=CREATOR,
        lang="zh-CN",
        invariant=1,  # fixed document id and timestamps: byte-identical re-renderings
    )
    frame_width = width - 2 * margin

    story: list[Flowable] = []
    if document.issuer:
        story.append(Paragraph(_text(document.issuer), styles.issuer))
    story.append(Paragraph(_text(document.title), styles.title))
    if document.reference:
        story.append(Paragraph(_text(document.reference), styles.reference))
    for section in document.sections:
        story.extend(_section(section, styles, frame_width))
    if document.notes:
        story.append(Spacer(1, 3 * mm))
        story.extend(Paragraph(_text(note), styles.note) for note in document.notes)
    if document.signatures:
        story.append(Spacer(1, 6 * mm))
        story.append(_signatures(document.signatures, styles, frame_width))

    def on_page(canvas: Canvas, _doc: object) -> None:
        # Reportlab would stamp the clock's time; the document's own time keeps output stable.
        canvas.setDateFormatter(_fixed_date(stamp))
        canvas.saveState()
        canvas.setFont(styles.note.fontName, styles.note.fontSize - 1)
        canvas.setFillColor(colors.HexColor("#555555"))
        baseline = margin
        if document.footer:
            canvas.drawString(margin, baseline, document.footer)
        canvas.drawRightString(width - margin, baseline, f"- {canvas.getPageNumber()} -")
        canvas.restoreState()

    template.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()


def _fixed_date(stamp: str) -> Callable[..., str]:
    def formatter(*_parts: int) -> str:
        return stamp

    return formatter


class PdfResponse(Response):
    """A PDF answer; as an API route's ``response_class`` it declares ``application/pdf``."""

    media_type = PDF_MEDIA_TYPE


def pdf_response(content: bytes, filename: str, *, inline: bool = True) -> PdfResponse:
    """An HTTP answer carrying a PDF: shown in the browser (``inline``) or downloaded."""
    disposition = "inline" if inline else "attachment"
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    header = f'{disposition}; filename="{ascii_name}"'
    if ascii_name != filename:
        header += f"; filename*=UTF-8''{quote(filename)}"
    return PdfResponse(content=content, headers={"Content-Disposition": header})
