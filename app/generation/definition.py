"""The definition compiler: parsed JSON in, an immutable :class:`CompiledTemplate` out.

``compile_definition`` checks the whole definition and reports every problem it finds at once,
each located by a path (``("fields", 3, "dice")``). Generation only ever uses the compiled form.
"""

from __future__ import annotations

import json
import keyword
import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from .cleaning import has_visible_character
from .dice import Dice, DiceError, parse_dice
from .errors import DefinitionError, Path
from .expressions import (
    BOOL,
    INT,
    LIST,
    STR,
    Evaluator,
    Expression,
    ExpressionError,
    Type,
    describe_type,
    parse_expression,
)
from .grammar import (
    MAX_NAME_LENGTH,
    MAX_RULES,
    SYMBOL_PATTERN,
    Grammar,
    NameGenerator,
    clean_name,
    grammar_problems,
    parse_rule,
)
from .graph import resolution_order
from .model import MAX_TEXT_LENGTH, CompiledTemplate, Field, Options, Param

__all__ = [
    "FIELD_TYPES",
    "MAX_DEFINITION_BYTES",
    "MAX_FIELDS",
    "MAX_OPTIONS",
    "MAX_WEIGHT",
    "CompiledTemplate",
    "compile_definition",
]

MAX_FIELDS = 200
MAX_OPTIONS = 1000
MAX_WEIGHT = 1_000_000
MAX_DEFINITION_BYTES = 64 * 1024
MAX_LABEL_LENGTH = 100
LIMIT = 2**53 - 1
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")
ID_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}\Z")

FIELD_TYPES = ("integer", "choice", "pick", "boolean", "text", "name", "derived")
TOP_MEMBERS = ("names", "grammars", "tables", "name_field", "fields")
COMMON_MEMBERS = ("key", "type", "label", "group", "when")
TYPE_MEMBERS: dict[str, tuple[str, ...]] = {
    "integer": ("dice", "range", "plus", "min", "max"),
    "choice": ("options", "table"),
    "pick": ("options", "table", "count"),
    "boolean": ("chance",),
    "text": ("grammar", "start", "default", "max_length"),
    "name": ("generator",),
    "derived": ("expr",),
}
SWITCHABLE = frozenset({"dice", "range", "options", "table", "count", "chance", "generator"})
STATIC_TYPES: dict[str, Type] = {
    "integer": INT,
    "choice": STR,
    "pick": LIST,
    "boolean": BOOL,
    "text": STR,
    "name": STR,
}
MISSING = "Missing data for required field."
UNKNOWN = "Unknown field."


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _brief(value: object) -> str:
    """A short ``repr`` for messages (a member may hold a huge value), with JSON's spelling of
    null and booleans (the client sent JSON, not Python)."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _quoted(values: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(value) for value in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


# ---------------------------------------------------------------------------------------------
# The compiler


class _Compiler:
    def __init__(self, stored: bool = False) -> None:
        self.stored = stored
        self.errors: list[tuple[Path, str]] = []
        self.tables: dict[str, Options | None] = {}
        self.names: dict[str, NameGenerator | None] = {}
        self.grammars: dict[str, Grammar | None] = {}
        self.keys: dict[str, int] = {}
        self.types: dict[int, str] = {}

    def error(self, path: Path, message: str) -> None:
        self.errors.append((path, message))

    def on_save(self, path: Path, message: str) -> None:
        """A problem that refuses a definition being saved but not a stored one.

        For rules that definitions already stored may break (they came after them: a null
        section, a name generator that can make a blank name, a switch case that can never
        match), where what the rule forbids does no harm to generation: a null section is read
        as absent, a case that never matches does not, a blank name gives the character its
        fallback name. A template's versions never change, so ignoring them there keeps
        every stored template generating what it did.
        """
        if not self.stored:
            self.error(path, message)

    def check_members(
        self, obj: dict, allowed: tuple[str, ...], path: Path, foreign: str = ""
    ) -> None:
        for member in obj:
            if member in allowed:
                continue
            if not isinstance(member, str):
                self.error(path, f"member names must be strings, not {_brief(member)}")
            elif foreign and any(member in params for params in TYPE_MEMBERS.values()):
                self.error(
                    (*path, member), f"is not a parameter of {_article(foreign)} '{foreign}' field"
                )
            else:
                self.error((*path, member), UNKNOWN)

    # -- shared values ------------------------------------------------------------------------

    def options(self, raw: object, path: Path) -> Options | None:
        if not isinstance(raw, list):
            self.error(path, "must be a list of options")
            return None
        if not raw:
            self.error(path, "needs at least one option")
            return None
        if len(raw) > MAX_OPTIONS:
            self.error(path, f"has {len(raw)} options (at most {MAX_OPTIONS})")
            return None
        values: list[str] = []
        weights: list[int] = []
        seen: dict[str, int] = {}
        ok = True
        for index, item in enumerate(raw):
            item_path = (*path, index)
            value: object
            weight: object = 1
            if isinstance(item, dict):
                self.check_members(item, ("value", "weight"), item_path)
                if "value" not in item:
                    self.error((*item_path, "value"), MISSING)
                    ok = False
                    continue
                value = item["value"]
                weight = item.get("weight", 1)
                value_path: Path = (*item_path, "value")
            else:
                value = item
                value_path = item_path
            if not isinstance(value, str) or not value:
                self.error(value_path, "an option's value must be a non-empty string")
                ok = False
                continue
            if not _is_int(weight) or not 1 <= weight <= MAX_WEIGHT:  # type: ignore[operator]
                self.error(
                    (*item_path, "weight"), f"a weight must be an integer from 1 to {MAX_WEIGHT}"
                )
                ok = False
                continue
            if value in seen:
                self.error(value_path, f"duplicate option {_brief(value)} (also at {seen[value]})")
                ok = False
                continue
            seen[value] = index
            values.append(value)
            weights.append(weight)  # type: ignore[arg-type]
        return Options(tuple(values), tuple(weights)) if ok else None

    def identifier(self, raw: object, path: Path, what: str) -> bool:
        if not isinstance(raw, str) or not ID_PATTERN.match(raw):
            self.error(
                path,
                f"{what} names are 1 to 64 letters, digits, '_' or '-', starting with a letter",
            )
            return False
        return True

    # -- top-level sections --------------------------------------------------------------------

    def compile_tables(self, raw: object) -> None:
        if raw is None:  # null (a member left out arrives as {})
            self.on_save(("tables",), "must be an object of option lists")
            return
        if not isinstance(raw, dict):
            self.error(("tables",), "must be an object of option lists")
            return
        for name, options in raw.items():
            if self.identifier(name, ("tables", name), "table"):
                self.tables[name] = self.options(options, ("tables", name))

    def compile_names(self, raw: object) -> None:
        if raw is None:  # null (a member left out arrives as {})
            self.on_save(("names",), "must be an object of name generators")
            return
        if not isinstance(raw, dict):
            self.error(("names",), "must be an object of name generators")
            return
        for name, spec in raw.items():
            path: Path = ("names", name)
            if not self.identifier(name, path, "name generator"):
                continue
            self.names[name] = None
            if not isinstance(spec, dict):
                self.error(path, 'must be an object: {"parts": [[...], ...]}')
                continue
            self.check_members(spec, ("parts",), path)
            parts = spec.get("parts")
            if "parts" not in spec:
                self.error((*path, "parts"), MISSING)
                continue
            if not isinstance(parts, list) or not parts:
                self.error((*path, "parts"), "must be a non-empty list of lists of strings")
                continue
            ok = True
            for index, options in enumerate(parts):
                part_path = (*path, "parts", index)
                if not isinstance(options, list) or not options:
                    self.error(part_path, "must be a non-empty list of strings")
                    ok = False
                elif len(options) > MAX_OPTIONS:
                    self.error(part_path, f"has {len(options)} parts (at most {MAX_OPTIONS})")
                    ok = False
                elif not all(isinstance(option, str) for option in options):
                    self.error(part_path, "name parts must be strings")
                    ok = False
            if not ok:
                continue
            generator = NameGenerator(name, tuple(tuple(options) for options in parts))
            if generator.max_length > MAX_NAME_LENGTH:
                self.on_save(
                    (*path, "parts"),
                    f"can make names of {generator.max_length} characters "
                    f"(at most {MAX_NAME_LENGTH})",
                )
            elif generator.can_be_blank:
                self.on_save(
                    (*path, "parts"),
                    "can make an empty name (every list has a part with no visible "
                    "character: empty, or only spaces, control or format characters)",
                )
            self.names[name] = generator

    def compile_grammars(self, raw: object) -> None:
        if raw is None:  # null (a member left out arrives as {})
            self.on_save(("grammars",), "must be an object of grammars")
            return
        if not isinstance(raw, dict):
            self.error(("grammars",), "must be an object of grammars")
            return
        for name, symbols in raw.items():
            path: Path = ("grammars", name)
            if not self.identifier(name, path, "grammar"):
                continue
            self.grammars[name] = None
            if not isinstance(symbols, dict) or not symbols:
                self.error(path, "must be a non-empty object of symbols, each a list of rules")
                continue
            ok = True
            for symbol, rules in symbols.items():
                symbol_path = (*path, symbol)
                if not isinstance(symbol, str) or not SYMBOL_PATTERN.match(symbol):
                    self.error(
                        symbol_path,
                        "symbols are 1 to 64 letters, digits or '_', starting with a letter",
                    )
                    ok = False
                elif symbol in self.keys:  # reported, but the grammar is still checked
                    self.error(symbol_path, f"symbol '{symbol}' has the same name as a field")
                if not isinstance(rules, list) or not rules:
                    self.error(symbol_path, "must be a non-empty list of rules (strings)")
                    ok = False
                elif len(rules) > MAX_RULES:
                    self.error(symbol_path, f"has {len(rules)} rules (at most {MAX_RULES})")
                    ok = False
            if not ok:
                continue
            compiled: dict[str, tuple] = {}
            for symbol, rules in symbols.items():
                parsed = []
                for index, rule in enumerate(rules):
                    if not isinstance(rule, str):
                        self.error((*path, symbol, index), "a rule must be a string")
                        ok = False
                        continue
                    try:
                        parsed.append(parse_rule(rule, symbols, self.keys))
                    except ValueError as exc:
                        self.error((*path, symbol, index), str(exc))
                        ok = False
                compiled[symbol] = tuple(parsed)
            if not ok:
                continue
            problems = grammar_problems(compiled)
            for symbol, message in problems:
                self.error((*path, symbol) if symbol else path, message)
            if not problems:
                self.grammars[name] = Grammar(name, compiled)

    # -- fields --------------------------------------------------------------------------------

    def scan_fields(self, raw: list) -> list[dict | None]:
        """First pass: keys and types, so later checks can refer to any field."""
        specs: list[dict | None] = []
        for index, spec in enumerate(raw):
            path: Path = ("fields", index)
            if not isinstance(spec, dict):
                self.error(path, "a field must be an object")
                specs.append(None)
                continue
            specs.append(spec)
            key = spec.get("key")
            if "key" not in spec:
                self.error((*path, "key"), MISSING)
            elif not isinstance(key, str) or not KEY_PATTERN.match(key):
                self.error(
                    (*path, "key"),
                    "a key is 1 to 32 of a-z, 0-9 and '_', starting with a letter",
                )
            elif keyword.iskeyword(key):
                self.error((*path, "key"), f"'{key}' is a Python keyword")
            elif key in self.keys:
                self.error((*path, "key"), f"duplicate key '{key}' (also fields.{self.keys[key]})")
            else:
                self.keys[key] = index
            kind = spec.get("type")
            if "type" not in spec:
                self.error((*path, "type"), MISSING)
            elif kind not in FIELD_TYPES:
                self.error((*path, "type"), "must be one of: " + ", ".join(FIELD_TYPES))
            else:
                self.types[index] = kind
        return specs

    def param(
        self,
        spec: dict,
        name: str,
        path: Path,
        build: Callable[[object, Path], object],
    ) -> Param | None:
        """Compile a parameter that may be a switch; None if missing or invalid."""
        if name not in spec:
            return None
        raw = spec[name]
        param_path = (*path, name)
        if not isinstance(raw, dict):
            value = build(raw, param_path)
            return None if value is None else Param(const=value)
        self.check_members(raw, ("switch", "cases", "default"), param_path)
        ok = True
        governing = raw.get("switch")
        if "switch" not in raw:
            self.error((*param_path, "switch"), MISSING)
            ok = False
        elif not isinstance(governing, str) or governing not in self.keys:
            self.error((*param_path, "switch"), f"{_brief(governing)} is not the key of a field")
            ok = False
        elif governing == spec.get("key"):
            self.error((*param_path, "switch"), "a field cannot switch on itself")
            ok = False
        elif self.types.get(self.keys[governing]) == "pick":
            self.error(
                (*param_path, "switch"), f"cannot switch on '{governing}': a pick value is a list"
            )
            ok = False
        cases = raw.get("cases")
        compiled_cases: dict[str, object] = {}
        if "cases" not in raw:
            self.error((*param_path, "cases"), MISSING)
            ok = False
        elif not isinstance(cases, dict) or not cases:
            self.error((*param_path, "cases"), "must be a non-empty object of cases")
            ok = False
        else:
            for case, value in cases.items():
                if not isinstance(case, str):
                    self.error(param_path, f"case names must be strings, not {_brief(case)}")
                    ok = False
                    continue
                if isinstance(value, dict):
                    self.error((*param_path, "cases", case), "switches cannot be nested")
                    ok = False
                    continue
                built = build(value, (*param_path, "cases", case))
                if built is None:
                    ok = False
                compiled_cases[case] = built
        default = None
        if "default" in raw:
            if isinstance(raw["default"], dict):
                self.error((*param_path, "default"), "switches cannot be nested")
                ok = False
            else:
                default = build(raw["default"], (*param_path, "default"))
                ok = ok and default is not None
        if not ok:
            return None
        return Param(
            switch=governing,
            cases=compiled_cases,
            default=default,
            has_default="default" in raw,
        )

    def build_dice(self, raw: object, path: Path) -> Dice | None:
        if not isinstance(raw, str):
            self.error(path, "dice notation must be a string")
            return None
        try:
            return parse_dice(raw)
        except DiceError as exc:
            self.error(path, str(exc))
            return None

    def build_range(self, raw: object, path: Path) -> tuple[int, int] | None:
        if not (isinstance(raw, list) and len(raw) == 2 and all(_is_int(item) for item in raw)):
            self.error(path, "must be [lo, hi], two integers")
            return None
        low, high = raw
        if not (-LIMIT <= low <= LIMIT and -LIMIT <= high <= LIMIT):
            self.error(path, "range limits must be within +-(2**53 - 1)")
            return None
        if low > high:
            self.error(path, f"needs lo <= hi, got [{low}, {high}]")
            return None
        return (low, high)

    def build_table(self, raw: object, path: Path) -> Options | None:
        if not isinstance(raw, str) or raw not in self.tables:
            self.error(path, f"{_brief(raw)} is not a table of this definition")
            return None
        return self.tables[raw]  # None (already reported) if the table itself is invalid

    def build_count(self, raw: object, path: Path) -> int | None:
        if not _is_int(raw) or not 1 <= raw <= MAX_OPTIONS:  # type: ignore[operator]
            self.error(path, f"must be an integer from 1 to {MAX_OPTIONS}")
            return None
        return raw  # type: ignore[return-value]

    def build_chance(self, raw: object, path: Path) -> tuple[int, int] | None:
        if not (isinstance(raw, list) and len(raw) == 2 and all(_is_int(item) for item in raw)):
            self.error(path, "must be [num, den], two integers")
            return None
        num, den = raw
        if not 1 <= den <= LIMIT or not 0 <= num <= den:
            self.error(path, "needs 0 <= num <= den and 1 <= den <= 2**53 - 1")
            return None
        return (num, den)

    def build_generator(self, raw: object, path: Path) -> NameGenerator | None:
        if not isinstance(raw, str) or raw not in self.names:
            self.error(path, f"{_brief(raw)} is not a name generator of this definition")
            return None
        return self.names[raw]

    def bounded_int(self, spec: dict, member: str, path: Path) -> int | None:
        value = spec.get(member)
        if member not in spec:
            return None
        if not _is_int(value) or not -LIMIT <= value <= LIMIT:  # type: ignore[operator]
            self.error((*path, member), "must be an integer within +-(2**53 - 1)")
            return None
        return value  # type: ignore[return-value]

    def label(self, spec: dict, member: str, path: Path) -> str | None:
        value = spec.get(member)
        if member not in spec:
            return None
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_LABEL_LENGTH:
            self.error((*path, member), f"must be a string of 1 to {MAX_LABEL_LENGTH} characters")
            return None
        if not has_visible_character(value):  # " " or "\u200b": a label that shows nothing
            self.on_save((*path, member), "must contain a visible character")
        return value

    def field_params(self, index: int, spec: dict) -> dict:
        """Second pass: a field's own parameters. Returns keyword arguments for Field."""
        path: Path = ("fields", index)
        kind = self.types.get(index)
        if kind is not None:
            self.check_members(spec, COMMON_MEMBERS + TYPE_MEMBERS[kind], path, foreign=kind)
        self.label(spec, "label", path)
        self.label(spec, "group", path)
        params: dict[str, Param] = {}
        extra: dict[str, object] = {}

        def add(name: str, build: Callable[[object, Path], object]) -> None:
            param = self.param(spec, name, path, build)
            if param is not None:
                params[name] = param

        def one_of(first: str, second: str, required: bool = True) -> None:
            if first in spec and second in spec:
                self.error((*path, second), f"'{first}' and '{second}' cannot be used together")
            elif required and first not in spec and second not in spec:
                self.error((*path, first), f"{MISSING} (or '{second}')")

        if kind == "integer":
            one_of("dice", "range")
            add("dice", self.build_dice)
            add("range", self.build_range)
            extra["minimum"] = self.bounded_int(spec, "min", path)
            extra["maximum"] = self.bounded_int(spec, "max", path)
            low, high = extra["minimum"], extra["maximum"]
            if low is not None and high is not None and low > high:  # type: ignore[operator]
                self.error((*path, "max"), f"needs min <= max, got min {low} and max {high}")
        elif kind in ("choice", "pick"):
            one_of("options", "table")
            add("options", self.options)
            add("table", self.build_table)
            if kind == "pick":
                if "count" not in spec:
                    self.error((*path, "count"), MISSING)
                add("count", self.build_count)
        elif kind == "boolean":
            if "chance" not in spec:
                self.error((*path, "chance"), MISSING)
            add("chance", self.build_chance)
        elif kind == "name":
            if "generator" not in spec:
                self.error((*path, "generator"), MISSING)
            add("generator", self.build_generator)
        elif kind == "text":
            extra.update(self.text_params(spec, path))
        elif kind == "derived" and "expr" not in spec:
            self.error((*path, "expr"), MISSING)
        return {"params": params, **extra}

    def text_params(self, spec: dict, path: Path) -> dict:
        extra: dict[str, object] = {}
        if "grammar" in spec and "default" in spec:
            self.error((*path, "default"), "'grammar' and 'default' cannot be used together")
        if "start" in spec and "grammar" not in spec:
            self.error((*path, "start"), "needs 'grammar'")
        max_length = spec.get("max_length", MAX_TEXT_LENGTH)
        if not _is_int(max_length) or not 1 <= max_length <= MAX_TEXT_LENGTH:
            self.error((*path, "max_length"), f"must be an integer from 1 to {MAX_TEXT_LENGTH}")
            max_length = MAX_TEXT_LENGTH
        extra["max_length"] = max_length
        if "default" in spec:
            default = spec["default"]
            if not isinstance(default, str):
                self.error((*path, "default"), "must be a string")
            elif len(default) > max_length:
                self.error(
                    (*path, "default"), f"is longer than max_length ({len(default)} > {max_length})"
                )
            else:
                extra["default"] = default
        if "grammar" in spec:
            name = spec["grammar"]
            start = spec.get("start", "origin")
            if isinstance(name, dict):
                self.error((*path, "grammar"), "cannot be a switch")
            elif not isinstance(name, str) or name not in self.grammars:
                self.error(
                    (*path, "grammar"), f"{_brief(name)} is not a grammar of this definition"
                )
            elif not isinstance(start, str):
                self.error((*path, "start"), "must be a string")
            elif self.grammars[name] is not None:
                grammar = self.grammars[name]
                if start not in grammar.symbols:  # type: ignore[union-attr]
                    where = (*path, "start") if "start" in spec else (*path, "grammar")
                    self.error(where, f"grammar '{name}' has no symbol '{start}'")
                else:
                    extra["grammar"] = grammar
                    extra["start"] = start
        return extra

    def check_cases(
        self, index: int, name: str, param: Param, possible: dict, static: Mapping[str, Type]
    ) -> None:
        """Case keys that can never match, and a missing default.

        A case can match only a value's string form (:func:`case_key`): a choice's options, a
        boolean's ``true``/``false``, an integer's canonical decimal within +-(2**53 - 1), a
        name's cleaned text; a derived field's by the type its expression gives (a string
        expression can give any text, so its cases are not checked).
        """
        path: Path = ("fields", index, name)
        governing = param.switch
        kind = self.types.get(self.keys[governing]) if governing in self.keys else None
        if governing is None or kind is None:
            return
        values = possible.get(governing)
        for case in param.cases:
            if not isinstance(case, str):
                continue
            if kind == "choice":
                if values is not None and case not in values:
                    self.on_save(
                        (*path, "cases", case),
                        f"'{governing}' can never be {_brief(case)}: not an option",
                    )
            elif kind == "name":
                if clean_name(case) != case:
                    self.on_save(
                        (*path, "cases", case),
                        f"can never match: '{governing}' is a name, which is cleaned (NFC, no "
                        f"control characters, trimmed) and 1 to {MAX_NAME_LENGTH} characters",
                    )
            else:
                kind_of_value = static.get(governing) if kind == "derived" else STATIC_TYPES[kind]
                wrong = _case_never_matches(case, kind_of_value)
                if wrong:
                    self.on_save((*path, "cases", case), f"can never match: '{governing}' {wrong}")
        if param.has_default:
            return
        if kind == "choice" and values is not None:
            missing = [value for value in values if value not in param.cases]
            if missing:
                self.error(
                    (*path, "default"),
                    f"is required: '{governing}' can also be {_quoted(missing)}",
                )
        elif kind != "choice":
            self.error(
                (*path, "default"),
                f"is required: '{governing}' is not a choice whose every option has a case",
            )

    def check_count(self, index: int, params: Mapping[str, Param]) -> None:
        """A pick's count must not exceed its options, for every switch combination."""
        count = params.get("count")
        source = params.get("options") or params.get("table")
        if count is None or source is None:
            return
        if count.switch is not None and count.switch == source.switch:
            keys = list(dict.fromkeys([*count.cases, *source.cases]))
            combos = []
            for key in keys:
                number = count.cases.get(key, count.default if count.has_default else None)
                options = source.cases.get(key, source.default if source.has_default else None)
                if number is not None and options is not None:
                    combos.append((number, options, f"'{count.switch}' = {key!r}"))
            if count.has_default and source.has_default:
                combos.append((count.default, source.default, "the default"))
        else:
            combos = [
                (number, options, "")
                for number in count.alternatives()
                for options in source.alternatives()
            ]
        for number, options, where in combos:
            if options is not None and number > len(options):  # type: ignore[operator]
                suffix = f" for {where}" if where else ""
                self.error(
                    ("fields", index, "count"),
                    f"asks for {number} distinct values but there are only "
                    f"{len(options)} options{suffix}",
                )
                return


_INTEGER_TEXT = re.compile(r"0|-?[1-9][0-9]*")


def _case_never_matches(case: str, kind: Type) -> str | None:
    """Why a value of static type ``kind`` can never be written ``case`` (None if it can, or
    if ``kind`` is unknown or includes strings, which can be any text)."""
    if kind is None or "str" in kind:
        return None
    forms = []
    if "int" in kind:
        if _INTEGER_TEXT.fullmatch(case) and abs(int(case)) <= LIMIT:
            return None
        forms.append("an integer within +-(2**53 - 1) in decimal, like '12' or '-3'")
    if "frac" in kind:
        if _is_float_text(case):
            return None
        forms.append("a fraction as its float text, like '2.5'")
    if "bool" in kind:
        if case in ("true", "false"):
            return None
        forms.append("'true' or 'false'")
    return "is written as " + " or ".join(forms)


def _is_float_text(case: str) -> bool:
    """Whether ``case`` is how a derived fraction is written: ``repr`` of a finite float
    (:func:`case_key`), within the magnitude a number may have. A whole result is an integer,
    written ``"2"``: so ``"2.0"`` and ``"-0.0"`` never match (below 2**52, where a float
    still tells a fraction from the integers around it)."""
    try:
        number = float(case)
    except ValueError:
        return False
    if number.is_integer() and abs(number) < 2**52:
        return False
    return math.isfinite(number) and abs(number) <= 2**53 and repr(number) == case


def _possible_choice_values(compiled_params: dict[int, dict]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for index, params in compiled_params.items():
        source = params.get("options") or params.get("table")
        if source is None:
            continue
        values: dict[str, None] = {}
        for options in source.alternatives():
            values.update(dict.fromkeys(options.values))
        found[index] = list(values)
    return found


def compile_definition(obj: object, *, stored: bool = False) -> CompiledTemplate:
    """Check a whole definition (parsed JSON) and compile it; raise DefinitionError if invalid.

    ``stored``: the definition was accepted when it was saved (a template version, which never
    changes): the rules that may have come after it and that it may break harmlessly
    (``_Compiler.on_save``) are not applied, so a stored template keeps generating.
    """
    if not isinstance(obj, dict):
        raise DefinitionError([(("_schema",), "a definition must be a JSON object")])
    try:
        size = len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError, RecursionError):
        raise DefinitionError([(("_schema",), "a definition must be JSON data")]) from None
    if size > MAX_DEFINITION_BYTES:
        raise DefinitionError(
            [(("_schema",), f"the definition is {size} bytes (at most {MAX_DEFINITION_BYTES})")]
        )
    compiler = _Compiler(stored)
    error = compiler.error
    compiler.check_members(obj, TOP_MEMBERS, ())
    raw_fields = obj.get("fields")
    if "fields" not in obj:
        error(("fields",), MISSING)
        raw_fields = []
    elif not isinstance(raw_fields, list):
        error(("fields",), "must be a list of fields")
        raw_fields = []
    elif not raw_fields:
        error(("fields",), "needs at least one field")
    elif len(raw_fields) > MAX_FIELDS:
        error(("fields",), f"has {len(raw_fields)} fields (at most {MAX_FIELDS})")
    specs = compiler.scan_fields(raw_fields)
    compiler.compile_tables(obj.get("tables", {}))
    compiler.compile_names(obj.get("names", {}))
    compiler.compile_grammars(obj.get("grammars", {}))

    keys = compiler.keys
    types = compiler.types
    field_args: dict[int, dict] = {}
    for index, spec in enumerate(specs):
        if spec is not None:
            field_args[index] = compiler.field_params(index, spec)

    params_by_index = {index: args["params"] for index, args in field_args.items()}
    # expressions and dependencies
    expressions: dict[tuple[int, str], Expression] = {}
    deps: dict[int, set[str]] = {}
    for index, spec in enumerate(specs):
        if spec is None:
            continue
        needs: set[str] = set()
        for member in ("when", "plus", "expr"):
            if member not in spec:
                continue
            if member != "when" and not _member_allowed(types.get(index), member):
                continue
            try:
                expression = parse_expression(spec[member], keys)
            except ExpressionError as exc:
                error(("fields", index, member), str(exc))
                continue
            expressions[(index, member)] = expression
            needs |= expression.names
        for param in params_by_index[index].values():
            if param.switch is not None and param.switch in keys:
                needs.add(param.switch)
        grammar = field_args[index].get("grammar")
        if grammar is not None:
            needs |= grammar.field_refs(field_args[index]["start"])
        deps[index] = needs

    key_of = {index: key for key, index in keys.items()}
    order = resolution_order(keys, deps, key_of, error)

    # static types (derived fields in dependency order), then bind every expression
    static: dict[str, Type] = {}
    for key, index in keys.items():
        kind = types.get(index)
        static[key] = STATIC_TYPES.get(kind) if kind else None  # type: ignore[arg-type]
    evaluators: dict[tuple[int, str], Evaluator] = {}
    for index in order:
        expression = expressions.get((index, "expr"))
        if expression is None or types.get(index) != "derived" or index not in key_of:
            continue
        try:
            evaluators[(index, "expr")], static[key_of[index]] = expression.bind(static)
        except ExpressionError as exc:
            error(("fields", index, "expr"), str(exc))
    wanted = {"when": BOOL, "plus": INT}
    for (index, member), expression in expressions.items():
        if member == "expr":
            continue
        try:
            evaluator, kind = expression.bind(static)
        except ExpressionError as exc:
            error(("fields", index, member), str(exc))
            continue
        if kind is not None and kind != wanted[member]:
            noun = "a boolean" if member == "when" else "an integer"
            error(
                ("fields", index, member),
                f"must be {noun} expression, but it gives {describe_type(kind)}",
            )
            continue
        evaluators[(index, member)] = evaluator

    # switches: governing values (a derived field's by the static type of its expression)
    choice_values = _possible_choice_values(
        {index: params for index, params in params_by_index.items() if types.get(index) == "choice"}
    )
    possible = {key: choice_values.get(index) for key, index in keys.items()}
    for index, params in params_by_index.items():
        for name, param in params.items():
            if param.switch is not None:
                compiler.check_cases(index, name, param, possible, static)
        if types.get(index) == "pick":
            compiler.check_count(index, params)

    name_field = _name_field(obj, keys, types, error)
    if compiler.errors:
        raise DefinitionError(compiler.errors)

    fields = []
    for index, spec in enumerate(specs):
        if spec is None:  # cannot happen: a non-object field is an error
            continue
        args = field_args[index]
        fields.append(
            Field(
                index=index,
                key=spec["key"],
                type=spec["type"],
                label=spec.get("label", spec["key"]),
                group=spec.get("group"),
                params=MappingProxyType(args.pop("params")),
                when=evaluators.get((index, "when")),
                plus=evaluators.get((index, "plus")),
                expr=evaluators.get((index, "expr")),
                deps=frozenset(deps[index]),
                **args,
            )
        )
    return CompiledTemplate(
        name_field=name_field,
        keys=tuple(field.key for field in fields),
        fields=tuple(fields),
        order=tuple(order),
        dependencies=MappingProxyType({field.key: field.deps for field in fields}),
        cost=sum(field_cost(field) for field in fields),
    )


def field_cost(field: Field) -> int:
    """An upper bound on the work of generating ``field`` once, in units of one die thrown, one
    grammar step, one name part or one option weighed or drawn; 1 for anything else.

    The definition's limits bound what one field can cost but not what a few bytes can ask
    for: ``100d1000!`` throws up to 200 dice, a grammar of ten bytes per rule can take 5,000
    steps, a 1,000-option table is weighed again by every field that picks from it. A switch
    costs its costliest case.
    """

    def worst(name: str, measure: Callable[[Any], int]) -> int:
        param = field.params.get(name)
        return max(map(measure, param.alternatives())) if param is not None else 0

    if field.type == "integer":
        return 1 + worst("dice", lambda dice: dice.cost)
    if field.type == "pick":
        return 1 + worst("options", len) + worst("table", len) + worst("count", lambda count: count)
    if field.type == "name":
        return 1 + worst("generator", lambda generator: len(generator.parts))
    if field.type == "text" and field.grammar is not None:
        return 1 + field.grammar.steps[field.start]
    return 1


def _member_allowed(kind: str | None, member: str) -> bool:
    return kind is not None and member in TYPE_MEMBERS.get(kind, ())


def _name_field(
    obj: dict, keys: Mapping[str, int], types: Mapping[int, str], error: Callable
) -> str | None:
    if "name_field" in obj:
        value = obj["name_field"]
        if not isinstance(value, str) or value not in keys:
            error(("name_field",), f"{_brief(value)} is not the key of a field")
            return None
        if types.get(keys[value]) != "name":
            error(("name_field",), f"'{value}' is not a field of type 'name'")
            return None
        return value
    for key, index in keys.items():
        if types.get(index) == "name":
            return key
    return None
