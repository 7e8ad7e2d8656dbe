"""Load benchmark over HTTP: wrk against gunicorn on PostgreSQL (issue 8).

What it does, in order:

1. creates a fresh database on the PostgreSQL server of ``BENCH_DATABASE_URL`` (or
   ``--database-url``), migrates it with the app (Flask-Migrate ``upgrade``) and seeds the
   built-in templates (``app.cli.seed_builtin_templates``);
2. starts two gunicorn servers, both with the project's ``gunicorn.conf.py`` (sync workers, one
   per core, same timeouts and recycling, no access log): the app (``wsgi:app``, production
   config, a random strong ``SECRET_KEY``, ``LOG_LEVEL=WARNING``, login/register rate limits
   raised out of the way, its own Prometheus multiprocess directory) and the ceiling
   (``bench/ceiling_app.py``: one Flask route returning ``{"status": "ok"}``);
3. sets up the data over HTTP: a reader who owns ``LIST_OWNED`` characters, a generator, and a
   user who only logs in (three users, so no scenario changes what another one reads);
4. warms every scenario up, then runs ``--rounds`` rounds; a round runs every scenario once for
   ``--duration`` seconds with ``wrk -t<threads> -c<connections>``; the order rotates from one
   round to the next, so no scenario always runs first or right after the expensive one;
5. prints, per scenario: the median requests/s (and the range), the medians of the per-run p50
   and p99 latencies, the errors (wrk's socket errors and HTTP statuses >= 400, plus any non-2xx
   the app's own ``/metrics`` counted during the run), the CPU time per request of the gunicorn
   master and its workers (utime + stime from ``/proc``, reaped children included, so a worker
   recycled mid-run is still counted) and of the PostgreSQL backends serving the benchmark
   database, and the ratio to the ceiling: the scenario's median over the ceiling's median in the
   same rounds ("ratio", which the targets use) and, as a cross-check on this noisy machine, the
   median of the per-round ratios ("paired");
6. stops both servers and drops the database (``--keep-database`` keeps it).

``--baseline DIR`` measures a change against the code it replaces, on this noisy machine: a
third server runs the app from ``DIR`` (a checkout of an earlier commit, e.g. ``git worktree add
/tmp/base HEAD~1``) on the same database, every app scenario also runs against it in the same
rounds, and the table gets its rows (``[baseline]``) plus, per scenario, the median of the
per-round ratios of the two servers' requests/s. The baseline must run on the current schema.

Scenarios and targets (ratio to the ceiling): single authenticated read
``GET /api/v1/characters/{id}`` >= 0.30, list page of 20 ``GET /api/v1/characters`` >= 0.12,
``POST /api/v1/characters/generate`` >= 0.12, and zero errors everywhere. ``POST
/api/v1/auth/login`` is bound by Argon2id by design: its rate is reported, with no target.

Why ``-t1 -c4`` and 5 s x 5 rounds by default: gunicorn's sync workers serve one request at a
time and close the connection after every response (no keep-alive), so the server is saturated
once every worker has a request in hand and one waiting in the listen backlog: 2 connections per
worker on this 2-core machine. Measured here (ceiling / read, req/s): -c1 4665 / 427, -c2 6201 /
701, -c4 6758 / 704, -c8 6571 / 788, -c16 6570 / 767, while p50 doubles with every doubling past
4; so 4 sits at the knee: full throughput with the least queueing in the latencies. One wrk
thread is far from being the bottleneck and a second would only take CPU from the server on the
same two cores. 5 s runs are long enough for a few hundred requests even of the slowest
scenario (login: ~50) and short enough that a round of all five fits in ~30 s, so a round sees
one state of this noisy machine; 5 rounds with a rotating order, and medians, absorb the minutes
when it is 2x slower (the per-round "paired" ratio shows how much that mattered).

Usage (from the repository root)::

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/bench_http.py [--rounds 5] [--duration 5] [--connections 4]

Exit status: 0 when every target passes with zero errors, 1 when any request failed (or the
set-up did), 2 when there were no errors but a target was missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

_REPO_ROOT = Path(__file__).resolve().parents[1]
LIST_OWNED = 45  # the reader owns this many characters (>= 40: at least two full pages of 20)
TEMPLATE_NAME = "Classic Fantasy Hero"  # built-in, 30 fields: the heaviest seeded template
READY_TIMEOUT = 90.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGETS = {"read": 0.30, "list": 0.12, "generate": 0.12}
SCENARIO_KEYS = ("read", "list", "generate", "login")
APP_SERVERS = ("app", "baseline")
BASELINE = "@baseline"  # the key suffix of a scenario's run against the --baseline server

# Runs in a child process: migrate the fresh database and seed the built-in templates.
MIGRATE_AND_SEED = """
from flask_migrate import upgrade
from app import create_app
from app.cli import seed_builtin_templates
from app.extensions import db

app = create_app()
with app.app_context():
    upgrade()
    print("built-in templates:", seed_builtin_templates())
    db.engine.dispose()
"""

# A wrk script: the request is built once (no per-request Lua); done() prints exact figures.
LUA_TEMPLATE = """\
wrk.method = [==[{method}]==]
{body}
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {{"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,"connect":%.0f,"read":%.0f,' ..
    '"write":%.0f,"status":%.0f,"timeout":%.0f,"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,' ..
    '"max_us":%.0f,"mean_us":%.1f}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


class BenchError(Exception):
    """The benchmark could not be set up or run (not a measurement result)."""


# --- measurements ----------------------------------------------------------------------------


@dataclass
class Scenario:
    key: str
    label: str
    server: str  # "app" or "ceiling"
    path: str
    method: str = "GET"
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    endpoint: str | None = None  # the route rule the app's /metrics counts it under
    target: float | None = None
    lua: Path | None = None


@dataclass
class Run:
    scenario: str
    round: int
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    status_errors: int  # wrk: responses with a status >= 400
    server_non_2xx: int  # the app's /metrics: responses outside 2xx during the run
    server_requests: int  # the app's /metrics: responses to the scenario's endpoint
    gunicorn_cpu_s: float
    db_cpu_s: float | None
    host_busy_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + max(self.status_errors, self.server_non_2xx)


def _proc_stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, own utime+stime, reaped children's cutime+cstime) in clock ticks."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields_ = raw.rsplit(")", 1)[1].split()
    # fields_[0] is the state (field 3 of proc(5)); ppid is field 4, utime..cstime 14..17.
    return int(fields_[1]), int(fields_[11]) + int(fields_[12]), int(fields_[13]) + int(fields_[14])


def gunicorn_ticks(master: int) -> int:
    """CPU ticks of a gunicorn master and its live workers, plus every worker it has reaped."""
    total = 0
    own = _proc_stat(master)
    if own is not None:
        total += own[1] + own[2]
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None and stat[0] == master:
                total += stat[1] + stat[2]
    return total


def host_busy_ticks() -> int:
    """Busy ticks of the whole machine, every core: user, nice, system, irq and softirq."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return values[0] + values[1] + values[2] + values[5] + values[6]


class DatabaseCpu:
    """CPU of the PostgreSQL backends connected to the benchmark database (when local)."""

    def __init__(self, admin_dsn: str, database: str) -> None:
        import psycopg2

        self.connection = psycopg2.connect(admin_dsn)
        self.connection.autocommit = True
        self.database = database

    def sample(self) -> dict[int, int] | None:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.database,))
            pids = [row[0] for row in cursor.fetchall()]
        ticks = {}
        for pid in pids:
            stat = _proc_stat(pid)
            if stat is None:  # not on this machine (or not readable): no figure
                return None
            ticks[pid] = stat[1]
        return ticks

    @staticmethod
    def spent(before: dict[int, int] | None, after: dict[int, int] | None) -> float | None:
        if before is None or after is None:
            return None
        return sum(ticks - before.get(pid, 0) for pid, ticks in after.items()) / CLK_TCK

    def close(self) -> None:
        self.connection.close()


# --- HTTP helpers ----------------------------------------------------------------------------


def http(
    method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 30.0
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def expect(status: int, payload: Any, wanted: int, what: str) -> Any:
    if status != wanted:
        raise BenchError(f"{what}: expected {wanted}, got {status}: {payload}")
    return payload


_METRIC_LINE = re.compile(r"^http_requests_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape_requests(base: str) -> dict[tuple[str, str, str], float]:
    """``http_requests_total`` by (method, endpoint, status), from the app's ``/metrics``."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as response:
        text = response.read().decode()
    counts: dict[tuple[str, str, str], float] = {}
    for line in text.splitlines():
        match = _METRIC_LINE.match(line)
        if match:
            labels = dict(_LABEL.findall(match["labels"]))
            key = (labels.get("method", ""), labels.get("endpoint", ""), labels.get("status", ""))
            counts[key] = counts.get(key, 0.0) + float(match["value"])
    return counts


# --- servers and database --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def to_dsn(url: str, database: str | None = None) -> str:
    """A libpq URL (no SQLAlchemy driver suffix), optionally for another database."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise BenchError("BENCH_DATABASE_URL must be a postgresql:// URL")
    parsed = parsed.set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@contextmanager
def fresh_database(url: str, keep: bool) -> Iterator[tuple[str, str]]:
    import psycopg2

    name = f"cf_bench_{secrets.token_hex(4)}"
    admin = to_dsn(url)
    connection = psycopg2.connect(admin)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        try:
            yield to_dsn(url, name), name
        finally:
            if keep:
                print(f"kept database {name}: {to_dsn(url, name)}")
            else:
                with connection.cursor() as cursor:
                    cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        connection.close()


class Server:
    """One gunicorn master started with the project's gunicorn.conf.py, stopped by its pid."""

    def __init__(
        self,
        name: str,
        app_spec: str,
        env: dict[str, str],
        workdir: Path,
        extra_args: list[str] | None = None,
        root: Path = _REPO_ROOT,
    ) -> None:
        self.name = name
        self.root = root
        self.extra_args = list(extra_args or [])
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        metrics_dir = workdir / f"{name}-metrics"
        self.log_path = workdir / f"{name}-gunicorn.log"
        self.env = {
            **env,
            "BIND": f"127.0.0.1:{self.port}",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            # the code of `root`, even where an editable install points elsewhere
            "PYTHONPATH": str(root),
        }
        self.app_spec = app_spec
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    "gunicorn.conf.py",
                    # gunicorn 27's control socket is one fixed path per user: two servers
                    # (or someone else's) would fight over it. It plays no part in serving.
                    "--no-control-socket",
                    *self.extra_args,
                    self.app_spec,
                ],
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def workers(self) -> list[int]:
        pids = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                stat = _proc_stat(int(entry.name))
                if stat is not None and stat[0] == self.pid:
                    pids.append(int(entry.name))
        return pids

    def wait_ready(self, path: str, workers: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise BenchError(f"{self.name} server exited at start-up:\n{self.log_tail()}")
            with suppress(OSError):
                status, _ = http("GET", self.base + path, timeout=5)
                if status == 200 and len(self.workers()) >= workers:
                    return
            time.sleep(0.2)
        raise BenchError(f"{self.name} server not ready after {READY_TIMEOUT:.0f}s")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            for pid in self.workers():
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait(timeout=10)


def server_env(database_url: str, workers: int | None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASK_", "GUNICORN_", "PROMETHEUS_"))
        and key not in {"WEB_CONCURRENCY", "BIND"}
    }
    env.update(
        APP_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(48),
        DATABASE_URL=database_url,
        LOG_LEVEL="WARNING",
        LOG_FORMAT="json",
        RATELIMIT_LOGIN="1000000 per minute",
        RATELIMIT_REGISTER="1000000 per minute",
        RATELIMIT_STORAGE_URI="memory://",
        ACCESS_TOKEN_TTL=str(24 * 3600),  # outlives any run of this script
        METRICS_ENABLED="true",
        PYTHONUNBUFFERED="1",
    )
    if workers is not None:
        env["WEB_CONCURRENCY"] = str(workers)
    return env


def migrate_and_seed(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", MIGRATE_AND_SEED],
        cwd=_REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"migrate/seed failed:\n{result.stdout}\n{result.stderr}")
    print(result.stdout.strip())


# --- set-up of the data ----------------------------------------------------------------------


# call(method, path, json_body, token) -> (status, payload): over HTTP here, or through Flask's
# test client (bench/profile_requests.py).
Caller = Callable[[str, str, Any, str | None], tuple[int, Any]]


def http_caller(base: str) -> Caller:
    def call(method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        return http(method, base + path, body, token)

    return call


def create_user(call: Caller, role: str) -> tuple[str, dict[str, str]]:
    """Register and log in a user; returns the access token and the credentials."""
    suffix = secrets.token_hex(4)
    credentials = {"email": f"{role}-{suffix}@bench.example", "password": secrets.token_hex(16)}
    registration = {**credentials, "username": f"{role}_{suffix}"}
    expect(*call("POST", "/api/v1/auth/register", registration, None), 201, f"register {role}")
    tokens = expect(*call("POST", "/api/v1/auth/login", credentials, None), 200, "login")
    return tokens["access_token"], credentials


def set_up_data(call: Caller) -> dict[str, Any]:
    """Three users (reader, generator, login), the reader owning LIST_OWNED characters."""
    reader, _ = create_user(call, "reader")
    generator, _ = create_user(call, "generator")
    _, login_credentials = create_user(call, "login")
    templates = expect(
        *call("GET", "/api/v1/templates?page_size=100", None, reader), 200, "templates"
    )
    template_id = next((t["id"] for t in templates if t["name"] == TEMPLATE_NAME), None)
    if template_id is None:
        raise BenchError(f"built-in template {TEMPLATE_NAME!r} not found (was the seed run?)")
    character_ids = []
    for _ in range(LIST_OWNED):
        created = expect(
            *call("POST", "/api/v1/characters/generate", {"template_id": template_id}, reader),
            201,
            "generate a character",
        )
        character_ids.append(created["id"])
    return {
        "reader": reader,
        "generator": generator,
        "login": login_credentials,
        "template_id": template_id,
        "character_id": character_ids[LIST_OWNED // 2],
    }


def scenarios(data: dict[str, Any]) -> list[Scenario]:
    reader = {"Authorization": f"Bearer {data['reader']}"}
    json_type = {"Content-Type": "application/json"}
    return [
        Scenario("ceiling", "ceiling: tiny Flask app", "ceiling", "/"),
        Scenario(
            "read",
            "GET /characters/{id}",
            "app",
            f"/api/v1/characters/{data['character_id']}",
            headers=reader,
            endpoint="/api/v1/characters/<uuid:character_id>",
            target=TARGETS["read"],
        ),
        Scenario(
            "list",
            "GET /characters (20 of 45)",
            "app",
            "/api/v1/characters",
            headers=reader,
            endpoint="/api/v1/characters",
            target=TARGETS["list"],
        ),
        Scenario(
            "generate",
            "POST /characters/generate",
            "app",
            "/api/v1/characters/generate",
            method="POST",
            body=json.dumps({"template_id": data["template_id"]}),
            headers={**json_type, "Authorization": f"Bearer {data['generator']}"},
            endpoint="/api/v1/characters/generate",
            target=TARGETS["generate"],
        ),
        Scenario(
            "login",
            "POST /auth/login (Argon2id)",
            "app",
            "/api/v1/auth/login",
            method="POST",
            body=json.dumps(data["login"]),
            headers=json_type,
            endpoint="/api/v1/auth/login",
        ),
    ]


def against_baseline(scenario: Scenario) -> Scenario:
    """``scenario`` run against the ``--baseline`` server (no target: it is the comparison)."""
    return replace(
        scenario,
        key=scenario.key + BASELINE,
        label=f"{scenario.label} [baseline]",
        server="baseline",
        target=None,
    )


def write_lua(scenario: Scenario, directory: Path) -> Path:
    body = f"wrk.body = [==[{scenario.body}]==]" if scenario.body is not None else ""
    headers = "\n".join(
        f'wrk.headers["{name}"] = [==[{value}]==]' for name, value in scenario.headers.items()
    )
    path = directory / f"{scenario.key}.lua"
    path.write_text(LUA_TEMPLATE.format(method=scenario.method, body=body, headers=headers))
    return path


# --- running ---------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    servers: dict[str, Server]
    db_cpu: DatabaseCpu | None
    workdir: Path

    def run(self, scenario: Scenario, round_: int, duration: int) -> Run:
        server = self.servers[scenario.server]
        assert scenario.lua is not None
        command = [
            "wrk",
            f"-t{self.args.threads}",
            f"-c{self.args.connections}",
            f"-d{duration}s",  # wrk takes whole seconds
            f"--timeout={self.args.timeout:g}s",
            "--latency",
            "-s",
            str(scenario.lua),
            server.base + scenario.path,
        ]
        is_app = scenario.server in APP_SERVERS
        metrics_before = scrape_requests(server.base) if is_app else {}
        db_before = self.db_cpu.sample() if self.db_cpu and is_app else None
        host_before = host_busy_ticks()
        cpu_before = gunicorn_ticks(server.pid)
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=duration + 60, check=False
        )
        cpu_after = gunicorn_ticks(server.pid)
        host_after = host_busy_ticks()
        db_after = self.db_cpu.sample() if self.db_cpu and is_app else None
        metrics_after = scrape_requests(server.base) if is_app else {}
        with open(self.workdir / "wrk.log", "a") as log:
            log.write(f"### round {round_} {scenario.key}: {' '.join(command)}\n")
            log.write(result.stdout + result.stderr + "\n")
        line = next((x for x in result.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
        if result.returncode != 0 or line is None:
            raise BenchError(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        figures = json.loads(line.removeprefix("WRK_JSON "))
        non_2xx = served = 0
        for key, count in metrics_after.items():
            delta = round(count - metrics_before.get(key, 0.0))
            method, endpoint, status = key
            if endpoint == "/metrics" or delta == 0:
                continue
            if not status.startswith("2"):
                non_2xx += delta
            if endpoint == scenario.endpoint and method == scenario.method:
                served += delta
        return Run(
            scenario=scenario.key,
            round=round_,
            requests=int(figures["requests"]),
            seconds=figures["duration_us"] / 1e6,
            p50_ms=figures["p50_us"] / 1e3,
            p90_ms=figures["p90_us"] / 1e3,
            p99_ms=figures["p99_us"] / 1e3,
            max_ms=figures["max_us"] / 1e3,
            socket_errors=int(
                figures["connect"] + figures["read"] + figures["write"] + figures["timeout"]
            ),
            status_errors=int(figures["status"]),
            server_non_2xx=non_2xx,
            server_requests=served if is_app else int(figures["requests"]),
            gunicorn_cpu_s=(cpu_after - cpu_before) / CLK_TCK,
            db_cpu_s=DatabaseCpu.spent(db_before, db_after),
            host_busy_s=(host_after - host_before) / CLK_TCK,
        )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarise(runs: list[Run], order: list[Scenario]) -> dict[str, dict[str, Any]]:
    by_key: dict[str, list[Run]] = {s.key: [r for r in runs if r.scenario == s.key] for s in order}
    ceiling_by_round = {r.round: r.rps for r in by_key["ceiling"]}
    ceiling_median = median(list(ceiling_by_round.values()))
    summary = {}
    for scenario in order:
        mine = by_key[scenario.key]
        rps = [r.rps for r in mine]
        db = [r.db_cpu_s / r.requests for r in mine if r.db_cpu_s is not None and r.requests]
        paired = [r.rps / ceiling_by_round[r.round] for r in mine if ceiling_by_round.get(r.round)]
        summary[scenario.key] = {
            "label": scenario.label,
            "runs": len(mine),
            "requests": sum(r.requests for r in mine),
            "rps_median": median(rps),
            "rps_min": min(rps),
            "rps_max": max(rps),
            "p50_ms": median([r.p50_ms for r in mine]),
            "p99_ms": median([r.p99_ms for r in mine]),
            "p99_ms_worst": max(r.p99_ms for r in mine),
            "errors": sum(r.errors for r in mine),
            "socket_errors": sum(r.socket_errors for r in mine),
            "status_errors": sum(max(r.status_errors, r.server_non_2xx) for r in mine),
            "cpu_ms_per_request": median(
                [1e3 * r.gunicorn_cpu_s / r.requests for r in mine if r.requests]
            ),
            "db_ms_per_request": 1e3 * median(db) if db else None,
            "host_ms_per_request": median(
                [1e3 * r.host_busy_s / r.requests for r in mine if r.requests]
            ),
            "ratio": median(rps) / ceiling_median if ceiling_median else float("nan"),
            "paired_ratio": median(paired),
            "target": scenario.target,
        }
    return summary


def versus_baseline(runs: list[Run]) -> dict[str, float]:
    """Per scenario run against a baseline too: the median over the rounds of its req/s over the
    baseline's req/s in the same round (above 1: the measured code is faster)."""
    baseline = {(r.scenario, r.round): r.rps for r in runs if r.scenario.endswith(BASELINE)}
    ratios: dict[str, list[float]] = {}
    for run in runs:
        other = baseline.get((run.scenario + BASELINE, run.round))
        if other:
            ratios.setdefault(run.scenario, []).append(run.rps / other)
    return {key: median(values) for key, values in ratios.items()}


def verdicts(summary: dict[str, dict[str, Any]]) -> dict[str, str]:
    out = {}
    for key, row in summary.items():
        if row["errors"]:
            out[key] = "FAIL"
        elif row["target"] is None:
            out[key] = "-"
        else:
            out[key] = "PASS" if row["ratio"] >= row["target"] else "FAIL"
    return out


def print_table(summary: dict[str, dict[str, Any]], verdict: dict[str, str]) -> None:
    width = max(27, *(len(row["label"]) for row in summary.values()))
    header = (
        f"{'scenario':{width}} {'req/s':>6} {'min..max':>11} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'errors':>6} {'cpu/req':>7} {'db/req':>6} {'host/req':>8} {'ratio':>6} {'paired':>6} "
        f"{'target':>6} {'verdict':>7}"
    )
    print(header)
    print("-" * len(header))
    for key, row in summary.items():
        db = "-" if row["db_ms_per_request"] is None else f"{row['db_ms_per_request']:.2f}"
        target = "-" if row["target"] is None else f"{row['target']:.2f}"
        spread = f"{row['rps_min']:.0f}..{row['rps_max']:.0f}"
        print(
            f"{row['label']:{width}} {row['rps_median']:6.0f} {spread:>11} {row['p50_ms']:7.2f} "
            f"{row['p99_ms']:7.2f} {row['errors']:6d} {row['cpu_ms_per_request']:7.2f} "
            f"{db:>6} {row['host_ms_per_request']:8.2f} {row['ratio']:6.3f} "
            f"{row['paired_ratio']:6.3f} {target:>6} {verdict[key]:>7}"
        )
    print(
        "\nreq/s, p50, p99: medians over the rounds (min..max: the range of req/s); errors: wrk "
        "socket errors + non-2xx responses, summed;\ncpu/req: gunicorn master + workers, "
        "db/req: PostgreSQL backends of the benchmark database, host/req: the whole machine\n"
        "(wrk, kernel and any other load included), all in CPU ms per request, medians; "
        "ratio: median req/s / the ceiling's median req/s\nover the same rounds (the targets use "
        "it); paired: median of the per-round ratios"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every scenario (5)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per run (5)")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections (4)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds per warm-up run (2)")
    parser.add_argument("--timeout", type=float, default=5.0, help="wrk request timeout, s (5)")
    parser.add_argument(
        "--workers", type=int, default=None, help="gunicorn workers (default: gunicorn.conf.py's)"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIO_KEYS),
        help=f"comma-separated subset of {','.join(SCENARIO_KEYS)} (the ceiling always runs)",
    )
    parser.add_argument(
        "--app",
        default="wsgi:app",
        help="WSGI app to measure (default wsgi:app); a variant, to measure a proposed change",
    )
    parser.add_argument(
        "--gunicorn-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra gunicorn argument for both servers, e.g. --gunicorn-arg=--max-requests=0",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also serve the app from DIR (an earlier checkout) and compare, round by round",
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--json", type=Path, help="also write every run and the summary here")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("set BENCH_DATABASE_URL (or --database-url) to a PostgreSQL server URL")
    if args.rounds < 1 or args.duration < 1 or args.connections < 1 or args.threads < 1:
        parser.error("--rounds, --duration, --connections and --threads must be positive")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    if args.baseline is not None:
        args.baseline = args.baseline.resolve()
        if not (args.baseline / "gunicorn.conf.py").is_file():
            parser.error(f"--baseline: no gunicorn.conf.py in {args.baseline}")
    chosen = {key.strip() for key in args.scenarios.split(",") if key.strip()}
    if not chosen <= set(SCENARIO_KEYS):
        parser.error(f"--scenarios: unknown {', '.join(sorted(chosen - set(SCENARIO_KEYS)))}")
    args.scenarios = ["ceiling", *(key for key in SCENARIO_KEYS if key in chosen)]
    return args


def describe_versions(database_url: str) -> str:
    import psycopg2

    with psycopg2.connect(to_dsn(database_url)) as connection, connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
    connection.close()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    from importlib.metadata import version

    return (
        f"python {platform.python_version()}, gunicorn {version('gunicorn')}, "
        f"flask {version('flask')}, PostgreSQL {pg_version}, "
        f"{(wrk_version.stdout or wrk_version.stderr).split(' [')[0].strip()}"
    )


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (a trap, a timeout) unwinds like Ctrl-C: servers stopped, database dropped.
    signal.signal(signal.SIGTERM, _interrupt)
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="character-forge-bench-"))
    servers: dict[str, Server] = {}
    db_cpu: DatabaseCpu | None = None
    try:
        with fresh_database(args.database_url, args.keep_database) as (url, name):
            env = server_env(url, args.workers)
            print(f"database {name}: migrating and seeding")
            migrate_and_seed(env)
            servers["app"] = Server("app", args.app, env, workdir, args.gunicorn_arg)
            servers["ceiling"] = Server(
                "ceiling", "bench.ceiling_app:app", env, workdir, args.gunicorn_arg
            )
            if args.baseline is not None:
                servers["baseline"] = Server(
                    "baseline", args.app, env, workdir, args.gunicorn_arg, root=args.baseline
                )
            for server in servers.values():  # every server first, then measure
                server.start()
            workers = args.workers or os.cpu_count() or 1
            servers["app"].wait_ready("/health/ready", workers)
            servers["ceiling"].wait_ready("/", workers)
            if "baseline" in servers:
                servers["baseline"].wait_ready("/health/ready", workers)
            data = set_up_data(http_caller(servers["app"].base))
            order = [s for s in scenarios(data) if s.key in args.scenarios]
            if "baseline" in servers:
                order += [against_baseline(s) for s in order if s.server == "app"]
            for scenario in order:
                scenario.lua = write_lua(scenario, workdir)
            try:
                db_cpu = DatabaseCpu(to_dsn(args.database_url), name)
            except Exception as error:  # the database CPU figure is optional
                print(f"(no database CPU figures: {error})")
            bench = Bench(args, servers, db_cpu, workdir)
            print(describe_versions(args.database_url))
            print(
                f"{os.cpu_count()} cores, {workers} sync workers per server; wrk -t{args.threads} "
                f"-c{args.connections}, {args.rounds} rounds x {len(order)} scenarios x "
                f"{args.duration:g}s (+ {args.warmup:g}s warm-up each); "
                f"load average {os.getloadavg()[0]:.2f}"
            )
            if args.warmup > 0:
                for scenario in order:
                    warm = bench.run(scenario, -1, args.warmup)
                    if warm.errors:
                        print(f"warm-up {scenario.key}: {warm.errors} errors")
            runs: list[Run] = []
            for round_ in range(args.rounds):
                shift = round_ % len(order)
                for scenario in order[shift:] + order[:shift]:
                    run = bench.run(scenario, round_, args.duration)
                    runs.append(run)
                    print(
                        f"  round {round_ + 1}/{args.rounds} {scenario.key:9} "
                        f"{run.rps:8.0f} req/s  p50 {run.p50_ms:7.2f} ms  p99 {run.p99_ms:7.2f} ms"
                        f"  cpu {1e3 * run.gunicorn_cpu_s / max(run.requests, 1):6.2f} ms/req"
                        f"  errors {run.errors}",
                        flush=True,
                    )
                    if scenario.server in APP_SERVERS and run.server_requests < run.requests:
                        raise BenchError(
                            f"{scenario.key}: the app counted {run.server_requests} requests "
                            f"on {scenario.endpoint}, wrk {run.requests}: wrong route?"
                        )
            if db_cpu is not None:
                db_cpu.close()
                db_cpu = None
            for server in servers.values():
                server.stop()
    except KeyboardInterrupt:
        print("benchmark interrupted", file=sys.stderr)
        for server in servers.values():
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        return 130
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        for server in servers.values():
            tail = server.log_tail()
            if tail:
                print(f"--- {server.name} server log (tail) ---\n{tail}", file=sys.stderr)
        return 1
    finally:
        if db_cpu is not None:
            db_cpu.close()
        for server in servers.values():
            server.stop()

    summary = summarise(runs, order)
    verdict = verdicts(summary)
    print()
    print_table(summary, verdict)
    errors = sum(row["errors"] for row in summary.values())
    failed = [k for k, v in verdict.items() if v == "FAIL" and summary[k]["errors"] == 0]
    goals = ", ".join(f"{k} >= {summary[k]['target']:.2f}" for k in TARGETS if k in summary)
    compared = versus_baseline(runs)
    if compared:
        print(
            "\nagainst the baseline (median of the per-round req/s ratios; > 1: faster): "
            + ", ".join(f"{key} {ratio:.3f}" for key, ratio in compared.items())
        )
    print(
        f"\ntargets (ratio to the ceiling): {goals}; zero errors: "
        + ("PASS" if errors == 0 else f"FAIL ({errors} errors; logs in {workdir})")
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items() if k != "database_url"},
                    "runs": [vars(r) | {"rps": r.rps, "errors": r.errors} for r in runs],
                    "summary": summary,
                    "verdict": verdict,
                    "versus_baseline": compared,
                },
                indent=2,
            )
        )
    if errors:
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    if failed:
        print(f"FAIL: targets missed: {', '.join(failed)}")
        return 2
    print("PASS: every target met, no errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
