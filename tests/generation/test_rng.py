"""The engine's own random streams: fixed words, unbiased bounded draws, batch seeds."""

from __future__ import annotations

import hashlib
import inspect

import pytest

from app.generation import MAX_SEED, batch_seed, random_seed
from app.generation import rng as rng_module
from app.generation.rng import GENERATORS, Stream, stream_v1


class ScriptedStream(Stream):
    """A stream that returns the given 64-bit words."""

    def __init__(self, words: list[int]) -> None:
        super().__init__(b"")
        self.script = list(words)

    def next64(self) -> int:
        return self.script.pop(0)


def test_stream_v1_matches_its_documented_construction() -> None:
    key = hashlib.sha256(
        b"character-forge\x00stream\x00v1\x00"
        + (42).to_bytes(8, "big")
        + (3).to_bytes(8, "big")
        + b"str"
    ).digest()
    block0 = hashlib.sha256(key + (0).to_bytes(8, "big")).digest()
    block1 = hashlib.sha256(key + (1).to_bytes(8, "big")).digest()
    expected = [
        int.from_bytes(block[i : i + 8], "big")
        for block in (block0, block1)
        for i in (0, 8, 16, 24)
    ]
    stream = stream_v1(42, "str", 3)
    assert [stream.next64() for _ in range(8)] == expected


def test_streams_are_independent_per_seed_key_and_reroll() -> None:
    first = [stream_v1(7, "a", 0).next64() for _ in range(2)]
    assert first[0] == first[1]
    words = {
        stream_v1(7, "a", 0).next64(),
        stream_v1(8, "a", 0).next64(),
        stream_v1(7, "b", 0).next64(),
        stream_v1(7, "a", 1).next64(),
    }
    assert len(words) == 4


def test_below_rejects_the_biased_tail() -> None:
    bound = 3
    limit = 2**64 - 2**64 % bound  # words >= limit would favour small results
    stream = ScriptedStream([limit, 2**64 - 1, limit - 1])
    assert stream.below(bound) == (limit - 1) % bound
    assert stream.script == []


def test_below_and_between_stay_in_range() -> None:
    stream = stream_v1(1, "x", 0)
    for bound in (2, 3, 6, 7, 100, 2**53, 2**64):
        for _ in range(50):
            assert 0 <= stream.below(bound) < bound
    assert stream.below(1) == 0
    for _ in range(200):
        assert -5 <= stream.between(-5, 5) <= 5
    with pytest.raises(ValueError, match="bound"):
        stream.below(0)
    with pytest.raises(ValueError, match="bound"):
        stream.below(2**64 + 1)


def test_below_is_uniform_enough() -> None:
    stream = stream_v1(2024, "uniform", 0)
    counts = [0] * 6
    draws = 60_000
    for _ in range(draws):
        counts[stream.below(6)] += 1
    expected = draws / 6
    chi_square = sum((count - expected) ** 2 / expected for count in counts)
    assert chi_square < 25  # 5 degrees of freedom: p < 0.0002 if uniform


def test_no_random_module_and_no_floats_on_the_random_path() -> None:
    source = inspect.getsource(rng_module)
    assert "import random" not in source
    assert "float" not in source.replace("floating point", "")


def test_batch_seed() -> None:
    assert batch_seed(12345, 0) == 12345
    seeds = [batch_seed(12345, index) for index in range(1, 200)]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= seed <= MAX_SEED for seed in seeds)
    assert batch_seed(12345, 7) == batch_seed(12345, 7)
    assert batch_seed(12345, 7) != batch_seed(12346, 7)
    assert batch_seed(MAX_SEED, 1) <= MAX_SEED
    for bad in (-1, MAX_SEED + 1, True, 1.0):
        with pytest.raises(ValueError, match="seed"):
            batch_seed(bad, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="index"):
        batch_seed(1, -1)


def test_random_seed_is_in_range() -> None:
    assert all(0 <= random_seed() <= MAX_SEED for _ in range(100))


def test_generator_registry() -> None:
    assert set(GENERATORS) == {"1"}
    assert GENERATORS["1"].stream is stream_v1
