"""The QR code codec and the offline verifier: pure functions, no database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import struct
import zlib

import pytest
import segno
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st

from yikatong.crypto.sm2 import SM2PrivateKey, SM2PublicKey
from yikatong.ecard import qr
from yikatong.ecard.errors import (
    QrBadSignature,
    QrError,
    QrExpired,
    QrMalformed,
    QrNotYetValid,
    QrTrailingData,
    QrTruncated,
    QrUnknownKey,
    QrUnsupportedVersion,
    QrWrongPurpose,
)
from yikatong.ecard.qr import Purpose

KEY = SM2PrivateKey.generate()
OTHER_KEY = SM2PrivateKey.generate()
KEYS: dict[int, SM2PublicKey] = {7: KEY.public_key()}
NOW = dt.datetime(2026, 11, 25, 8, 30, tzinfo=dt.UTC)
TOKEN = "5f0e3c2a9b8d7e6f1a2b3c4d5e6f7a8b"


def make_code(
    *,
    key: SM2PrivateKey = KEY,
    key_id: int = 7,
    purpose: Purpose = Purpose.IDENTITY,
    now: dt.datetime = NOW,
    lifetime: int = qr.DEFAULT_LIFETIME,
) -> qr.SignedCode:
    payload = qr.new_payload(
        key_id=key_id, token=TOKEN, purpose=purpose, region="441600", now=now, lifetime=lifetime
    )
    return qr.sign_code(payload, key)


def text_of(data: bytes) -> str:
    return qr.PREFIX + qr.base45_encode(data)


def resign(payload_bytes: bytes, key: SM2PrivateKey = KEY) -> bytes:
    """Sign arbitrary payload bytes the way the platform would (to reach the field checks)."""
    from yikatong.crypto.sm2 import der_to_raw

    return payload_bytes + der_to_raw(key.sign(qr.SIGNING_CONTEXT + payload_bytes))


# --- base45 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [  # RFC 9285 section 4.3
        (b"AB", "BB8"),
        (b"Hello!!", "%69 VD92EX0"),
        (b"base-45", "UJCLQE7W581"),
        (b"ietf!", "QED8WEX0"),
        (b"", ""),
    ],
)
def test_base45_rfc_examples(raw: bytes, encoded: str) -> None:
    assert qr.base45_encode(raw) == encoded
    assert qr.base45_decode(encoded) == raw


@pytest.mark.parametrize(
    "text",
    [
        "GGW",  # 16 + 16*45 + 32*2025 > 65535
        ":::",  # the largest triple, far above 65535
        "::",  # a pair above 255
        "A",  # 3n + 1 characters
        "BB8A",
        "bb8",  # lower case is not in the alphabet
        "BB8\n",
        "ＡＢ",  # full-width letters
    ],
)
def test_base45_decoding_is_strict(text: str) -> None:
    with pytest.raises(ValueError, match="base45"):
        qr.base45_decode(text)


@given(st.binary(max_size=300))
def test_base45_round_trip(data: bytes) -> None:
    text = qr.base45_encode(data)
    assert set(text) <= set(qr.BASE45_ALPHABET)
    assert qr.base45_decode(text) == data


# --- the code ---------------------------------------------------------------------------------


def test_layout_and_size() -> None:
    code = make_code()
    raw = code.to_bytes()
    assert len(raw) == qr.CODE_SIZE == 107
    assert qr.CODE_SIZE <= 200  # the ceiling before text encoding
    assert raw[0] == 1
    assert raw[1:3] == (7).to_bytes(2, "big")
    assert raw[3:19] == bytes.fromhex(TOKEN)
    assert raw[19] == 1
    assert struct.unpack(">II", raw[20:28]) == (
        int(NOW.timestamp()),
        int(NOW.timestamp()) + 60,
    )
    assert raw[40:43] == bytes([0x44, 0x16, 0x00])
    text = qr.encode(code)
    assert text.startswith("YKT1:")
    assert len(text) == 5 + 161
    # Every character is in the QR alphanumeric set, so the symbol uses alphanumeric mode.
    assert set(text) <= set(qr.BASE45_ALPHABET)
    assert segno.make(text, error="m").mode == "alphanumeric"


@settings(max_examples=60, deadline=None)
@given(
    key_id=st.integers(1, 0xFFFF),
    token=st.binary(min_size=16, max_size=16),
    purpose=st.sampled_from(list(Purpose)),
    issued_at=st.integers(0, 2**32 - 1 - qr.MAX_LIFETIME),
    lifetime=st.integers(1, qr.MAX_LIFETIME),
    nonce=st.binary(min_size=12, max_size=12),
    region=st.from_regex(r"\A[0-9]{6}\Z"),
)
def test_codec_round_trip(
    key_id: int,
    token: bytes,
    purpose: Purpose,
    issued_at: int,
    lifetime: int,
    nonce: bytes,
    region: str,
) -> None:
    payload = qr.CodePayload(key_id, token, purpose, issued_at, issued_at + lifetime, nonce, region)
    code = qr.sign_code(payload, KEY)
    decoded = qr.decode(qr.encode(code))
    assert decoded == code
    verified = qr.verify_offline(
        qr.encode(code),
        {key_id: KEY.public_key()},
        dt.datetime.fromtimestamp(issued_at, dt.UTC),
        purpose,
    )
    assert verified.token == token.hex()
    assert verified.nonce == nonce
    assert verified.region == region


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=250))
def test_arbitrary_text_only_ever_fails_with_a_qr_error(text: str) -> None:
    with pytest.raises(QrError):
        qr.verify_offline(text, KEYS, NOW, Purpose.IDENTITY)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=150))
def test_arbitrary_bytes_only_ever_fail_with_a_qr_error(data: bytes) -> None:
    with pytest.raises(QrError):
        qr.verify_offline(text_of(data), KEYS, NOW, Purpose.IDENTITY)


# --- each refusal has its own error -----------------------------------------------------------


def test_valid_code_verifies() -> None:
    result = qr.verify_offline(qr.encode(make_code()), KEYS, NOW, Purpose.IDENTITY)
    assert result.token == TOKEN
    assert result.purpose is Purpose.IDENTITY
    assert result.key_id == 7
    assert result.issued_at == NOW
    assert result.expires_at == NOW + dt.timedelta(seconds=60)
    assert result.region == "441600"


def _payload_bytes(**changes: object) -> bytes:
    payload = dataclasses.replace(make_code().payload, **changes)  # type: ignore[arg-type]
    return payload.to_bytes()


@pytest.mark.parametrize(
    ("text", "error", "reason"),
    [
        ("", QrMalformed, "malformed"),
        ("HC1:BB8", QrMalformed, "malformed"),
        ("ykt1:" + qr.encode(make_code())[5:], QrMalformed, "malformed"),
        ("YKT1:" + "bb8", QrMalformed, "malformed"),
        ("YKT1:A", QrMalformed, "malformed"),
        ("YKT1:", QrTruncated, "truncated"),
        (text_of(make_code().to_bytes()[:-1]), QrTruncated, "truncated"),
        (text_of(make_code().to_bytes()[:43]), QrTruncated, "truncated"),
        (text_of(make_code().to_bytes()[:1]), QrTruncated, "truncated"),
        (text_of(make_code().to_bytes() + b"\x00"), QrTrailingData, "trailing_data"),
        (
            text_of(b"\x02" + make_code().to_bytes()[1:]),
            QrUnsupportedVersion,
            "unsupported_version",
        ),
        (text_of(b"\x00"), QrUnsupportedVersion, "unsupported_version"),
    ],
    ids=[
        "empty",
        "other-scheme",
        "lower-case-prefix",
        "bad-base45",
        "base45-length",
        "no-bytes",
        "one-byte-short",
        "no-signature",
        "version-only",
        "trailing-byte",
        "version-2",
        "version-0",
    ],
)
def test_malformed_codes(text: str, error: type[QrMalformed], reason: str) -> None:
    with pytest.raises(error) as caught:
        qr.verify_offline(text, KEYS, NOW, Purpose.IDENTITY)
    assert caught.value.code == "qr_malformed"
    assert caught.value.status == 422
    assert caught.value.extra["reason"] == reason


@pytest.mark.parametrize(
    "payload",
    [
        _payload_bytes()[:19] + b"\x09" + _payload_bytes()[20:],  # unknown purpose
        _payload_bytes()[:40] + b"\x4a\x16\x00",  # region nibble A is not BCD
        _payload_bytes(expires_at=int(NOW.timestamp())),  # empty validity
        _payload_bytes(expires_at=int(NOW.timestamp()) + qr.MAX_LIFETIME + 1),  # too long
    ],
    ids=["purpose", "region", "empty-validity", "lifetime"],
)
def test_bad_fields_are_malformed_even_when_signed(payload: bytes) -> None:
    with pytest.raises(QrMalformed) as caught:
        qr.verify_offline(text_of(resign(payload)), KEYS, NOW, Purpose.IDENTITY)
    assert type(caught.value) is QrMalformed


def test_unknown_key() -> None:
    with pytest.raises(QrUnknownKey) as caught:
        qr.verify_offline(qr.encode(make_code(key_id=8)), KEYS, NOW, Purpose.IDENTITY)
    assert caught.value.code == "qr_unknown_key"


def test_forged_signature() -> None:
    forged = make_code(key=OTHER_KEY)  # right key id, somebody else's key
    with pytest.raises(QrBadSignature) as caught:
        qr.verify_offline(qr.encode(forged), KEYS, NOW, Purpose.IDENTITY)
    assert caught.value.code == "qr_bad_signature"


def test_signature_out_of_range_is_a_bad_signature() -> None:
    raw = make_code().to_bytes()
    for signature in (b"\x00" * 64, b"\xff" * 64):
        with pytest.raises(QrBadSignature):
            qr.verify_offline(text_of(raw[:43] + signature), KEYS, NOW, Purpose.IDENTITY)


def test_signature_over_another_document_does_not_verify() -> None:
    # The same key signing the bare payload (no QR context) gives no valid code.
    from yikatong.crypto.sm2 import der_to_raw

    payload = make_code().payload.to_bytes()
    bare = payload + der_to_raw(KEY.sign(payload))
    with pytest.raises(QrBadSignature):
        qr.verify_offline(text_of(bare), KEYS, NOW, Purpose.IDENTITY)


def test_validity_window_with_clock_skew() -> None:
    text = qr.encode(make_code())
    skew = dt.timedelta(seconds=qr.CLOCK_SKEW)
    second = dt.timedelta(seconds=1)
    qr.verify_offline(text, KEYS, NOW - skew, Purpose.IDENTITY)
    with pytest.raises(QrNotYetValid) as early:
        qr.verify_offline(text, KEYS, NOW - skew - second, Purpose.IDENTITY)
    assert early.value.code == "qr_not_yet_valid"
    end = NOW + dt.timedelta(seconds=60)
    qr.verify_offline(text, KEYS, end + skew - second, Purpose.IDENTITY)
    with pytest.raises(QrExpired) as late:
        qr.verify_offline(text, KEYS, end + skew, Purpose.IDENTITY)
    assert late.value.code == "qr_expired"
    with pytest.raises(QrExpired):
        qr.verify_offline(text, KEYS, end, Purpose.IDENTITY, skew=0)


def test_wrong_purpose() -> None:
    text = qr.encode(make_code(purpose=Purpose.MEDICAL))
    with pytest.raises(QrWrongPurpose) as caught:
        qr.verify_offline(text, KEYS, NOW, Purpose.PAYMENT)
    assert caught.value.code == "qr_wrong_purpose"
    accepted = qr.verify_offline(text, KEYS, NOW, {Purpose.MEDICAL, Purpose.IDENTITY})
    assert accepted.purpose is Purpose.MEDICAL


def test_signature_is_checked_before_validity_and_purpose() -> None:
    forged = qr.encode(make_code(key=OTHER_KEY, purpose=Purpose.PAYMENT))
    far_future = NOW + dt.timedelta(days=1)
    with pytest.raises(QrBadSignature):
        qr.verify_offline(forged, KEYS, far_future, Purpose.IDENTITY)


def test_tampering_with_any_byte_fails() -> None:
    raw = make_code().to_bytes()
    seen: set[type[QrError]] = set()
    for index in range(len(raw)):
        for bit in (0x01, 0x80):
            tampered = bytearray(raw)
            tampered[index] ^= bit
            with pytest.raises(QrError) as caught:
                qr.verify_offline(text_of(bytes(tampered)), KEYS, NOW, Purpose.IDENTITY)
            seen.add(type(caught.value))
    assert seen <= {QrBadSignature, QrUnknownKey, QrMalformed, QrUnsupportedVersion}
    assert QrBadSignature in seen


def test_tampering_with_the_text_fails() -> None:
    text = qr.encode(make_code())
    alphabet = qr.BASE45_ALPHABET
    for index in range(len(qr.PREFIX), len(text)):
        replacement = alphabet[(alphabet.index(text[index]) + 1) % len(alphabet)]
        with pytest.raises(QrError):
            qr.verify_offline(
                text[:index] + replacement + text[index + 1 :], KEYS, NOW, Purpose.IDENTITY
            )


def test_new_payload_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="seconds"):
        make_code(lifetime=qr.MAX_LIFETIME + 1)
    with pytest.raises(ValueError, match="key id"):
        make_code(key_id=0)
    with pytest.raises(ValueError, match="token"):
        qr.new_payload(key_id=1, token="abcd", purpose=Purpose.IDENTITY, region="441600", now=NOW)
    with pytest.raises(ValueError, match="region"):
        qr.new_payload(key_id=1, token=TOKEN, purpose=Purpose.IDENTITY, region="44160", now=NOW)
    with pytest.raises(ValueError, match="nonce"):
        qr.new_payload(
            key_id=1, token=TOKEN, purpose=Purpose.IDENTITY, region="441600", now=NOW, nonce=b"x"
        )


def test_nonces_are_fresh() -> None:
    assert len({make_code().payload.nonce for _ in range(50)}) == 50


def test_trusted_keys_follow_the_published_windows() -> None:
    hour = dt.timedelta(hours=1)
    published = [
        qr.PublishedKey(1, OTHER_KEY.public_key(), NOW - 5 * hour, NOW - hour, "retired"),
        qr.PublishedKey(2, KEY.public_key(), NOW - 2 * hour, NOW + hour, "retired"),
        qr.PublishedKey(3, KEY.public_key(), NOW - hour, None, "active"),
        qr.PublishedKey(4, OTHER_KEY.public_key(), NOW + hour, None, "pending"),
    ]
    assert sorted(qr.trusted_keys(published, NOW)) == [2, 3]
    assert sorted(qr.trusted_keys(published, NOW + 2 * hour)) == [3, 4]


# --- a real QR symbol: segno draws it, zxing-cpp reads it back from the PNG ------------------


def _png_chunks(png: bytes) -> dict[bytes, bytes]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(png):
        (size,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + size]
        chunks[kind] = chunks.get(kind, b"") + body  # IDAT chunks concatenate
        pos += 12 + size
    return chunks


def _paeth(left: int, up: int, corner: int) -> int:
    p = left + up - corner
    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
    return left if pa <= pb and pa <= pc else up if pb <= pc else corner


def _unfilter(raw: bytes, height: int, stride: int, bpp: int) -> list[bytearray]:
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            corner = previous[i - bpp] if i >= bpp else 0
            predictor = {
                0: 0,
                1: left,
                2: previous[i],
                3: (left + previous[i]) // 2,
                4: _paeth(left, previous[i], corner),
            }[kind]
            line[i] = (line[i] + predictor) & 0xFF
        rows.append(line)
        previous = line
    return rows


def read_png_grey(png: bytes) -> tuple[int, int, bytes]:
    """Decode a non-interlaced greyscale or palette PNG into 8-bit grey pixels (no Pillow)."""
    chunks = _png_chunks(png)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert interlace == 0
    assert colour in (0, 3)
    stride = (width * depth + 7) // 8
    rows = _unfilter(zlib.decompress(chunks[b"IDAT"]), height, stride, max(1, depth // 8))
    palette = chunks.get(b"PLTE", b"")
    top = (1 << depth) - 1
    grey = bytearray()
    for line in rows:
        for x in range(width):
            bit = x * depth
            value = (line[bit // 8] >> (8 - depth - bit % 8)) & top
            if colour == 3:
                grey.append(sum(palette[3 * value : 3 * value + 3]) // 3)
            else:
                grey.append(value * 255 // top)
    return width, height, bytes(grey)


def test_qr_symbol_round_trip_through_png() -> None:
    text = qr.encode(make_code(purpose=Purpose.PAYMENT))
    symbol = segno.make(text, error="m", micro=False)
    assert symbol.mode == "alphanumeric"
    assert symbol.version <= 8  # small enough for a phone screen and a bus validator
    buffer = io.BytesIO()
    symbol.save(buffer, kind="png", scale=4, border=4)
    width, height, pixels = read_png_grey(buffer.getvalue())
    image = memoryview(pixels).cast("B", (height, width))
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert [barcode.text for barcode in found] == [text]
    verified = qr.verify_offline(found[0].text, KEYS, NOW, Purpose.PAYMENT)
    assert verified.token == TOKEN
