"""Cooperating banks (合作金融机构) that open the card's bank account.

The bank registry with activation and evaluation arrives with the money issue (R4.2, R4.5);
until then cards record the bank's CNAPS code from this list. The BINs only seed the demo
bank accounts; validation of a real account number is 19 digits with a valid Luhn digit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from stdnum import luhn

from yikatong.errors import InvalidInput


@dataclass(frozen=True)
class Bank:
    code: str  # CNAPS bank code
    name: str
    demo_bin: str  # 6-digit issuer prefix used for demo account numbers


COOPERATING_BANKS: tuple[Bank, ...] = (
    Bank("102", "中国工商银行", "621226"),
    Bank("103", "中国农业银行", "622848"),
    Bank("104", "中国银行", "621661"),
    Bank("105", "中国建设银行", "621700"),
    Bank("403", "中国邮政储蓄银行", "621799"),
    Bank("402", "广东农信", "621336"),
)
BANKS_BY_CODE = {bank.code: bank for bank in COOPERATING_BANKS}


def check_bank(code: str) -> Bank:
    bank = BANKS_BY_CODE.get(code)
    if bank is None:
        raise InvalidInput(
            "Unknown cooperating bank {code}", params={"code": code}, field="bank_code"
        )
    return bank


def check_account_number(number: str) -> str:
    """19 digits with a valid Luhn check digit (银行卡号校验)."""
    digits = number.replace(" ", "")
    if len(digits) != 19 or not digits.isdigit():
        raise InvalidInput("A bank account number has 19 digits", field="bank_account")
    if not luhn.is_valid(digits):
        raise InvalidInput("The bank account number's check digit is wrong", field="bank_account")
    return digits


def demo_account_number(bank: Bank, rng: random.Random) -> str:
    """A Luhn-valid 19-digit number under the bank's BIN (demo and simulator only)."""
    body = bank.demo_bin + "".join(str(rng.randrange(10)) for _ in range(12))
    return body + luhn.calc_check_digit(body)
