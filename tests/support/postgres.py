"""A throw-away PostgreSQL cluster that a test may stop, crash and start again.

The suite's shared server (``TEST_DATABASE_URL``) must never be stopped, so the fault-injection
tests build their own: ``initdb`` in a temporary folder, ``pg_ctl start`` on a free loopback
port, the app's migrations applied, and everything removed afterwards whatever happens.

It needs the server binaries in ``TEST_PG_BIN`` (``/usr/lib/postgresql/15/bin``) and, when the
tests run as root, an unprivileged account in ``TEST_PG_USER`` to run the server as (PostgreSQL
refuses to run as root); ``scripts/test.sh`` exports both. :func:`skip_unless_available` turns
their absence into a clean skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.support.servers import free_port

PG_BIN_VARIABLE = "TEST_PG_BIN"
PG_USER_VARIABLE = "TEST_PG_USER"


def unavailable_reason() -> str | None:
    """Why a :class:`TemporaryPostgres` cannot be built here, or ``None`` when it can."""
    bin_dir = os.environ.get(PG_BIN_VARIABLE)
    if not bin_dir:
        return f"needs the PostgreSQL binaries ({PG_BIN_VARIABLE}, set by scripts/test.sh)"
    for program in ("initdb", "pg_ctl"):
        if not os.access(Path(bin_dir) / program, os.X_OK):
            return f"{PG_BIN_VARIABLE}={bin_dir} has no executable {program}"
    if os.geteuid() == 0 and not os.environ.get(PG_USER_VARIABLE):
        return f"running as root needs an unprivileged {PG_USER_VARIABLE} to run PostgreSQL"
    return None


def skip_unless_available() -> None:
    import pytest

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)


def migrate_database(database_url: str, instance_dir: Path) -> None:
    """Apply the app's migrations (Flask-Migrate, as ``flask db upgrade`` does), then close
    every connection they opened so the database can be stopped or dropped."""
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    from tests.conftest import base_config

    application = create_app(base_config(database_url, instance_dir))
    with application.app_context():
        try:
            upgrade()
        finally:
            db.engine.dispose()


class TemporaryPostgres:
    """A fresh PostgreSQL cluster on ``127.0.0.1:<free port>``, migrated, for one test.

    ``with TemporaryPostgres() as pg:`` initialises and starts it; ``pg.url`` is
    ``postgresql://postgres@127.0.0.1:PORT/postgres``. ``pg.stop("fast" | "immediate")`` stops
    it (``immediate`` is a crash: no checkpoint, every backend killed at once) and
    ``pg.start()`` brings it back on the same port with the same data. Leaving the block stops
    the server and deletes its folder, whether the test passed, failed or never got going.
    """

    def __init__(self, *, migrate: bool = True, max_connections: int = 100) -> None:
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        self.bin_dir = Path(os.environ[PG_BIN_VARIABLE])
        self.run_as = os.environ.get(PG_USER_VARIABLE) if os.geteuid() == 0 else None
        self.migrate_on_enter = migrate
        self.max_connections = max_connections
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.workdir: Path | None = None

    # --- paths -----------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        assert self.workdir is not None, "use TemporaryPostgres as a context manager"
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "server.log"

    def server_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # --- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> TemporaryPostgres:
        self.workdir = Path(tempfile.mkdtemp(prefix="cf-postgres-"))
        try:
            self.workdir.chmod(0o755)
            if self.run_as:
                shutil.chown(self.workdir, user=self.run_as)
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-locale",
                "--lc-ctype=C.UTF-8",  # lower() folds every letter (docs/operations.md)
                "--encoding=UTF8",
                "--no-sync",
            )
            self.start()
            if self.migrate_on_enter:
                self.migrate()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cleanup()

    def start(self) -> None:
        """Start the server (again) on the same port and data folder; wait until it accepts."""
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.workdir}",  # the Unix socket stays out of /var/run/postgresql
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",  # a crash of the *server* loses nothing; only an OS crash would
                "-c full_page_writes=off",
                f"-c max_connections={self.max_connections}",
            ]
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            "60",
            "start",
            "-o",
            options,
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clean shutdown) or ``immediate`` (like a crash)."""
        if mode not in {"smart", "fast", "immediate"}:
            raise ValueError(f"unknown shutdown mode {mode!r}")
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop")

    def is_running(self) -> bool:
        return self.workdir is not None and (self.data_dir / "postmaster.pid").exists()

    def migrate(self) -> None:
        """Apply the app's migrations to the ``postgres`` database of this cluster."""
        assert self.workdir is not None
        migrate_database(self.url, self.workdir / "instance")

    def cleanup(self) -> None:
        """Stop the server however it can be stopped, then delete its folder."""
        if self.workdir is None:
            return
        if self.is_running():
            try:
                self.stop("immediate")
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                self._kill_postmaster()
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir = None

    # --- helpers ---------------------------------------------------------------------------

    def _kill_postmaster(self) -> None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)  # its backends exit as soon as they notice
            time.sleep(0.2)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
        if result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode,
                command,
                output=result.stdout,
                stderr=f"{result.stderr}\n--- server log ---\n{self.server_log()[-4000:]}",
            )
