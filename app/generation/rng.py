"""Integer-only random streams that the project owns.

Every random draw of the engine comes from a :class:`Stream`: a SHA-256 counter stream keyed by a
canonical encoding of (generator version, seed, field key, reroll number). Nothing here uses
floating point or the methods of Python's :mod:`random` module, so the same inputs give the same
numbers on every machine and every Python version.

Algorithm of generator version "1":

* stream key  ``K = SHA-256(b"character-forge\\x00stream\\x00v1\\x00" || seed || n || key)`` where
  ``seed`` and ``n`` are 8-byte big-endian unsigned integers and ``key`` is the UTF-8 field key;
* block ``i`` (i = 0, 1, 2, ...) is ``SHA-256(K || i)`` with ``i`` as 8-byte big-endian, read as
  four 64-bit big-endian words, used in order;
* ``below(m)`` (uniform in ``0 .. m-1``) draws words until one is below the largest multiple of
  ``m`` that fits in 64 bits and returns it modulo ``m`` (rejection sampling, no modulo bias);
  ``below(1)`` returns 0 without drawing.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "GENERATORS",
    "MAX_REROLL",
    "MAX_SEED",
    "GeneratorSpec",
    "Stream",
    "batch_seed_v1",
    "stream_v1",
]

MAX_SEED = 2**53 - 1
MAX_REROLL = 2**53 - 1
_TWO64 = 1 << 64
_WORDS = struct.Struct(">4Q").unpack
_STREAM_PREFIX_V1 = b"character-forge\x00stream\x00v1\x00"
_BATCH_PREFIX_V1 = b"character-forge\x00batch\x00v1\x00"


class Stream:
    """A deterministic stream of 64-bit words with unbiased bounded draws."""

    __slots__ = ("_counter", "_key", "_words")

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._counter = 0
        self._words: list[int] = []

    def next64(self) -> int:
        """Return the next 64-bit word of the stream."""
        words = self._words
        if not words:
            block = hashlib.sha256(self._key + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
            words.extend(reversed(_WORDS(block)))
        return words.pop()

    def below(self, bound: int) -> int:
        """Return a uniform integer in ``0 .. bound-1`` (``1 <= bound <= 2**64``)."""
        if bound == 1:
            return 0
        if not 1 < bound <= _TWO64:
            raise ValueError(f"bound out of range: {bound}")
        limit = _TWO64 - _TWO64 % bound
        while True:
            word = self.next64()
            if word < limit:
                return word % bound

    def between(self, low: int, high: int) -> int:
        """Return a uniform integer in ``low .. high`` (both included)."""
        return low + self.below(high - low + 1)


def stream_v1(seed: int, key: str, reroll: int) -> Stream:
    """The stream of field ``key`` for ``seed`` and reroll number ``reroll`` (version "1")."""
    material = (
        _STREAM_PREFIX_V1 + seed.to_bytes(8, "big") + reroll.to_bytes(8, "big") + key.encode()
    )
    return Stream(hashlib.sha256(material).digest())


def batch_seed_v1(seed: int, index: int) -> int:
    """Seed of item ``index`` of a batch started with ``seed`` (item 0 is ``seed`` itself)."""
    if index == 0:
        return seed
    digest = hashlib.sha256(
        _BATCH_PREFIX_V1 + seed.to_bytes(8, "big") + index.to_bytes(8, "big")
    ).digest()
    return int.from_bytes(digest[:8], "big") >> 11


@dataclass(frozen=True, slots=True)
class GeneratorSpec:
    """One registered generator version: the algorithms that make its random numbers."""

    version: str
    stream: Callable[[int, str, int], Stream]
    description: str


GENERATORS: dict[str, GeneratorSpec] = {
    "1": GeneratorSpec(
        version="1",
        stream=stream_v1,
        description="SHA-256 counter streams per (seed, key, reroll), rejection-sampled draws",
    ),
}
