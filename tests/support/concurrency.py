"""Fire N identical requests at the same moment from N threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests


def simultaneously(
    count: int, call: Callable[[requests.Session], requests.Response]
) -> list[requests.Response]:
    barrier = threading.Barrier(count)
    sessions = [requests.Session() for _ in range(count)]

    def run(index: int) -> requests.Response:
        barrier.wait(timeout=30)
        return call(sessions[index])

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))
