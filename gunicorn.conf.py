"""gunicorn settings for Character Forge (``gunicorn -c gunicorn.conf.py wsgi:app``).

The configuration is validated here, in the master, so a bad setting stops start-up with one
line naming the variable instead of workers crashing in a loop.
"""

import os
import sys
import tempfile
from pathlib import Path

from app import load_development_dotenv
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


def on_starting(server):
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for samples in directory.glob("*.db"):
        samples.unlink(missing_ok=True)
    if _settings.RATELIMIT_STORAGE_URI.startswith("memory://") and workers > 1:
        server.log.warning(
            "RATELIMIT_STORAGE_URI is memory://: each of the %d workers counts the login and "
            "register limits on its own, so a client may get up to %d times each limit; set "
            "RATELIMIT_STORAGE_URI=redis://... to share one count",
            workers,
            workers,
        )


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
