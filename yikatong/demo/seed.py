"""Realistic demo data for a city profile: residents shaped like the census, and staff logins.

Residents get valid ID numbers for their county, zh_CN names (Faker's frequency-weighted
surnames), ages drawn from the census age structure, towns of their county, mobile numbers and
categories at plausible rates. Everything is drawn from one seeded generator, so the same seed
gives the same city. Never runs in production.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from faker.providers.person.zh_CN import Provider as ChineseNames
from sqlalchemy.orm import Session

from yikatong.audit import service as audit
from yikatong.errors import N_, Conflict
from yikatong.kit.actor import Actor, Role
from yikatong.reference.idnumber import make_id_number
from yikatong.reference.profile import CityProfile, load_profile
from yikatong.reference.regions import find_region, towns_of
from yikatong.residents.models import Category
from yikatong.residents.repository import NewResident, bulk_add_residents, exists_any
from yikatong.residents.service import age_on, born_by
from yikatong.settings import get_settings
from yikatong.staff import service as staff_service

CHUNK = 5_000
DEMO_PASSWORD = "Heyuan2026demo"
MOBILE_PREFIXES = (
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "147",
    "150",
    "151",
    "152",
    "157",
    "158",
    "159",
    "178",
    "182",
    "183",
    "187",
    "188",
    "198",
    "130",
    "131",
    "132",
    "155",
    "156",
    "166",
    "185",
    "186",
    "133",
    "153",
    "177",
    "180",
    "181",
    "189",
    "199",
)
STREETS = (
    "人民路",
    "中山路",
    "建设路",
    "文明路",
    "新风路",
    "红星路",
    "永和路",
    "河源大道",
    "沿江路",
    "长安路",
    "胜利路",
    "东江路",
    "兴业路",
    "宝源路",
    "越王大道",
)


class SeedRefused(Conflict):
    """Demo data cannot be generated here (production, or the registry is not empty)."""

    code = "demo_seed_refused"
    title = N_("Demo data refused")


@dataclass(frozen=True)
class DemoStaff:
    username: str
    display_name: str
    role: Role
    region_code: str
    department: str | None


DEMO_STAFF = (
    DemoStaff("admin", "平台管理员", Role.PLATFORM_ADMIN, "441600", "市政务服务数据管理局"),
    DemoStaff("clerk.yc", "源城区经办员", Role.COUNTER_CLERK, "441602", "源城区社保服务大厅"),
    DemoStaff("clerk.dy", "东源县经办员", Role.COUNTER_CLERK, "441625", "东源县社保服务大厅"),
    DemoStaff(
        "dept.hrss", "市人社局管理员", Role.DEPARTMENT_ADMIN, "441600", "市人力资源和社会保障局"
    ),
    DemoStaff("auditor", "市审计员", Role.AUDITOR, "441600", "市政务服务数据管理局"),
    DemoStaff("leader", "领导小组", Role.LEADERSHIP, "441600", "一卡通工作领导小组"),
)


@dataclass(frozen=True)
class CreatedLogin:
    staff: DemoStaff
    password: str
    totp_secret: str
    totp_uri: str


class ResidentGenerator:
    """Draws residents of one city profile; deterministic for a given seed."""

    def __init__(self, profile: CityProfile, seed: int, today: dt.date) -> None:
        self.profile = profile
        self.rng = random.Random(seed)
        self.today = today
        self.surnames = list(ChineseNames.last_names.keys())
        self.surname_weights = list(ChineseNames.last_names.values())
        self.male_given = list(ChineseNames.first_names_male)
        self.female_given = list(ChineseNames.first_names_female)
        self.towns = {county: towns_of(county) for county in profile.population_by_county}
        self.county_names = {
            county: (r.name if (r := find_region(county)) else county)
            for county in profile.population_by_county
        }
        self.used_numbers: set[str] = set()
        self.used_phones: set[str] = set()

    def _name(self, male: bool) -> str:
        rng = self.rng
        surname = rng.choices(self.surnames, weights=self.surname_weights)[0]
        pool = self.male_given if male else self.female_given
        given = rng.choice(pool)
        if len(given) == 1 and rng.random() < 0.55:
            given += rng.choice(pool)[0]
        return surname + given

    def _birth_date(self) -> dt.date:
        latest = born_by(self.today, self.profile.draw_age(self.rng))
        return latest - dt.timedelta(days=self.rng.randrange(365))

    def _id_number(self, county: str, birth: dt.date, male: bool) -> str:
        while True:
            sequence = self.rng.randrange(500) * 2 + (1 if male else 0)
            number = make_id_number(county, birth, sequence)
            if number not in self.used_numbers:
                self.used_numbers.add(number)
                return number

    def _phone(self) -> str:
        while True:
            phone = self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
            if phone not in self.used_phones:
                self.used_phones.add(phone)
                return phone

    def _categories(
        self, age: int, male: bool
    ) -> tuple[tuple[Category, dt.date, dt.date | None], ...]:
        rng, today = self.rng, self.today
        found: list[tuple[Category, dt.date, dt.date | None]] = []
        if (6 <= age <= 18 and rng.random() < 0.95) or (19 <= age <= 22 and rng.random() < 0.5):
            # Enrolled this school year, until the end of the next summer.
            start = dt.date(today.year if today.month >= 9 else today.year - 1, 9, 1)
            found.append((Category.STUDENT, start, dt.date(start.year + 1, 8, 31)))
        if rng.random() < 0.045 + (0.06 if age >= 65 else 0):
            found.append((Category.DISABLED, today - dt.timedelta(days=rng.randrange(3650)), None))
        if male and 38 <= age <= 90 and rng.random() < 0.03:
            found.append((Category.VETERAN, today - dt.timedelta(days=rng.randrange(7300)), None))
        if rng.random() < 0.035:
            start = today - dt.timedelta(days=rng.randrange(1000))
            found.append((Category.LOW_INCOME, start, start + dt.timedelta(days=3 * 365)))
        if 18 <= age <= 60 and rng.random() < 0.18:
            found.append(
                (Category.MIGRANT_WORKER, today - dt.timedelta(days=rng.randrange(2000)), None)
            )
        return tuple(found)

    def resident(self) -> NewResident:
        rng = self.rng
        county = self.profile.draw_county(rng)
        male = rng.random() < self.profile.male / self.profile.population
        birth = self._birth_date()
        age = age_on(birth, self.today)
        town = rng.choice(self.towns[county]) if self.towns[county] else None
        address = (
            f"广东省{self.profile.name_zh}{self.county_names[county]}"
            f"{town.name if town else ''}{rng.choice(STREETS)}{rng.randrange(1, 300)}号"
        )
        return NewResident(
            id_number=self._id_number(county, birth, male),
            name=self._name(male),
            sex="male" if male else "female",
            birth_date=birth,
            region_code=county,
            town_code=town.code if town else None,
            phone=self._phone() if age >= 12 else None,
            address=address,
            categories=self._categories(age, male),
            source="demo",
        )

    def residents(self, count: int) -> Iterator[NewResident]:
        for _ in range(count):
            yield self.resident()


def seed_residents(
    session: Session,
    count: int,
    *,
    seed: int = 441600,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Insert ``count`` demo residents of the configured city, in chunks, in the caller's
    transaction (all or nothing)."""
    settings = get_settings()
    if settings.is_production:
        raise SeedRefused("Demo data is never generated in production")
    profile = load_profile(settings.region_code)
    generator = ResidentGenerator(profile, seed, dt.datetime.now(dt.UTC).date())
    done = 0
    while done < count:
        size = min(CHUNK, count - done)
        done += bulk_add_residents(session, generator.residents(size))
        if progress is not None:
            progress(done, count)
    audit.record(
        session,
        Actor.system("demo seed"),
        "demo.seed",
        object_type="resident",
        region_code=settings.region_code,
        detail={"residents": count, "seed": seed},
    )
    return done


def seed_staff(session: Session) -> list[CreatedLogin]:
    """Create the demo staff accounts that do not exist yet (one per role)."""
    if get_settings().is_production:
        raise SeedRefused("Demo accounts are never created in production")
    actor = Actor.system("demo seed")
    created = []
    for demo in DEMO_STAFF:
        if staff_service.find_by_username(session, demo.username) is not None:
            continue
        new = staff_service.create_staff(
            session,
            actor,
            username=demo.username,
            display_name=demo.display_name,
            role=demo.role,
            region_code=demo.region_code,
            password=DEMO_PASSWORD,
            department=demo.department,
        )
        created.append(
            CreatedLogin(demo, DEMO_PASSWORD, new.totp_secret, staff_service.totp_uri(new.member))
        )
    return created


def registry_is_empty(session: Session) -> bool:
    return not exists_any(session)
