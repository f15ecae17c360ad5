"""Display masking of personal information, and a logging filter that applies it.

Rules (PIPL art. 28 practice; GB/T 35273 de-identification): ID numbers show the first 6 and last
4 characters, phone numbers the first 3 and last 4, bank accounts the first 6 and last 4, names
the first and last character. Inputs of unexpected length are masked by the same rule scaled
down: a masker never shows more characters than it would for a well-formed value, and always
hides at least as many as it must.
"""

from __future__ import annotations

import logging
import re

MASK = "*"


def _mask_middle(value: str, head: int, tail: int, min_hidden: int) -> str:
    """Keep ``head`` and ``tail`` characters, hide the rest; length is preserved.

    When the value is too short to hide ``min_hidden`` characters, fewer are shown, taken from
    both ends (the tail gets at most half) so the hidden run stays contiguous.
    """
    length = len(value)
    visible = max(0, min(head + tail, length - min_hidden))
    if visible == head + tail:
        shown_head, shown_tail = head, tail
    else:
        shown_tail = min(tail, visible // 2)
        shown_head = min(head, visible - shown_tail)
    hidden = length - shown_head - shown_tail
    return value[:shown_head] + MASK * hidden + (value[length - shown_tail :] if shown_tail else "")


def mask_id_number(value: str) -> str:
    """``441602199001011234`` → ``441602********1234`` (birth date and sequence hidden)."""
    return _mask_middle(value, head=6, tail=4, min_hidden=8)


def mask_phone(value: str) -> str:
    """``13812345678`` → ``138****5678``."""
    return _mask_middle(value, head=3, tail=4, min_hidden=4)


def mask_bank_account(value: str) -> str:
    """``6222021234567890123`` → ``622202*********0123`` (issuer BIN and last 4 shown)."""
    return _mask_middle(value, head=6, tail=4, min_hidden=6)


def mask_name(value: str) -> str:
    """``张三`` → ``张*``, ``张小三`` → ``张*三``, ``欧阳小明`` → ``欧**明``; one character → ``*``.

    Surrounding whitespace is dropped; the length of a name of three or more is kept.
    """
    name = value.strip()
    if len(name) <= 1:
        return MASK * len(name)
    if len(name) == 2:
        return name[0] + MASK
    return name[0] + MASK * (len(name) - 2) + name[-1]


# Administrative-division prefixes of a Chinese address. A name body is Chinese characters that
# cannot belong to a finer level (no 区/县/镇/路/号 ...), so street and building text is never
# mistaken for a division; when unsure the pattern matches less, which only masks more.
_BODY = r"(?:(?![省市县区镇乡村街路巷号弄栋楼室])[\u4e00-\u9fff])"
_ADDRESS_PREFIX = re.compile(
    rf"(?P<province>{_BODY}{{1,8}}?(?:省|自治区|特别行政区))?"
    rf"(?P<city>{_BODY}{{1,10}}?(?:自治州|地区|盟|市))?"
    rf"(?P<county>{_BODY}{{1,15}}?自治[县旗]|(?!{_BODY}{{0,5}}?(?:小区|社区|园区|校区|景区|厂区))"
    rf"{_BODY}{{1,6}}?(?:新区|区|县|市|旗))?"
)
_ADDRESS_MASK = MASK * 6  # fixed width: the masked part's length says nothing about it


def mask_address(value: str) -> str:
    """Keep the province/city/district-or-county prefix, mask the rest with a fixed ``******``.

    ``广东省河源市源城区越王大道1号`` → ``广东省河源市源城区******``. Text that is not recognised
    as a division is masked, never shown.
    """
    address = "".join(value.split())
    if not address:
        return ""
    match = _ADDRESS_PREFIX.match(address)
    kept = match.group(0) if match else ""
    return kept + (_ADDRESS_MASK if len(kept) < len(address) else "")


# One pass over the text finds every kind; alternatives are tried in order at each position.
_SENSITIVE = re.compile(
    r"(?<!\d)(?P<id>\d{17}[\dXx])(?!\d)"
    r"|(?<!\d)(?:(?:\+|00)?86[- ]?)?(?P<phone>1[3-9]\d{9})(?!\d)"
    r"|(?<!\d)(?P<bank>\d{16,19}|\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?)(?!\d)"
)


def _mask_digits(token: str, head: int, tail: int) -> str:
    """Mask the digits of ``token`` except the first ``head`` and last ``tail``; keep separators."""
    total = sum(ch.isdigit() for ch in token)
    out = []
    seen = 0
    for ch in token:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen <= head or seen > total - tail else MASK)
        else:
            out.append(ch)
    return "".join(out)


def _replace(match: re.Match[str]) -> str:
    if match.group("id") is not None:
        return mask_id_number(match.group(0))
    if match.group("phone") is not None:
        start, end = match.span("phone")
        offset = match.start()
        text = match.group(0)
        return text[: start - offset] + mask_phone(match.group("phone")) + text[end - offset :]
    return _mask_digits(match.group(0), head=6, tail=4)


def mask_text(text: str) -> str:
    """Mask every 18-character ID number, mainland mobile number and 16–19 digit bank number."""
    return _SENSITIVE.sub(_replace, text)


class SensitiveDataFilter(logging.Filter):
    """Masks ID, mobile and bank numbers in log records before any handler formats them.

    The message is formatted once with its arguments and the masked text replaces ``msg`` (with
    ``args`` cleared), so nothing sensitive survives in an argument a formatter would render
    later. Exception and stack text are masked too. Attach it to handlers: a filter on a logger
    does not see records propagated from its children.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide (or leak) the record
            message = f"{record.msg!s} {record.args!r}"
        record.msg = mask_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True
