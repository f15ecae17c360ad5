"""The shared PDF layout: page sizes, Chinese text, escaping, metadata, determinism."""

from __future__ import annotations

import datetime as dt
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from yikatong.kit import pdf

SHANGHAI = ZoneInfo("Asia/Shanghai")
MOMENT = dt.datetime(2026, 3, 15, 10, 30, 5, tzinfo=SHANGHAI)


def _document(**changes: object) -> pdf.Document:
    values: dict[str, object] = {
        "title": "测试回执",
        "author": "河源市社会保障卡居民服务“一卡通”",
        "created_at": MOMENT,
        "issuer": "河源市",
        "reference": "编号：T0001",
        "subject": "测试",
        "keywords": ("T0001", "回执"),
        "sections": (pdf.Section("基本信息", (("姓名", "张*三"), ("备注", None))),),
        "notes": ("请妥善保管。",),
        "signatures": ("签名：", "日期："),
        "footer": "页脚文字",
    }
    values.update(changes)
    return pdf.Document(**values)  # type: ignore[arg-type]


def _text(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(BytesIO(data)).pages]


def test_chinese_text_sections_notes_and_footer() -> None:
    pages = _text(pdf.render(_document()))
    assert len(pages) == 1
    for expected in ("河源市", "测试回执", "编号：T0001", "基本信息", "张*三", "请妥善保管。"):
        assert expected in pages[0], expected
    assert "签名：" in pages[0]
    assert "页脚文字" in pages[0]
    assert "- 1 -" in pages[0]
    assert pdf.EMPTY_VALUE in pages[0]  # the empty 备注


@pytest.mark.parametrize(
    ("size", "width_mm", "height_mm"),
    [(pdf.PageSize.A4, 210, 297), (pdf.PageSize.A5, 148, 210)],
)
def test_page_sizes(size: pdf.PageSize, width_mm: int, height_mm: int) -> None:
    page = PdfReader(BytesIO(pdf.render(_document(page_size=size)))).pages[0]
    points_per_mm = 72 / 25.4
    assert round(float(page.mediabox.width) / points_per_mm) == width_mm
    assert round(float(page.mediabox.height) / points_per_mm) == height_mm


def test_recorded_text_is_never_markup() -> None:
    hostile = '<font color="red">R&D</font> <br/> &amp;'
    text = _text(pdf.render(_document(sections=(pdf.Section(None, (("网点", hostile),)),))))[0]
    assert hostile in text.replace("\n", "")


def test_long_documents_continue_with_numbered_pages() -> None:
    rows = tuple((f"第{i}项", f"值{i}") for i in range(120))
    pages = _text(pdf.render(_document(sections=(pdf.Section("明细", rows),))))
    assert len(pages) > 1
    for number, page in enumerate(pages, start=1):
        assert f"- {number} -" in page
        assert "页脚文字" in page
    assert "值119" in pages[-1]


def test_metadata_comes_from_the_document() -> None:
    meta = PdfReader(BytesIO(pdf.render(_document()))).metadata
    assert meta is not None
    assert meta.title == "测试回执"
    assert meta.author == "河源市社会保障卡居民服务“一卡通”"
    assert meta.subject == "测试"
    assert meta.creator == pdf.CREATOR
    assert meta["/Keywords"] == "T0001, 回执"
    assert meta["/CreationDate"] == "D:20260315103005+08'00'"
    assert meta.creation_date == MOMENT
    assert meta.modification_date == MOMENT


def test_same_document_same_bytes() -> None:
    once = pdf.render(_document())
    assert pdf.render(_document()) == once
    later = pdf.render(_document(created_at=MOMENT + dt.timedelta(seconds=1)))
    assert later != once


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        pdf.render(_document(created_at=dt.datetime(2026, 3, 15, 10, 30)))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (MOMENT, "D:20260315103005+08'00'"),
        (dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "D:20260102030405+00'00'"),
        (
            dt.datetime(
                2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(-dt.timedelta(hours=3, minutes=30))
            ),
            "D:20260102030405-03'30'",
        ),
    ],
)
def test_pdf_dates(moment: dt.datetime, expected: str) -> None:
    assert pdf.pdf_date(moment) == expected


def test_pdf_response_headers() -> None:
    inline = pdf.pdf_response(b"%PDF-", "receipt-issue-A00000001.pdf")
    assert inline.media_type == "application/pdf"
    assert inline.headers["content-disposition"] == 'inline; filename="receipt-issue-A00000001.pdf"'
    chinese = pdf.pdf_response(b"%PDF-", "回执.pdf", inline=False)
    assert chinese.headers["content-disposition"] == (
        "attachment; filename=\"__.pdf\"; filename*=UTF-8''%E5%9B%9E%E6%89%A7.pdf"
    )
