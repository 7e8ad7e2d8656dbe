"""Resolution of a character: generation, locks, rerolls and validation of edits.

:func:`validate_attributes` is the one routine; :func:`generate` is it with the locks as the
supplied values and no stored base. Fields are resolved in dependency order, and each field's
value depends only on (seed, its key, its reroll number, the resolved values it depends on).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any, NamedTuple

from .cleaning import has_visible_character
from .errors import AttributesError
from .expressions import EvalFailure, evaluate
from .grammar import MAX_NAME_LENGTH
from .model import INACTIVE, CompiledTemplate, Field, Options, case_key
from .rng import GENERATORS, MAX_REROLL, MAX_SEED, GeneratorSpec, Stream, batch_seed_v1

__all__ = [
    "GENERATOR_VERSION",
    "NAME_STREAM_KEY",
    "SUPPORTED_GENERATOR_VERSIONS",
    "Result",
    "batch_seed",
    "generate",
    "random_seed",
    "validate_attributes",
]

GENERATOR_VERSION = "1"
SUPPORTED_GENERATOR_VERSIONS: frozenset[str] = frozenset(GENERATORS)
NAME_STREAM_KEY = "#name"  # cannot clash with a field key
LIMIT = 2**53 - 1
_ABSENT = object()


class Result(NamedTuple):
    """A resolved character: its name and every field's value in declaration order."""

    name: str
    attributes: dict[str, object]


def random_seed() -> int:
    """A fresh seed in ``0 .. MAX_SEED`` from the operating system's randomness."""
    return secrets.randbelow(MAX_SEED + 1)


def _check_seed(seed: object, what: str = "seed") -> int:
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{what} must be an integer from 0 to {MAX_SEED}")
    return seed


def batch_seed(seed: int, index: int) -> int:
    """Seed of item ``index`` of a batch: item 0 is ``seed``, the others derived from (seed, i).

    The result never depends on the batch size, and is in ``0 .. MAX_SEED``.
    """
    _check_seed(seed)
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= MAX_SEED:
        raise ValueError(f"index must be an integer from 0 to {MAX_SEED}")
    return batch_seed_v1(seed, index)


def generate(
    compiled: CompiledTemplate,
    seed: int,
    *,
    locks: Mapping[str, object] | None = None,
    rerolls: Mapping[str, int] | None = None,
    template_name: str = "Character",
    generator_version: str = GENERATOR_VERSION,
    name: str | None = None,
) -> Result:
    """Generate a character; ``locks`` are validated like an edit (AttributesError if bad)."""
    return validate_attributes(
        compiled,
        {} if locks is None else locks,
        seed,
        base=None,
        rerolls=rerolls,
        template_name=template_name,
        generator_version=generator_version,
        name=name,
    )


def validate_attributes(
    compiled: CompiledTemplate,
    supplied: Mapping[str, object],
    seed: int,
    *,
    base: Mapping[str, object] | None = None,
    rerolls: Mapping[str, int] | None = None,
    template_name: str = "Character",
    generator_version: str = GENERATOR_VERSION,
    name: str | None = None,
) -> Result:
    """Resolve every field from supplied values, a stored base and the seed.

    ``name`` (a character's name given apart from its attributes) sets the name field unless
    ``supplied`` sets it: checked like a supplied value while the field is active, and left
    out, without complaint, while its ``when`` is false.

    Raises :class:`AttributesError` with every problem found (keyed by field key, or
    ``"_schema"``), and ValueError for a bad seed or an unknown generator version.
    """
    spec = _generator(generator_version)
    _check_seed(seed)
    errors: dict[str, list[str]] = {}

    def complain(key: str, message: str) -> None:
        errors.setdefault(key, []).append(message)

    if not isinstance(supplied, Mapping):
        complain("_schema", "attributes must be an object")
        supplied = {}
    if base is None:
        base = {}
    elif not isinstance(base, Mapping):
        complain("_schema", "stored attributes must be an object")
        base = {}
    numbers = _check_rerolls(compiled, rerolls, complain)
    known = set(compiled.keys)
    for key in supplied:
        if not isinstance(key, str) or key not in known:
            complain(str(key), "Unknown field.")

    values: dict[str, object] = {}
    failed: set[str] = set()
    for index in compiled.order:
        field = compiled.fields[index]
        key = field.key
        given = supplied.get(key, _ABSENT)
        implied = given is _ABSENT and name is not None and key == compiled.name_field
        if implied:
            given = name
        setting = given is not _ABSENT and given is not None
        if field.type == "derived" and setting:
            complain(key, "is derived; it cannot be set")
        if field.deps & failed:
            failed.add(key)  # cannot be judged: something it depends on is invalid
            values[key] = None
            continue
        state = _activate(field, values)
        if isinstance(state, str):
            if setting and not implied:
                complain(key, f"cannot be set: {state}")
            values[key] = None
            continue
        if field.type == "derived":
            values[key] = _derive(field, values)
            continue
        params, plus = state
        stored = base.get(key) if given is _ABSENT else None
        candidate = given if setting else stored
        if candidate is not None:
            candidate = _as_options(field, params, candidate)
            message = _check(field, params, plus, candidate)
            if message is None:
                values[key] = list(candidate) if isinstance(candidate, list) else candidate
                continue
            if setting:
                complain(key, message)
            else:
                complain(key, f"the stored value {_show(candidate)} is no longer valid: {message}")
            failed.add(key)
            values[key] = None
            continue
        stream = spec.stream(seed, key, numbers.get(key, 0))
        values[key] = _generate(field, params, plus, stream, values)

    if errors:
        raise AttributesError(errors)
    named = values.get(compiled.name_field) if compiled.name_field else None
    if not isinstance(named, str):
        number = spec.stream(seed, NAME_STREAM_KEY, 0).between(1, 9999)
        suffix = f" #{number}"  # after the template's name, shortened to keep within the limit
        named = template_name[: MAX_NAME_LENGTH - len(suffix)].rstrip() + suffix
    return Result(named, {key: _output(values[key]) for key in compiled.keys})


def _generator(version: object) -> GeneratorSpec:
    spec = GENERATORS.get(version) if isinstance(version, str) else None
    if spec is None:
        raise ValueError(f"unknown generator version {version!r}")
    return spec


def _check_rerolls(
    compiled: CompiledTemplate, rerolls: object, complain: Callable[[str, str], None]
) -> dict[str, int]:
    if rerolls is None:
        return {}
    if not isinstance(rerolls, Mapping):
        complain("_schema", "rerolls must be an object")
        return {}
    numbers: dict[str, int] = {}
    for key, number in rerolls.items():
        if not isinstance(key, str) or key not in compiled.keys:
            complain(str(key), "Unknown field (in rerolls).")
        elif compiled.field(key).type == "derived":
            complain(key, "is derived; it cannot be rerolled")
        elif type(number) is not int or not 0 <= number <= MAX_REROLL:
            complain(key, f"a reroll number must be an integer from 0 to {MAX_REROLL}")
        else:
            numbers[key] = number
    return numbers


def _activate(field: Field, values: Mapping[str, object]) -> str | tuple[dict[str, Any], int]:
    """The field's resolved parameters and `plus`, or why the field is null."""
    if field.when is not None:
        try:
            active = evaluate(field.when, values)
        except EvalFailure:
            active = False
        if active is not True:
            return "its 'when' condition is false"
    params: dict[str, Any] = {}
    for name, param in field.params.items():
        value = param.resolve(values)
        if value is INACTIVE:
            return f"'{param.switch}' has no value and the '{name}' switch has no default"
        params[name] = value
    plus = 0
    if field.plus is not None:
        try:
            value = evaluate(field.plus, values)
        except EvalFailure:
            return "its 'plus' expression has no value"
        if type(value) is not int:  # cannot happen: the compiler checked `plus` is an integer
            return "its 'plus' expression has no integer value"
        plus = value
    return params, plus


def _derive(field: Field, values: Mapping[str, object]) -> object:
    if field.expr is None:
        return None
    try:
        return evaluate(field.expr, values)
    except EvalFailure:
        return None


def _clamp(value: int, field: Field) -> int:
    if field.minimum is not None and value < field.minimum:
        value = field.minimum
    if field.maximum is not None and value > field.maximum:
        value = field.maximum
    return value


def _bounds(field: Field, params: Mapping[str, Any], plus: int) -> tuple[int, int]:
    """The smallest and largest value the field can take: the dice or range plus ``plus``,
    clamped to ``min``/``max``, and within +-(2**53 - 1) (a result beyond is null), so
    ``low > high`` when every result is beyond."""
    dice = params.get("dice")
    low, high = (dice.low, dice.high) if dice is not None else params["range"]
    return max(_clamp(low + plus, field), -LIMIT), min(_clamp(high + plus, field), LIMIT)


def _generate(
    field: Field,
    params: Mapping[str, Any],
    plus: int,
    stream: Stream,
    values: Mapping[str, object],
) -> object:
    kind = field.type
    if kind == "integer":
        dice = params.get("dice")
        if dice is not None:
            rolled = dice.roll(stream)
        else:
            low, high = params["range"]
            rolled = stream.between(low, high)
        value = _clamp(rolled + plus, field)
        return value if -LIMIT <= value <= LIMIT else None
    if kind == "choice":
        options: Options = params.get("options") or params["table"]
        return options.choose(stream)
    if kind == "pick":
        options = params.get("options") or params["table"]
        return options.pick(stream, params["count"])
    if kind == "boolean":
        num, den = params["chance"]
        return stream.below(den) < num
    if kind == "name":
        return params["generator"].generate(stream)
    if field.grammar is None:
        return field.default

    def insert(key: str) -> str:
        value = values.get(key)
        return "" if value is None else case_key(value)

    return field.grammar.expand(field.start, stream, insert, field.max_length)


def _as_options(field: Field, params: Mapping[str, Any], value: object) -> object:
    """A ``choice`` or ``pick`` value as the option(s) it names (:meth:`Options.canonical`):
    an option written ``"e\u0301cole"`` in the definition is what a user's cleaned (NFC)
    ``"école"`` means, and is what is stored, as generation would have made it."""
    if field.type not in ("choice", "pick"):
        return value
    options: Options = params.get("options") or params["table"]
    if isinstance(value, str):
        return options.canonical(value)
    if isinstance(value, list):
        return [options.canonical(item) if isinstance(item, str) else item for item in value]
    return value


def _check(field: Field, params: Mapping[str, Any], plus: int, value: object) -> str | None:
    """Why ``value`` is not allowed for ``field`` (None if it is)."""
    kind = field.type
    if kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return "must be an integer"
        low, high = _bounds(field, params, plus)
        if low > high:
            return "can have no value here: every result is beyond +-(2**53 - 1)"
        if not low <= value <= high:
            return f"must be between {low} and {high}"
        return None
    if kind in ("choice", "pick"):
        options: Options = params.get("options") or params["table"]
        if kind == "choice":
            if not isinstance(value, str) or value not in options:
                return f"must be one of {_listing(options)}"
            return None
        count = params["count"]
        if not isinstance(value, list) or len(value) != count:
            return f"must be a list of {count} distinct values from {_listing(options)}"
        for item in value:
            if not isinstance(item, str) or item not in options:
                return f"{_show(item)} is not one of {_listing(options)}"
        if len(set(value)) != len(value):
            return f"must be {count} distinct values: it has duplicates"
        return None
    if kind == "boolean":
        if not isinstance(value, bool):
            return "must be true or false"
        num, den = params["chance"]
        if num == 0 and value:
            return "can only be false"
        if num == den and not value:
            return "can only be true"
        return None
    if kind == "name":
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_NAME_LENGTH:
            return f"must be a non-empty string of at most {MAX_NAME_LENGTH} characters"
        if not has_visible_character(value):  # as a name sent by a client (app.common.schemas)
            return "must contain a visible character"
        return None
    if not isinstance(value, str) or len(value) > field.max_length:
        return f"must be a string of at most {field.max_length} characters"
    return None


def _listing(options: Options) -> str:
    shown = ", ".join(repr(value) for value in options.values[:10])
    extra = len(options.values) - 10
    return shown + (f" and {extra} more" if extra > 0 else "")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _output(value: object) -> object:
    if isinstance(value, Fraction):
        return float(value)
    if isinstance(value, list):
        return list(value)
    return value
