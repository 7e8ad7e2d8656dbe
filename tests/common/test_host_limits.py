"""The rate-limit counters that the workers of one instance share (app.common.host_limits)."""

from __future__ import annotations

import multiprocessing
import time

import pytest
from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from app.common.host_limits import SCHEME, SHARED_FILE_VARIABLE, HostStorage, storage_uri


@pytest.fixture
def uri(tmp_path) -> str:
    return f"{SCHEME}://{tmp_path / 'counters.sqlite'}"


def test_the_limits_library_finds_it_by_its_scheme(uri):
    assert isinstance(storage_from_string(uri), HostStorage)


def test_memory_becomes_the_shared_file_only_when_gunicorn_named_one(monkeypatch):
    monkeypatch.delenv(SHARED_FILE_VARIABLE, raising=False)
    assert storage_uri("memory://") == "memory://"
    monkeypatch.setenv(SHARED_FILE_VARIABLE, "/run/cf/counters.sqlite")
    assert storage_uri("memory://") == f"{SCHEME}:///run/cf/counters.sqlite"
    assert storage_uri("redis://cache:6379") == "redis://cache:6379"  # never instead of Redis


def test_a_fixed_window_counts_expires_and_clears(uri):
    storage = HostStorage(uri)
    assert storage.check()
    assert [storage.incr("k", expiry=0.3) for _ in range(3)] == [1, 2, 3]
    assert storage.get("k") == 3
    assert time.time() < storage.get_expiry("k") <= time.time() + 0.3
    time.sleep(0.35)
    assert storage.get("k") == 0  # the window is over
    assert storage.incr("k", expiry=60) == 1  # a new one starts
    storage.incr("other", expiry=60, amount=5)
    storage.clear("k")
    assert (storage.get("k"), storage.get("other")) == (0, 5)
    assert storage.reset() == 1
    assert storage.get("other") == 0


def _hit(uri: str, hits: int, results: multiprocessing.Queue) -> None:
    limiter = FixedWindowRateLimiter(storage_from_string(uri))
    item = RateLimitItemPerMinute(10)
    results.put(sum(limiter.hit(item, "198.51.100.7") for _ in range(hits)))


def test_processes_share_one_count(uri):
    # what gunicorn's workers do: four processes, 8 attempts each, a limit of 10 in all
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_hit, args=(uri, 8, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    allowed = [results.get(timeout=5) for _ in workers]
    assert sum(allowed) == 10, allowed
