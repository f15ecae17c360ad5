"""Typed factories for tests: staff members that can log in, residents of Heyuan."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from yikatong.kit.actor import ROLE_PERMISSIONS, Actor, ActorKind, Role
from yikatong.reference.idnumber import make_id_number
from yikatong.residents.models import Category, Resident
from yikatong.residents.repository import NewResident, add_resident
from yikatong.staff import service as staff_service
from yikatong.staff.models import StaffMember

PASSWORD = "Heyuan2026pass"
_seq = itertools.count(1)


@dataclass
class StaffLogin:
    member: StaffMember
    password: str
    totp_secret: str

    @property
    def username(self) -> str:
        return self.member.username

    def code(self, step_offset: int = 0) -> str:
        totp = pyotp.TOTP(self.totp_secret)
        return totp.generate_otp(totp.timecode(dt.datetime.now(dt.UTC)) + step_offset)

    def actor(self) -> Actor:
        return Actor(
            kind=ActorKind.STAFF,
            id=str(self.member.id),
            name=self.member.username,
            role=self.member.role,
            region_code=self.member.region_code,
            permissions=ROLE_PERMISSIONS[Role(self.member.role)],
            ip="127.0.0.1",
        )


def make_staff(
    session: Session,
    role: Role = Role.COUNTER_CLERK,
    region_code: str = "441600",
    username: str | None = None,
) -> StaffLogin:
    created = staff_service.create_staff(
        session,
        Actor.system("tests"),
        username=username or f"{role.value.replace('_', '-')}-{next(_seq)}",
        display_name="测试人员",
        role=role,
        region_code=region_code,
        password=PASSWORD,
    )
    return StaffLogin(created.member, PASSWORD, created.totp_secret)


def make_resident(
    session: Session,
    region_code: str = "441602",
    birth_date: dt.date = dt.date(1985, 6, 15),
    name: str = "张小三",
    sex: str = "male",
    phone: str | None = "13812345678",
    categories: tuple[Category, ...] = (),
) -> Resident:
    seq = next(_seq) % 500 * 2 + (1 if sex == "male" else 0)
    number = make_id_number(region_code, birth_date, seq)
    return add_resident(
        session,
        NewResident(
            id_number=number,
            name=name,
            sex=sex,
            birth_date=birth_date,
            region_code=region_code,
            phone=phone,
            address="广东省河源市源城区文明路1号",
            categories=tuple((c, dt.date(2020, 1, 1), None) for c in categories),
        ),
    )


def login(client: TestClient, who: StaffLogin) -> str:
    """Log ``who`` in through the API; returns the CSRF token for unsafe requests."""
    res = client.post(
        "/api/v1/auth/login",
        json={"username": who.username, "password": who.password, "code": who.code()},
    )
    assert res.status_code == 200, res.text
    token: str = res.json()["csrf_token"]
    return token
