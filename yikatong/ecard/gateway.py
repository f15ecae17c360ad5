"""The verification gateway: online QR verification at terminal rates on one worker (R1.6).

A bus validator or a hall's scanner sends every code it reads to ``POST /api/v1/ecard/verify``;
at rush hour that is thousands a second. Each request goes through three stages:

1. the event loop reads the request and checks its CSRF token and body — no thread hop;
2. the offline step (:func:`service.check_code`: base45, key, SM2 signature, validity,
   purpose) runs in a small thread pool. Tongsuo releases the GIL while it verifies, so
   signatures are checked on a second core while the loop reads the next requests;
3. the database step runs in one writer thread that takes every request waiting at that
   moment as one batch: it resolves the callers' staff sessions, runs
   :func:`service.settle_codes` (card and e-card facts, replay store and audit entries in
   three statements for the whole batch) and commits once — a group commit. Nobody waits for
   a batch to fill: under light load a batch is one request; under load batches grow and the
   cost per request falls.

The answers are exactly those of :func:`service.verify_online`, check for check and audit
entry for audit entry. The one difference is who owns the transaction: the batch, not the
request. A batch that fails to commit fails every request in it (500, nothing of it kept);
a refused code is an answer, not a failure, so its audit entry commits with the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from yikatong.db import transaction, utcnow
from yikatong.ecard import service
from yikatong.ecard.qr import Purpose
from yikatong.errors import AuthenticationRequired, YikatongError
from yikatong.kit.actor import Actor
from yikatong.staff import service as staff_service
from yikatong.staff.errors import SessionExpired

log = logging.getLogger(__name__)

MAX_BATCH = 256
"""Requests settled in one transaction at most: bounds the statement and the wait."""

CRYPTO_THREADS = 2
"""Signature threads: one per core of a small server; more only adds switching."""

Outcome = service.OnlineVerification | YikatongError | BaseException


@dataclass(eq=False)
class _Job:
    credential: str
    caller: Actor
    code_text: str
    purpose: Purpose
    received_at: dt.datetime
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Outcome] = field(repr=False)
    check: service.CodeCheck | None = None


def _resolve_all(deliveries: list[tuple[asyncio.Future[Outcome], Outcome]]) -> None:
    for future, outcome in deliveries:
        if not future.done():  # a client that hung up cancelled it
            future.set_result(outcome)


class VerificationGateway:
    """Verifies codes for many concurrent requests of one process; see the module text.

    Threads talk through queues, and each request crosses a thread boundary as few times as
    possible: the event loop hands the job to a signature thread, which hands it straight to
    the writer, which wakes each waiting event loop once per batch.
    """

    def __init__(
        self,
        session_factory: Callable[[], Session],
        *,
        crypto_threads: int = CRYPTO_THREADS,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.session_factory = session_factory
        self._max_batch = max_batch
        self._inbox: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._signers = [
            threading.Thread(target=self._sign_checks, name=f"yk-verify-sm2-{n}", daemon=True)
            for n in range(crypto_threads)
        ]
        self._writer = threading.Thread(target=self._run, name="yk-verify-db", daemon=True)
        for thread in (*self._signers, self._writer):
            thread.start()
        self.batches = 0
        self.settled = 0

    async def verify(
        self, credential: str, caller: Actor, code_text: str, purpose: Purpose
    ) -> service.OnlineVerification:
        """Verify one code for the staff session ``credential``; raise its refusal.

        ``caller`` carries the request's facts (address, user agent, request id) that the
        audit entry records once the session has named who is calling.
        """
        loop = asyncio.get_running_loop()
        job = _Job(credential, caller, code_text, purpose, utcnow(), loop, loop.create_future())
        self._inbox.put(job)
        outcome = await job.future
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def close(self) -> None:
        """Finish the work already queued, then stop the threads."""
        for _ in self._signers:
            self._inbox.put(None)
        for thread in self._signers:
            thread.join(timeout=10)
        self._queue.put(None)
        self._writer.join(timeout=10)

    # --- the signature threads --------------------------------------------------------------

    def _sign_checks(self) -> None:
        while (job := self._inbox.get()) is not None:
            try:
                job.check = service.check_code(
                    job.caller, job.code_text, job.purpose, job.received_at
                )
            except Exception as exc:  # a bug, not a refusal: answer 500, keep serving
                log.exception("checking a code failed")
                self._deliver([job], [exc])
                continue
            self._queue.put(job)

    # --- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            self._settle(batch)
            if stop:
                return

    def _settle(self, batch: Sequence[_Job]) -> None:
        try:
            with self.session_factory() as session, transaction(session):
                outcomes = self._settle_in(session, batch)
        except Exception as exc:
            log.exception("verification batch of %d failed; none of it was kept", len(batch))
            outcomes = [exc] * len(batch)
        self.batches += 1
        self.settled += len(batch)
        self._deliver(batch, outcomes)

    @staticmethod
    def _deliver(batch: Sequence[_Job], outcomes: Sequence[Outcome]) -> None:
        """Wake each waiting event loop once, with all of its answers."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Outcome], Outcome]]]
        by_loop = {}
        for job, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job.future, outcome))
        for loop, deliveries in by_loop.items():
            # RuntimeError: that event loop has closed, so nobody is waiting.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve_all, deliveries)

    def _settle_in(self, session: Session, batch: Sequence[_Job]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(batch)
        callers: dict[str, Actor | YikatongError] = {}
        checks: list[service.CodeCheck] = []
        placed: list[int] = []
        for index, job in enumerate(batch):
            request = job.caller  # anonymous, with the request's facts
            caller = callers.get(job.credential)
            if caller is None:
                try:
                    caller = staff_service.resolve_actor(session, job.credential, request)
                except SessionExpired:
                    caller = AuthenticationRequired("Please log in to the staff console")
                callers[job.credential] = caller
            if isinstance(caller, YikatongError):
                outcomes[index] = caller
                continue
            actor = dataclasses.replace(
                caller, ip=request.ip, user_agent=request.user_agent, request_id=request.request_id
            )
            if job.check is None:  # pragma: no cover - signature threads fill it in
                raise RuntimeError("a job reached the writer unchecked")
            checks.append(dataclasses.replace(job.check, actor=actor))
            placed.append(index)
        settled = service.settle_codes(session, checks, utcnow())
        for index, result in zip(placed, settled, strict=True):
            outcomes[index] = result
        return [o for o in outcomes if o is not None]


_lock = threading.Lock()


def gateway_for(owner: object, session_factory: Callable[[], Session]) -> VerificationGateway:
    """The gateway of an application (``app.state``), created on first use.

    A gateway belongs to one session factory; when the application is given another one (the
    tests give each test its own) the old gateway finishes its queue and a new one starts.
    """
    with _lock:
        gateway: VerificationGateway | None = getattr(owner, "verification_gateway", None)
        if gateway is not None and gateway.session_factory is not session_factory:
            gateway.close()
            gateway = None
        if gateway is None:
            gateway = VerificationGateway(session_factory)
            owner.verification_gateway = gateway  # type: ignore[attr-defined]
        return gateway
