"""gunicorn settings for Character Forge (``gunicorn -c gunicorn.conf.py wsgi:app``).

The configuration is validated here, in the master, so a bad setting stops start-up with one
line naming the variable instead of workers crashing in a loop.
"""

import os
import sys
import tempfile
from pathlib import Path

from app import load_development_dotenv
from app.common.host_limits import SHARED_FILE_VARIABLE
from app.config import ConfigError, load_settings

load_development_dotenv()
try:
    _settings = load_settings()
except ConfigError as error:
    print(f"configuration error: {error}", file=sys.stderr)
    sys.exit(1)

bind = _settings.BIND
# Sync workers, one per core by default: measured here, more sync workers than cores is slower
# when PostgreSQL shares the machine.
workers = _settings.WEB_CONCURRENCY
# gunicorn's sync worker, whose own error responses (414, 431, 400 before the app is reached)
# are problem documents like the app's (app/serving.py)
worker_class = "app.serving.ProblemSyncWorker"
timeout = _settings.GUNICORN_TIMEOUT
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then so slow leaks cannot grow without bound — rarely: a worker's
# boot costs ~0.4 s of CPU (measured), and a recycle shows as a p99 spike.
max_requests = 100_000
max_requests_jitter = 10_000
# The app writes one JSON line per request on stdout; gunicorn's own messages go to stderr.
accesslog = None
errorlog = "-"
loglevel = "info"
proc_name = "character-forge"
# gunicorn's control socket defaults to one path per user ($HOME/.gunicorn), which several
# instances on a host would share; nothing here uses gunicornc, so it is off.
control_socket_disable = True

# Prometheus multiprocess mode: every worker writes its samples under this directory and any
# worker's /metrics aggregates them. Its sample files (*.db) from an earlier run are removed at
# start-up; nothing else in it is touched, should it point at a directory shared by mistake.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="character-forge-metrics-")


# memory:// rate limits live in a process: with several workers they share a file instead, or
# each would count on its own (app/common/host_limits.py). A new file for every start.
if _settings.RATELIMIT_STORAGE_URI.startswith("memory://") and workers > 1:
    _limits_dir = tempfile.mkdtemp(prefix="character-forge-limits-")
    os.environ[SHARED_FILE_VARIABLE] = str(Path(_limits_dir) / "counters.sqlite")
else:
    os.environ.pop(SHARED_FILE_VARIABLE, None)


def on_starting(server):
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for samples in directory.glob("*.db"):
        samples.unlink(missing_ok=True)
    if os.environ.get(SHARED_FILE_VARIABLE):
        server.log.info(
            "RATELIMIT_STORAGE_URI is memory://: the %d workers count the rate limits together "
            "in %s (this instance only: several instances need redis://)",
            workers,
            os.environ[SHARED_FILE_VARIABLE],
        )


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
