"""The compiled form of a definition: immutable, reusable, safe to share between threads."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType

from .cleaning import clean_text
from .expressions import Evaluator
from .grammar import Grammar
from .rng import Stream

__all__ = [
    "INACTIVE",
    "MAX_TEXT_LENGTH",
    "CompiledTemplate",
    "Field",
    "Options",
    "Param",
    "case_key",
]

MAX_TEXT_LENGTH = 10_000


class _Inactive:
    """Marker: a switch whose governing field is null and that has no default."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "INACTIVE"


INACTIVE = _Inactive()


def case_key(value: object) -> str:
    """A field value written as a string, as switch case keys and ``#key#`` see it."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Fraction):
        return repr(float(value))
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


class Options:
    """A weighted option list (an ``options`` value or a table)."""

    __slots__ = ("_by_cleaned", "_cumulative", "_value_set", "total", "values", "weights")

    def __init__(self, values: tuple[str, ...], weights: tuple[int, ...]) -> None:
        self.values = values
        self.weights = weights
        cumulative = []
        running = 0
        for weight in weights:
            running += weight
            cumulative.append(running)
        self._cumulative = tuple(cumulative)
        self.total = running
        self._value_set = frozenset(values)
        self._by_cleaned: dict[str, str] | None = None

    def __len__(self) -> int:
        return len(self.values)

    def __contains__(self, value: object) -> bool:
        return value in self._value_set

    def canonical(self, value: str) -> str:
        """The option ``value`` names: itself when it is one, else the first option that
        cleans to the same text (users' values arrive cleaned: NFC, no control characters,
        trimmed; the definition keeps its options as written), else ``value`` unchanged."""
        if value in self._value_set:
            return value
        if self._by_cleaned is None:  # built on first need (the instance is shared: harmless)
            by_cleaned: dict[str, str] = {}
            for option in self.values:
                by_cleaned.setdefault(clean_text(option), option)
            self._by_cleaned = by_cleaned
        return self._by_cleaned.get(clean_text(value), value)

    def choose(self, stream: Stream) -> str:
        """One value, by weight: draw in ``[0, total)`` and walk the cumulative weights."""
        return self.values[bisect_right(self._cumulative, stream.below(self.total))]

    def pick(self, stream: Stream, count: int) -> list[str]:
        """``count`` distinct values by weight without replacement, in the order drawn.

        Each draw is a weighted choice among the values not drawn yet (in declaration order);
        a Fenwick tree finds the drawn position in logarithmic time.
        """
        size = len(self.values)
        tree = [0] * (size + 1)
        for position, weight in enumerate(self.weights, 1):
            tree[position] += weight
            parent = position + (position & -position)
            if parent <= size:
                tree[parent] += tree[position]
        top = 1 << (size.bit_length() - 1)
        total = self.total
        chosen: list[str] = []
        for _ in range(count):
            target = stream.below(total)
            position = 0
            step = top
            while step:
                probe = position + step
                if probe <= size and tree[probe] <= target:
                    position = probe
                    target -= tree[probe]
                step >>= 1
            weight = self.weights[position]
            chosen.append(self.values[position])
            total -= weight
            index = position + 1
            while index <= size:
                tree[index] -= weight
                index += index & -index
        return chosen


class Param:
    """A field parameter: a constant, or a ``switch`` on another field's value."""

    __slots__ = ("cases", "const", "default", "has_default", "switch")

    def __init__(
        self,
        const: object = None,
        switch: str | None = None,
        cases: Mapping[str, object] | None = None,
        default: object = None,
        has_default: bool = False,
    ) -> None:
        self.const = const
        self.switch = switch
        self.cases = MappingProxyType(dict(cases or {}))
        self.default = default
        self.has_default = has_default

    def resolve(self, values: Mapping[str, object]) -> object:
        """The parameter's value given the resolved field values (or :data:`INACTIVE`)."""
        if self.switch is None:
            return self.const
        governing = values.get(self.switch)
        if governing is not None:
            found = self.cases.get(case_key(governing), INACTIVE)
            if found is not INACTIVE:
                return found
        return self.default if self.has_default else INACTIVE

    def alternatives(self) -> list[object]:
        """Every value the parameter can take."""
        if self.switch is None:
            return [self.const]
        found = list(self.cases.values())
        if self.has_default:
            found.append(self.default)
        return found


@dataclass(frozen=True, slots=True)
class Field:
    """One compiled field. ``params`` maps parameter names to :class:`Param`."""

    index: int
    key: str
    type: str
    label: str
    group: str | None
    params: Mapping[str, Param]
    when: Evaluator | None = None
    plus: Evaluator | None = None
    expr: Evaluator | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_length: int = MAX_TEXT_LENGTH
    default: str = ""
    grammar: Grammar | None = None
    start: str = "origin"
    deps: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """An immutable, reusable compiled definition (safe to share between threads)."""

    name_field: str | None
    keys: tuple[str, ...]
    fields: tuple[Field, ...]
    order: tuple[int, ...]
    dependencies: Mapping[str, frozenset[str]]
    # an upper bound on the work of making one character: dice thrown, grammar steps, name
    # parts drawn, options weighed and drawn (a unit costs ~0.05-0.6 us; see definition.field_cost)
    cost: int = 0

    def field(self, key: str) -> Field:
        """The compiled field with this key (KeyError if there is none)."""
        return self.fields[self.keys.index(key)]

    def dependents(self, key: str) -> frozenset[str]:
        """Keys of every field that depends on ``key``, directly or indirectly."""
        found: set[str] = set()
        pending = [key]
        while pending:
            current = pending.pop()
            for other, deps in self.dependencies.items():
                if current in deps and other not in found:
                    found.add(other)
                    pending.append(other)
        found.discard(key)
        return frozenset(found)
