"""Fault injection on the real stack: gunicorn workers in front of a PostgreSQL server of the
test's own (``TemporaryPostgres``), which the test crashes and restarts, a worker killed with
SIGKILL mid-request, statements cancelled by the statement timeout, and a crash in the middle
of a creation made with an ``Idempotency-Key``.

What must hold (API.md section 1, README "Operations"): a failing dependency gives 503
problems with ``Retry-After``, never a 500 or a hung request; ``/health/ready`` says so while
``/health/live`` does not; the service recovers by itself, without a restart; a request that
was not answered with success left nothing behind (or, with an ``Idempotency-Key``, is never
done twice); and gunicorn replaces a dead worker while the others keep serving.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import requests

from tests.proof.remote import (
    API,
    CLIENT_TIMEOUT,
    RemoteAccount,
    TableLock,
    app_backends_blocked_by,
    assert_problem,
    create_character,
    create_template,
    fetch_value,
    sign_up,
    tables_locked,
    unique_label,
    wait_for_every_worker,
    wait_until,
)
from tests.support.postgres import TemporaryPostgres, skip_unless_available
from tests.support.servers import Gunicorn

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]

# gunicorn kills a worker whose request runs longer than this: no request may take longer.
REQUEST_TIMEOUT = 10
# the crash test: client threads of mixed load, plus generations sent just before the crash
LOAD_THREADS = 4
CRASH_GENERATIONS = 2


@pytest.fixture
def postgres():
    skip_unless_available()
    with TemporaryPostgres() as server:
        yield server


def server_env(database_url: str, workdir: Path, **overrides: str) -> dict[str, str]:
    return {
        "APP_ENV": "testing",
        "SECRET_KEY": "fault-injection-secret-key-0123456789abcdef",
        "DATABASE_URL": database_url,
        "DB_CONNECT_TIMEOUT": "2",
        "GUNICORN_TIMEOUT": str(REQUEST_TIMEOUT),
        "RATELIMIT_LOGIN": "100000 per minute",
        "RATELIMIT_REGISTER": "100000 per minute",
        "PORTRAIT_DIR": str(workdir / "portraits"),
        **overrides,
    }


def request_log(server: Gunicorn) -> list[dict[str, Any]]:
    """The app's per-request log lines (JSON on stdout, one per answered request)."""
    lines = [json.loads(line) for line in server.stdout().splitlines() if line.strip()]
    return [line for line in lines if "status" in line and "path" in line]


# --- a. PostgreSQL crashes under load, then comes back ------------------------------------------


@dataclass
class Outcome:
    """One request of the load: what was asked, when, and what came back."""

    op: str
    started: float
    finished: float = 0.0
    status: int | None = None
    error: str | None = None
    content_type: str = ""
    retry_after: str | None = None
    problem_type: str | None = None
    name: str | None = None  # generate: the unique name asked for

    @property
    def elapsed(self) -> float:
        return self.finished - self.started

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class MixedLoad:
    """Threads cycling through login, GET one, GET list, generate (a unique name each time)
    and PATCH with If-Match.

    Each thread edits a character of its own and keeps the last ETag a PATCH answered with 200,
    also across failed PATCHes: a write that was answered 503 must have changed nothing, so
    the ETag stays current and a 412 later on would expose a half-applied edit.
    """

    OPS = ("login", "get", "list", "generate", "patch")

    def __init__(
        self,
        base: str,
        account: RemoteAccount,
        template_id: str,
        characters: list[tuple[str, str]],
    ) -> None:
        self.base = base
        self.account = account
        self.template_id = template_id
        self.characters = characters
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(index,), daemon=True)
            for index in range(len(characters))
        ]

    def __enter__(self) -> MixedLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CLIENT_TIMEOUT + 5)

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def call(
        self, session: requests.Session, op: str, method: str, path: str, **kwargs: Any
    ) -> tuple[Outcome, requests.Response | None]:
        outcome = Outcome(op=op, started=time.monotonic(), name=kwargs.pop("name", None))
        response = None
        try:
            response = session.request(
                method, f"{self.base}{path}", timeout=CLIENT_TIMEOUT, **kwargs
            )
        except requests.RequestException as error:
            outcome.error = f"{type(error).__name__}: {error}"
        outcome.finished = time.monotonic()
        if response is not None:
            outcome.status = response.status_code
            outcome.content_type = response.headers.get("Content-Type", "")
            outcome.retry_after = response.headers.get("Retry-After")
            if outcome.content_type.startswith("application/problem+json"):
                outcome.problem_type = response.json().get("type")
        with self._lock:
            self.outcomes.append(outcome)
        return outcome, response

    def generate(self, session: requests.Session, op: str = "generate") -> Outcome:
        name = unique_label("crash")
        outcome, _ = self.call(
            session,
            op,
            "POST",
            f"{API}/characters/generate",
            json={"template_id": self.template_id, "name": name},
            headers=self.account.auth,
            name=name,
        )
        return outcome

    def _run(self, index: int) -> None:
        session = requests.Session()
        character_id, etag = self.characters[index]
        character = f"{API}/characters/{character_id}"
        for step in itertools.count(index):
            if self._stop.is_set():
                return
            op = self.OPS[step % len(self.OPS)]
            if op == "login":
                self.call(
                    session,
                    op,
                    "POST",
                    f"{API}/auth/login",
                    json={"email": self.account.email, "password": self.account.password},
                )
            elif op == "get":
                self.call(session, op, "GET", character, headers=self.account.auth)
            elif op == "list":
                self.call(session, op, "GET", f"{API}/characters", headers=self.account.auth)
            elif op == "generate":
                self.generate(session)
            else:
                _, response = self.call(
                    session,
                    op,
                    "PATCH",
                    character,
                    json={"backstory": f"<p>step {step}</p>"},
                    headers={**self.account.auth, "If-Match": etag},
                )
                if response is not None and response.status_code == 200:
                    etag = response.headers["ETag"]
            time.sleep(0.01)


def test_database_crash_under_load_gives_503_then_recovers_without_restart(postgres, tmp_path):
    """PostgreSQL is crashed (``pg_ctl stop -m immediate``) while clients send a mix of logins,
    reads, lists, generations and conditional edits, then started again.

    Proves: every response is a success or a 503 ``problem+json`` with ``Retry-After`` (no 500,
    no other status, no request past the request timeout, no dropped connection); readiness
    fails while liveness holds; once the server is back the service is ready and accepts
    writes within 5 s, with the same gunicorn master and workers; a PATCH answered 503 changed
    nothing (its ETag still works afterwards); and in the database every generation answered
    201 exists while every other one left no row at all.

    The crash is placed deterministically. Just before it, the test takes ``LOCK TABLE <every
    table> IN SHARE MODE``: that waits for the writes already committing (so the crash never
    falls between a COMMIT and its acknowledgement, a window where the outcome of any commit
    is unknowable, in any system), lets reads through and stops every write at its first
    INSERT/UPDATE. Two extra generations are sent, and the crash comes only once every request
    in flight (one per sync worker) is stuck on the lock: so generations are always killed
    in the middle of their transaction.
    """
    env = server_env(postgres.url, tmp_path)
    with Gunicorn(env, workers=LOAD_THREADS + CRASH_GENERATIONS) as server:
        account = sign_up(server.url)
        template_id = create_template(server.url, account)
        characters = [
            (response.json()["id"], response.headers["ETag"])
            for response in (create_character(server.url, account) for _ in range(LOAD_THREADS))
        ]
        workers_before = sorted(wait_for_every_worker(server))
        assert len(workers_before) == LOAD_THREADS + CRASH_GENERATIONS

        with MixedLoad(server.url, account, template_id, characters) as load:
            time.sleep(1.5)  # the service under load, database up
            assert any(o.ok for o in load.snapshot())

            with (
                ThreadPoolExecutor(max_workers=CRASH_GENERATIONS) as pool,
                tables_locked(postgres.url, "SHARE") as lock,
            ):
                crashing = [
                    pool.submit(load.generate, requests.Session()) for _ in range(CRASH_GENERATIONS)
                ]
                wait_until(
                    lambda: (
                        app_backends_blocked_by(postgres.url, lock)
                        == LOAD_THREADS + CRASH_GENERATIONS
                    ),
                    timeout=30,
                    what="every request in flight stuck on the lock",
                )
                time.sleep(0.1)  # acknowledgements of commits made before the lock are out
                postgres.stop("immediate")  # the crash; the lock goes with the server
                down_at = time.monotonic()
                crashed = [future.result() for future in crashing]
            assert [o.status for o in crashed] == [503] * CRASH_GENERATIONS, crashed

            time.sleep(0.3)
            ready = requests.get(f"{server.url}/health/ready", timeout=CLIENT_TIMEOUT)
            assert ready.status_code == 503
            assert ready.headers["Content-Type"].startswith("application/json")
            assert ready.json()["status"] == "fail"
            assert ready.json()["checks"]["database"]["status"] == "fail"
            live = requests.get(f"{server.url}/health/live", timeout=CLIENT_TIMEOUT)
            assert live.status_code == 200 and live.json() == {"status": "ok"}
            time.sleep(1.0)

            up_at = time.monotonic()
            postgres.start()  # returns once the server accepts connections (after recovery)
            probe = requests.Session()

            def recovered() -> bool:
                ready = probe.get(f"{server.url}/health/ready", timeout=CLIENT_TIMEOUT)
                return ready.status_code == 200 and load.generate(probe, "probe").status == 201

            recovery = wait_until(recovered, timeout=5, what="readiness and writes back")
            recovered_at = time.monotonic()
            time.sleep(1.5)  # the load goes on after recovery
        workers_after = sorted(server.worker_pids())

    outcomes = load.outcomes
    # 1. Only successes and 503 problems, nothing hung, no connection dropped.
    assert not [o for o in outcomes if o.error], [o for o in outcomes if o.error][:5]
    unexpected = [o for o in outcomes if not o.ok and o.status != 503]
    assert not unexpected, Counter((o.op, o.status) for o in unexpected)
    for o in outcomes:
        if o.status == 503:
            assert o.content_type.startswith("application/problem+json"), o
            assert o.retry_after is not None and int(o.retry_after) > 0, o
            assert o.problem_type == "/problems/database-unavailable", o
    slowest = max(outcomes, key=lambda o: o.elapsed)
    assert slowest.elapsed < REQUEST_TIMEOUT, slowest

    # 2. The outage was real and every kind of request met it.
    during = [o for o in outcomes if o.started > down_at and o.finished < up_at]
    assert during and all(o.status == 503 for o in during), Counter(o.status for o in during)
    assert {o.op for o in during} >= set(MixedLoad.OPS), Counter(o.op for o in during)

    # 3. Recovery by itself, within 5 s, with the same processes.
    assert recovery < 5
    after = [o for o in outcomes if o.started > recovered_at]
    assert len(after) > 20 and all(o.ok for o in after), Counter((o.op, o.status) for o in after)
    assert {o.op for o in after} >= set(MixedLoad.OPS)
    assert workers_after == workers_before, "gunicorn workers were restarted"

    # 4. In the database: every 201 is there, every other generation left nothing.
    generations = [o for o in outcomes if o.name]
    answered = {o.name for o in generations if o.status == 201}
    refused = {o.name for o in generations if o.status != 201}
    assert answered and refused
    connection = psycopg2.connect(postgres.url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, count(*) FROM characters WHERE name = ANY(%s) GROUP BY name",
                (sorted(answered | refused),),
            )
            stored = dict(cursor.fetchall())
    finally:
        connection.close()
    assert {name: stored.get(name) for name in answered if stored.get(name) != 1} == {}
    assert sorted(refused & stored.keys()) == [], "a refused generation left a row behind"


# --- b. a worker is killed mid-request --------------------------------------------------------


def test_worker_killed_mid_request_is_replaced_and_other_requests_succeed(postgres, tmp_path):
    """A gunicorn worker gets SIGKILL while it is serving a request.

    To be sure the victim is mid-request, every worker is first made to hold one: the test
    locks the ``characters`` table and sends six reads to three workers; three block in
    PostgreSQL (seen in ``pg_stat_activity``) and three wait in the listen queue. Then one
    worker is killed and the lock released.

    Proves: exactly one request is lost (the one the dead worker held; sync workers hold one
    at a time) and the five others, on the surviving workers or still queued, all succeed;
    gunicorn notices and starts a replacement, so the worker count is back to three; and the
    replacement serves too (three blocked reads are again spread over three live workers, one
    of them the new one).
    """
    env = server_env(postgres.url, tmp_path, DB_STATEMENT_TIMEOUT_MS="8000")
    with Gunicorn(env, workers=3) as server:
        account = sign_up(server.url)
        character = create_character(server.url, account).json()["id"]
        workers = wait_for_every_worker(server)
        assert len(workers) == 3

        def read(request_id: str) -> int | str:
            try:
                return requests.get(
                    f"{server.url}{API}/characters/{character}",
                    headers={**account.auth, "X-Request-ID": request_id},
                    timeout=CLIENT_TIMEOUT,
                ).status_code
            except requests.RequestException as error:
                return type(error).__name__

        first_ids = [f"kill-round-1-{i}" for i in range(6)]
        with ThreadPoolExecutor(max_workers=6) as pool:
            with tables_locked(postgres.url, "ACCESS EXCLUSIVE", ("characters",)) as lock:
                futures = [pool.submit(read, request_id) for request_id in first_ids]
                wait_until(
                    lambda: app_backends_blocked_by(postgres.url, lock) == 3,
                    timeout=30,
                    what="every worker blocked in a request",
                )
                victim = min(workers)
                os.kill(victim, signal.SIGKILL)
                wait_until(
                    lambda: victim not in server.worker_pids(),
                    timeout=10,
                    what="the master reaping the dead worker",
                )
            first_round = dict(zip(first_ids, (f.result() for f in futures), strict=True))

        lost = {rid: result for rid, result in first_round.items() if result != 200}
        assert len(lost) == 1, first_round
        assert all(isinstance(result, str) for result in lost.values()), lost  # no response

        wait_until(
            lambda: len(server.worker_pids()) == 3,
            timeout=30,
            what="gunicorn replacing the dead worker",
        )
        replacement = wait_for_every_worker(server) - workers
        assert len(replacement) == 1 and victim not in server.worker_pids()

        second_ids = [f"kill-round-2-{i}" for i in range(3)]
        with ThreadPoolExecutor(max_workers=3) as pool:
            with tables_locked(postgres.url, "ACCESS EXCLUSIVE", ("characters",)) as lock:
                futures = [pool.submit(read, request_id) for request_id in second_ids]
                wait_until(
                    lambda: app_backends_blocked_by(postgres.url, lock) == 3,
                    timeout=30,
                    what="three live workers (the replacement included) each holding a read",
                )
            assert [f.result() for f in futures] == [200, 200, 200]

        log = {line["request_id"]: line for line in request_log(server)}
        stderr = server.stderr()

    # the five answered reads of round 1 were served by surviving workers, the lost one never
    answered = [rid for rid in first_ids if rid not in lost]
    assert all(log[rid]["status"] == 200 and log[rid]["pid"] != victim for rid in answered)
    assert not set(lost) & log.keys()
    # round 2 used every live worker, the replacement among them
    assert {log[rid]["pid"] for rid in second_ids} == (workers - {victim}) | replacement
    assert f"Worker (pid:{victim}) was sent SIGKILL" in stderr


# --- c. a statement runs into the statement timeout -------------------------------------------


def test_statement_timeout_gives_a_fast_503_and_changes_nothing(postgres, tmp_path):
    """With ``DB_STATEMENT_TIMEOUT_MS=300``, the test holds ``LOCK TABLE characters IN ACCESS
    EXCLUSIVE MODE`` from its own connection, so any statement on characters waits.

    Proves: a list and a conditional edit each answer 503 (or 504) ``problem+json`` within
    about a second (the 300 ms timeout, not the 5 s default nor the worker timeout), never
    500; once the lock is gone the same requests succeed, and the edit that timed out changed
    nothing (its ``If-Match`` is still current).
    """
    env = server_env(postgres.url, tmp_path, DB_STATEMENT_TIMEOUT_MS="300")
    with Gunicorn(env, workers=2) as server:
        account = sign_up(server.url)
        created = create_character(server.url, account, name="Patient")
        url = f"{server.url}{API}/characters/{created.json()['id']}"
        etag = created.headers["ETag"]
        edit = {"json": {"name": "Impatient"}, "headers": {**account.auth, "If-Match": etag}}

        with tables_locked(postgres.url, "ACCESS EXCLUSIVE", ("characters",)):
            started = time.monotonic()
            listed = requests.get(
                f"{server.url}{API}/characters", headers=account.auth, timeout=CLIENT_TIMEOUT
            )
            list_seconds = time.monotonic() - started
            started = time.monotonic()
            edited = requests.patch(url, timeout=CLIENT_TIMEOUT, **edit)
            edit_seconds = time.monotonic() - started
            assert_problem(listed, 503, 504)
            assert_problem(edited, 503, 504)
            assert list_seconds < 1.5, list_seconds
            assert edit_seconds < 1.5, edit_seconds

        listed = requests.get(
            f"{server.url}{API}/characters", headers=account.auth, timeout=CLIENT_TIMEOUT
        )
        assert listed.status_code == 200
        assert [c["name"] for c in listed.json()] == ["Patient"]
        edited = requests.patch(url, timeout=CLIENT_TIMEOUT, **edit)
        assert edited.status_code == 200, edited.text
        assert edited.json()["name"] == "Impatient"


# --- d. a crash between a keyed creation and its Idempotency-Key record ---------------------


def test_keyed_generation_cut_by_a_crash_is_not_created_twice(postgres, tmp_path):
    """A generation with an ``Idempotency-Key`` is cut by a crash after its character was
    committed but before its answer: the client sees a 503 and does what the key is for, it
    retries with the same key and body.

    Proves (API.md "Idempotent creation": same key, same body, nothing new is created): the
    retries never create a second character; the retry that succeeds (at once, or once the
    first attempt counts as abandoned, simulated by ageing the key's record by
    ``ABANDONED_AFTER``) answers 201 with the character that exists.

    The crash lands in that window deterministically: ``characters`` is locked (SHARE) so the
    request stops at its INSERT; ``idempotency_keys`` is locked too unless the app holds it
    in the same transaction (then work and key are atomic and the crash simply cuts it);
    releasing ``characters`` lets the character commit, and the crash comes once the request
    is stuck again on the key's record (or answered).
    """
    from app.common.idempotency import ABANDONED_AFTER

    env = server_env(postgres.url, tmp_path)
    with Gunicorn(env, workers=2) as server:
        account = sign_up(server.url)
        body = {"template_id": create_template(server.url, account), "name": unique_label("kept")}
        headers = {**account.auth, "Idempotency-Key": unique_label("crash-key")}

        def generate() -> requests.Response:
            return requests.post(
                f"{server.url}{API}/characters/generate",
                json=body,
                headers=headers,
                timeout=CLIENT_TIMEOUT,
            )

        def stored() -> list[str]:
            return fetch_value(
                postgres.url,
                "SELECT coalesce(array_agg(id::text), '{}') FROM characters WHERE name = %s",
                (body["name"],),
            )

        keys_lock = TableLock(postgres.url)
        characters_lock = TableLock(postgres.url)
        try:
            characters_lock.acquire("SHARE", ("characters",))
            with ThreadPoolExecutor(max_workers=1) as pool:
                first = pool.submit(generate)
                wait_until(
                    lambda: app_backends_blocked_by(postgres.url, characters_lock) == 1,
                    timeout=30,
                    what="the generation stopped at its INSERT",
                )
                keys_lock.acquire("SHARE", ("idempotency_keys",), timeout_ms=500)
                characters_lock.release()
                wait_until(
                    lambda: first.done() or app_backends_blocked_by(postgres.url, keys_lock) == 1,
                    timeout=30,
                    what="the generation stuck again (or answered)",
                )
                postgres.stop("immediate")
                first_status = first.result().status_code
        finally:
            characters_lock.release()
            keys_lock.release()
        assert first_status in (201, 503)

        postgres.start()
        wait_until(
            lambda: requests.get(f"{server.url}/health/ready", timeout=CLIENT_TIMEOUT).ok,
            timeout=5,
            what="readiness after the restart",
        )
        retry = generate()
        assert retry.status_code in (201, 409), retry.text
        if retry.status_code == 409:  # "still in flight": the first attempt is not known dead
            assert_problem(retry, 409)
            fetch_value(
                postgres.url,
                "UPDATE idempotency_keys SET created_at = created_at - %s WHERE key = %s"
                " RETURNING 1",
                (ABANDONED_AFTER * 2, headers["Idempotency-Key"]),
            )
            retry = generate()
        ids = stored()

    assert retry.status_code == 201, retry.text
    assert ids == [retry.json()["id"]]
