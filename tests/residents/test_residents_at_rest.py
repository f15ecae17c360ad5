"""A raw copy of the database holds no plaintext ID number, phone or address."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.orm import sessionmaker

from yikatong import migrate
from yikatong.db import transaction
from yikatong.demo.seed import seed_residents
from yikatong.residents.models import Resident


def test_database_file_contains_no_plaintext_identity(scratch_engine: Engine) -> None:
    migrate.upgrade(scratch_engine)
    factory = sessionmaker(scratch_engine, expire_on_commit=False)
    with factory() as session, transaction(session):
        seed_residents(session, 300, seed=99)
    with factory() as session:
        people = [(r.id_number, r.phone, r.address) for r in session.query(Resident)]
    assert len(people) == 300

    if scratch_engine.dialect.name == "sqlite":
        # Every byte on disk: the database file and its write-ahead log.
        scratch_engine.dispose()
        path = Path(str(scratch_engine.url.database))
        raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        dump = raw.decode("latin-1")
        # The same bytes as UTF-8 text, for Chinese addresses.
        utf8 = raw.decode("utf-8", errors="ignore")
    else:
        with scratch_engine.connect() as conn:
            dump = utf8 = "\n".join(
                str(row) for row in conn.execute(text("SELECT r::text FROM residents r"))
            )
    for id_number, phone, address in people:
        assert id_number not in dump
        assert phone is None or phone not in dump
        assert address is not None
        assert address not in utf8
