from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yikatong.crypto.masking import (
    SensitiveDataFilter,
    mask_address,
    mask_bank_account,
    mask_id_number,
    mask_name,
    mask_phone,
    mask_text,
)

ID_NUMBER = "441602199001011234"


def test_id_number() -> None:
    assert mask_id_number(ID_NUMBER) == "441602********1234"
    assert mask_id_number("44160219900101123X") == "441602********123X"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ""),
        ("1", "*"),
        ("12345678", "********"),
        ("123456789", "1********"),
        ("441602900101123", "4416********123"),  # 15-digit pre-1999 number
        ("4416021990010112345", "441602*********2345"),  # too long: still 6 + 4 shown
    ],
)
def test_id_number_of_unexpected_length(value: str, expected: str) -> None:
    assert mask_id_number(value) == expected


def test_phone() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("12345") == "1****"
    assert mask_phone("1234567") == "12****7"  # 4 hidden; the tail gets at most half


def test_bank_account() -> None:
    assert mask_bank_account("6222021234567890") == "622202******7890"
    assert mask_bank_account("6222021234567890123") == "622202*********0123"
    assert mask_bank_account("123456") == "******"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("张三", "张*"),
        ("张小三", "张*三"),
        ("欧阳小明", "欧**明"),
        ("阿卜杜拉·买买提", "阿******提"),
        ("王", "*"),
        ("", ""),
        (" 张三 ", "张*"),
    ],
)
def test_name(name: str, expected: str) -> None:
    assert mask_name(name) == expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("广东省河源市源城区越王大道1号", "广东省河源市源城区******"),
        ("广东省河源市龙川县老隆镇新城路8号", "广东省河源市龙川县******"),
        ("广东省梅州市兴宁市宁新街道", "广东省梅州市兴宁市******"),
        ("北京市朝阳区建国路88号", "北京市朝阳区******"),
        ("上海市浦东新区世纪大道100号", "上海市浦东新区******"),
        ("内蒙古自治区锡林郭勒盟正蓝旗上都镇", "内蒙古自治区锡林郭勒盟正蓝旗******"),
        ("重庆市石柱土家族自治县南宾镇", "重庆市石柱土家族自治县******"),
        ("新疆维吾尔自治区乌鲁木齐市天山区", "新疆维吾尔自治区乌鲁木齐市天山区"),
        # No recognisable district: the street and housing estate are hidden, not guessed at.
        ("河源市东华路金苑小区3栋", "河源市******"),
        ("河源市金苑小区3栋", "河源市******"),
        ("越王大道88号", "******"),
        ("", ""),
        ("广东省 河源市 源城区 越王大道1号", "广东省河源市源城区******"),
    ],
)
def test_address(address: str, expected: str) -> None:
    assert mask_address(address) == expected


digits = st.text(alphabet="0123456789", min_size=17, max_size=17)


@given(digits, st.sampled_from("0123456789X"))
def test_masked_id_hides_the_middle_8_and_keeps_length(body: str, check: str) -> None:
    value = body + check
    masked = mask_id_number(value)
    assert len(masked) == len(value)
    assert value[6:14] not in masked
    assert masked == value[:6] + "********" + value[14:]


@given(st.text(max_size=40))
def test_masking_never_shows_more_than_the_rule(value: str) -> None:
    for masker, shown_at_most, hidden_at_least in (
        (mask_id_number, 10, 8),
        (mask_phone, 7, 4),
        (mask_bank_account, 10, 6),
    ):
        masked = masker(value)
        assert len(masked) == len(value)
        hidden = sum(1 for a, b in zip(value, masked, strict=True) if a != b or b == "*")
        assert len(value) - hidden <= shown_at_most
        assert hidden >= min(len(value), hidden_at_least)


@given(st.text(min_size=1, max_size=20).map(str.strip).filter(bool))
def test_masked_name_shows_at_most_two_characters(name: str) -> None:
    masked = mask_name(name)
    assert len(masked) == len(name)
    shown = [i for i, ch in enumerate(masked) if ch != "*"]
    assert set(shown) <= {0, len(name) - 1}  # only the ends may show
    assert len(shown) <= min(2, len(name) - 1)  # and never the whole name
    assert all(masked[i] == name[i] for i in shown)


def test_mask_text_finds_every_kind() -> None:
    text = (
        "身份证44160219900101123X，手机13812345678，+86 13912345678，"
        "卡号6222021234567890123，分组 6222 0212 3456 7890，订单20240101"
    )
    masked = mask_text(text)
    assert masked == (
        "身份证441602********123X，手机138****5678，+86 139****5678，"
        "卡号622202*********0123，分组 6222 02** **** 7890，订单20240101"
    )


def test_mask_text_leaves_short_numbers_alone() -> None:
    text = "request 12345 took 1234567890 ns; order 202401011234"
    assert mask_text(text) == text


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(SensitiveDataFilter())
    logger = logging.getLogger("yikatong.tests.masking")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


def test_filter_masks_message_and_arguments(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    logger.info("resident %s phone %s", ID_NUMBER, 13812345678)
    logger.info("%(card)s", {"card": "6222021234567890123"})
    logger.info("inline 44160219900101123x")
    assert stream.getvalue().splitlines() == [
        "resident 441602********1234 phone 138****5678",
        "622202*********0123",
        "inline 441602********123x",
    ]


def test_filter_rewrites_the_record() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "id=%s", (ID_NUMBER,), None)
    assert SensitiveDataFilter().filter(record)
    assert record.msg == "id=441602********1234"
    assert record.args is None
    assert ID_NUMBER not in record.getMessage()


def test_filter_masks_exception_text(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    try:
        raise ValueError(f"bad id {ID_NUMBER}")
    except ValueError:
        logger.exception("failed for %s", "13812345678")
    output = stream.getvalue()
    assert ID_NUMBER not in output
    assert "13812345678" not in output
    assert "bad id 441602********1234" in output
    assert "Traceback" in output


def test_filter_survives_a_broken_format_string(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    logger.info("only one %s %s", ID_NUMBER)  # noqa: PLE1206 - the point of the test
    output = stream.getvalue()
    assert ID_NUMBER not in output
    assert "441602********1234" in output
