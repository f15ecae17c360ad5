"""The job machinery: the status table, progress in short transactions, the real worker
thread, and jobs a dead server process left behind (failed, never silently lost)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import login, make_resident, make_staff
from yikatong import migrate
from yikatong.cards.models import CardApplication
from yikatong.db import utcnow
from yikatong.jobs import runner, service
from yikatong.jobs.errors import IllegalJobTransition
from yikatong.jobs.models import JOB_TRANSITIONS, Job, JobStatus
from yikatong.kit.actor import Actor, Permission, Role


def _job(session: Session, status: JobStatus = JobStatus.RUNNING, **values: object) -> Job:
    job = Job(
        kind="card_applications.import",
        status=status.value,
        params={},
        created_by_id="1",
        created_by="clerk",
        region_code="441600",
        done=0,
        created_at=utcnow(),
        **values,
    )
    session.add(job)
    session.flush()
    return job


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(
    ("current", "target"), list(itertools.product(JobStatus, JobStatus)), ids=str
)
def test_status_changes_follow_the_table(current: JobStatus, target: JobStatus) -> None:
    job = Job(status=current.value)
    if target in JOB_TRANSITIONS[current]:
        service.transition(job, target)
        assert job.status == target
        assert (job.started_at is not None) is (target is JobStatus.RUNNING)
        assert (job.finished_at is not None) is (target in (JobStatus.SUCCEEDED, JobStatus.FAILED))
    else:
        with pytest.raises(IllegalJobTransition):
            service.transition(job, target)
        assert job.status == current


def test_finished_jobs_are_final() -> None:
    assert JOB_TRANSITIONS[JobStatus.SUCCEEDED] == JOB_TRANSITIONS[JobStatus.FAILED] == set()


def test_progress_goes_to_the_row_in_its_own_transaction(
    session_factory: sessionmaker[Session], session: Session
) -> None:
    job = _job(session)
    session.commit()
    kind = service.kind_of("card_applications.import")
    context = runner.JobContext(job, kind, Actor.system("t"), session_factory)
    context.progress(500, 2_000, "checking")
    session.expire_all()
    assert (job.done, job.total, job.stage) == (500, 2_000, "checking")
    assert job.heartbeat_at is not None
    with context.transaction():
        # On SQLite the job's own transaction holds the only write lock: not written now.
        # PostgreSQL takes the progress in its own short transaction meanwhile.
        context.progress(900, 2_000, "writing")
    session.expire_all()
    sqlite = session.get_bind().dialect.name == "sqlite"
    assert job.done == (500 if sqlite else 900)


def _failing_kind(monkeypatch: pytest.MonkeyPatch, name: str, run: object) -> service.JobKind:
    kind = service.JobKind(name, "Test", Permission.CARDS_OPERATE, run, frozenset({".csv"}))  # type: ignore[arg-type]
    monkeypatch.setitem(service._kinds, name, kind)
    return kind


def test_an_unexpected_error_fails_the_job_and_keeps_nothing(
    session_factory: sessionmaker[Session],
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    resident = make_resident(session)

    def explode(context: runner.JobContext) -> None:
        with context.transaction() as inner:
            inner.add(
                CardApplication(
                    resident_id=resident.id,
                    channel="counter",
                    reason="first",
                    status="submitted",
                    region_code="441602",
                    created_by="t",
                )
            )
            inner.flush()
            raise RuntimeError("disk on fire")

    _failing_kind(monkeypatch, "test.explode", explode)
    upload = tmp_path / "f.csv"
    upload.write_text("x")
    job = _job(session, JobStatus.QUEUED, stored_path=str(upload))
    job.kind = "test.explode"
    session.commit()
    runner.run(job.id, Actor.system("t"), session_factory)
    session.expire_all()
    assert job.status == JobStatus.FAILED
    assert job.failure is not None
    assert job.failure["code"] == "internal_error"
    assert str(job.id) in job.failure["message"]
    assert session.scalar(select(func.count()).select_from(CardApplication)) == 0
    assert not upload.exists()


def test_a_job_that_records_no_result_is_failed(
    session_factory: sessionmaker[Session], session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_kind(monkeypatch, "test.silent", lambda context: None)
    job = _job(session, JobStatus.QUEUED)
    job.kind = "test.silent"
    session.commit()
    runner.run(job.id, Actor.system("t"), session_factory)
    session.expire_all()
    assert (job.status, job.failure and job.failure["code"]) == ("failed", "no_result")


def test_a_job_no_longer_queued_is_not_started(
    session_factory: sessionmaker[Session], session: Session
) -> None:
    job = _job(session, JobStatus.FAILED)
    session.commit()
    runner.run(job.id, Actor.system("t"), session_factory)
    session.expire_all()
    assert job.started_at is None


def test_a_rolled_back_submission_leaves_no_file_and_runs_nothing(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(service, "UPLOAD_DIR", tmp_path)
    with session_factory() as session:
        clerk = make_staff(session, Role.COUNTER_CLERK).actor()
        job = service.submit(
            session,
            clerk,
            "card_applications.import",
            stream=io.BytesIO(b"id_number,channel\n"),
            filename="a.csv",
            params={},
            factory=session_factory,
        )
        assert [p.suffix for p in tmp_path.iterdir()] == [".csv"]
        session.rollback()
    assert list(tmp_path.iterdir()) == []
    with session_factory() as session:
        assert session.get(Job, job.id) is None


# --- liveness ------------------------------------------------------------------------------


NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("runner_id", "beat_seconds_ago", "heartbeats", "dead"),
    [
        (f"{runner.HOSTNAME}:{os.getpid()}:0000dead", 1, False, True),  # an earlier life of us
        (f"{runner.HOSTNAME}:{os.getppid()}:0000live", 1, False, False),  # a live sibling
        (f"{runner.HOSTNAME}:{os.getppid()}:0000live", 1, True, False),
        (f"{runner.HOSTNAME}:{os.getppid()}:0000live", 600, True, True),  # alive but mute
        ("elsewhere:123:00000000", 10, True, False),
        ("elsewhere:123:00000000", 600, True, True),
        ("elsewhere:123:00000000", 600, False, False),  # SQLite writes no heartbeats
        (runner.RUNNER_ID, 1, False, True),  # ours, but no thread has it
    ],
)
def test_who_is_dead(runner_id: str, beat_seconds_ago: int, heartbeats: bool, dead: bool) -> None:
    job = Job(id=10**6, runner=runner_id, heartbeat_at=NOW - dt.timedelta(seconds=beat_seconds_ago))
    assert runner.is_dead(job, NOW, heartbeats=heartbeats) is dead


def test_a_process_that_exited_is_dead_and_an_active_job_is_not() -> None:
    job = Job(id=10**6 + 1, runner=f"{runner.HOSTNAME}:{_dead_pid()}:0000abcd", heartbeat_at=NOW)
    assert runner.is_dead(job, NOW, heartbeats=False)
    runner._active.add(job.id)
    try:
        assert not runner.is_dead(job, NOW, heartbeats=True)
    finally:
        runner._active.discard(job.id)


def test_startup_fails_jobs_left_running_by_a_dead_process(
    app: FastAPI, client: TestClient, session: Session, tmp_path: Path
) -> None:
    upload = tmp_path / "left.csv"
    upload.write_text("id_number,channel\n")
    dead = f"{runner.HOSTNAME}:{_dead_pid()}:0000abcd"
    running = _job(session, JobStatus.RUNNING, runner=dead, stored_path=str(upload))
    queued = _job(session, JobStatus.QUEUED, runner=dead)
    finished = _job(session, JobStatus.SUCCEEDED, runner=dead)
    session.commit()
    with TestClient(app):  # the application starts again
        pass
    session.expire_all()
    for job in (running, queued):
        assert job.status == JobStatus.FAILED
        assert job.failure is not None
        assert job.failure["code"] == "server_stopped"
        assert job.finished_at is not None
    assert finished.status == JobStatus.SUCCEEDED
    assert not upload.exists()


def test_looking_at_a_job_of_a_dead_process_shows_it_failed(
    client: TestClient, session: Session
) -> None:
    clerk = make_staff(session, Role.COUNTER_CLERK)
    job = _job(session, runner=f"{runner.HOSTNAME}:{_dead_pid()}:0000abcd")
    job.created_by_id = str(clerk.member.id)
    session.commit()
    headers = {"X-CSRF-Token": login(client, clerk)}
    res = client.get(f"/api/v1/jobs/{job.id}", headers=headers)
    assert res.status_code == 200
    assert (res.json()["status"], res.json()["failure"]["code"]) == ("failed", "server_stopped")


# --- the real worker thread ----------------------------------------------------------------


def test_a_worker_thread_runs_the_job_while_the_client_polls(
    app: FastAPI, scratch_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    migrate.upgrade(scratch_engine)
    factory = sessionmaker(scratch_engine, expire_on_commit=False)
    with factory() as session:
        people = [make_resident(session, region_code="441625") for _ in range(30)]
        clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
        session.commit()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id_number", "channel"])
    writer.writerows([p.id_number, "counter"] for p in people)
    monkeypatch.setattr(runner, "inline", False)
    monkeypatch.setattr(service, "UPLOAD_DIR", tmp_path)
    app.state.session_factory = factory
    try:
        with TestClient(app) as client:
            headers = {"X-CSRF-Token": login(client, clerk)}
            res = client.post(
                "/api/v1/cards/applications/import",
                headers=headers,
                files={"file": ("apps.csv", out.getvalue().encode())},
            )
            assert res.status_code == 202, res.text
            seen = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                state = client.get(res.json()["url"]).json()
                seen.append(state["status"])
                if state["status"] in ("succeeded", "failed"):
                    break
                time.sleep(0.05)
    finally:
        app.state.session_factory = None
    assert state["status"] == "succeeded", state
    assert state["result"]["imported"] == 30
    with factory() as session:
        job = session.get(Job, state["id"])
        assert job is not None
        assert job.runner == runner.RUNNER_ID
        assert session.scalar(select(func.count()).select_from(CardApplication)) == 30
    assert list(tmp_path.iterdir()) == []
    assert state["id"] not in runner._active
