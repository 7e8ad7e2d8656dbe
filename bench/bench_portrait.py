"""Benchmark ``process_portrait`` on 12-megapixel uploads.

Builds a 4000x3000 image with realistic detail (gradients, a fractal and Gaussian noise) in
memory, encodes it as JPEG (quality 90), PNG and WebP, and for each:

* times ``process_portrait`` over several runs in this process (median and min), and
* measures peak memory in a fresh worker process: ``ru_maxrss`` after a warm-up on a tiny image
  (libraries loaded, input bytes received) vs. after processing the big image.

Linux carries ``ru_maxrss`` over ``fork`` and ``exec``, so a worker started directly from this
(by then large) process would report this process's peak. Workers are therefore forked from a
``forkserver`` that is started before any test image is built.

Usage (from the repository root)::

    .venv/bin/python bench/bench_portrait.py [--runs 7] [--worst-case]

``--worst-case`` adds rows for images just under the 40-megapixel limit.
Target: < 1 s per 12 MP JPEG with bounded memory.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import multiprocessing.forkserver
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType

from PIL import Image

_REPO_ROOT = Path(__file__).resolve().parents[1]
_MIB = 1024 * 1024


def _processing() -> ModuleType:
    """Import the module under test whether run as a script or with ``python -m``."""
    if str(_REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(_REPO_ROOT))
    from app.portraits import processing

    return processing


def _maxrss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mib() -> float:
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        return float("nan")
    return pages * resource.getpagesize() / _MIB


def make_detailed_image(width: int, height: int) -> Image.Image:
    """A photo-like test card: smooth gradients, fractal edges and sensor-like noise."""
    horizontal = Image.linear_gradient("L").rotate(90).resize((width, height))
    vertical = Image.linear_gradient("L").resize((width, height))
    noise = Image.effect_noise((width, height), 48)
    base = Image.merge("RGB", (horizontal, vertical, noise))
    fractal = Image.effect_mandelbrot((width, height), (-2.2, -1.4, 0.9, 1.4), 96).convert("RGB")
    return Image.blend(base, fractal, 0.35)


def encode(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    if image_format == "JPEG":
        image.save(buffer, "JPEG", quality=90)
    elif image_format == "PNG":
        image.save(buffer, "PNG")
    else:
        image.save(buffer, "WEBP", quality=90, method=0)
    return buffer.getvalue()


def _memory_worker(data: bytes, warmup: bytes, conn: Connection) -> None:
    """Runs in a fresh spawned process; sends back (maxrss before, maxrss after, rss before)."""
    processing = _processing()
    processing.process_portrait(warmup)
    before = _maxrss_mib()
    rss_before = _current_rss_mib()
    processing.process_portrait(data)
    after = _maxrss_mib()
    conn.send((before, after, rss_before))
    conn.close()


def _memory_context() -> multiprocessing.context.BaseContext:
    return multiprocessing.get_context("forkserver")


def start_memory_workers() -> None:
    """Start the fork server while this process is still small (see module docstring)."""
    _memory_context()
    multiprocessing.forkserver.ensure_running()


def measure_memory(data: bytes, warmup: bytes) -> tuple[float, float, float]:
    context = _memory_context()
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(target=_memory_worker, args=(data, warmup, sender))
    worker.start()
    sender.close()
    try:
        result: tuple[float, float, float] = receiver.recv()
    finally:
        worker.join()
    if worker.exitcode != 0:
        raise RuntimeError(f"memory worker exited with {worker.exitcode}")
    return result


@dataclass
class Row:
    label: str
    input_mib: float
    median_ms: float
    min_ms: float
    rss_before_mib: float
    maxrss_before_mib: float
    maxrss_after_mib: float
    full: str
    full_kib: float
    thumb_kib: float


def bench_one(label: str, data: bytes, warmup: bytes, runs: int) -> Row:
    processing = _processing()
    processing.process_portrait(data)  # warm caches and code paths
    timings = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = processing.process_portrait(data)
        timings.append(time.perf_counter() - started)
    assert result is not None
    before, after, rss_before = measure_memory(data, warmup)
    return Row(
        label=label,
        input_mib=len(data) / _MIB,
        median_ms=statistics.median(timings) * 1000,
        min_ms=min(timings) * 1000,
        rss_before_mib=rss_before,
        maxrss_before_mib=before,
        maxrss_after_mib=after,
        full=f"{result.full.width}x{result.full.height}",
        full_kib=len(result.full.data) / 1024,
        thumb_kib=len(result.thumb.data) / 1024,
    )


def print_table(rows: list[Row], runs: int) -> None:
    headers = (
        "input",
        "size MiB",
        "median ms",
        "min ms",
        "peak RSS before",
        "peak RSS after",
        "increase",
        "full",
        "full KiB",
        "thumb KiB",
    )
    table = [
        (
            row.label,
            f"{row.input_mib:.1f}",
            f"{row.median_ms:.0f}",
            f"{row.min_ms:.0f}",
            f"{row.maxrss_before_mib:.1f} MiB",
            f"{row.maxrss_after_mib:.1f} MiB",
            f"{row.maxrss_after_mib - row.maxrss_before_mib:+.1f} MiB",
            row.full,
            f"{row.full_kib:.1f}",
            f"{row.thumb_kib:.1f}",
        )
        for row in rows
    ]
    widths = [
        max(len(str(cell)) for cell in column) for column in zip(headers, *table, strict=True)
    ]
    line = "  ".join(f"{{:>{width}}}" for width in widths)
    print(f"process_portrait, {runs} timed runs each (+1 warm-up); memory = ru_maxrss of a fresh")
    print("worker process after a tiny warm-up ('before') and after processing the input ('after')")
    print()
    print(line.format(*headers))
    print(line.format(*("-" * width for width in widths)))
    for cells in table:
        print(line.format(*cells))
    print()
    rss_before = ", ".join(f"{row.label}: {row.rss_before_mib:.1f}" for row in rows)
    print(f"current RSS of the worker just before processing (MiB): {rss_before}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per input (default 7)")
    parser.add_argument(
        "--worst-case", action="store_true", help="also bench ~39.9 MP inputs (near the limit)"
    )
    args = parser.parse_args(argv)
    start_memory_workers()

    print(f"Pillow {Image.__version__}, Python {sys.version.split()[0]}")
    sizes = [("12 MP", (4000, 3000))]
    if args.worst_case:
        sizes.append(("39.9 MP", (7300, 5460)))

    rows = []
    for size_label, (width, height) in sizes:
        started = time.perf_counter()
        image = make_detailed_image(width, height)
        print(f"built {width}x{height} test image in {time.perf_counter() - started:.1f} s")
        for image_format in ("JPEG", "PNG", "WEBP"):
            data = encode(image, image_format)
            warmup = encode(make_detailed_image(64, 48), image_format)
            label = f"{size_label} {image_format}"
            rows.append(bench_one(label, data, warmup, args.runs))
            print(f"  {label}: done")
        del image
    print()
    print_table(rows, args.runs)


if __name__ == "__main__":
    main()
