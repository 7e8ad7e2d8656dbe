"""Tracery-subset grammars and part-based name generators.

A grammar maps symbols to lists of rules. In a rule, ``#symbol#`` expands a rule of that symbol
(chosen uniformly on the field's stream), ``#key#`` inserts the value of another field, and
modifiers follow the name: ``#symbol.capitalize#``, ``#symbol.a#`` (applied left to right). Every
other character is literal; ``#`` always opens or closes a tag. Symbols may not refer to
themselves, directly or through other symbols, so every expansion ends.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .cleaning import clean_text, has_visible_character, normalise_text
from .rng import Stream

__all__ = [
    "MAX_EXPANSIONS",
    "MAX_GRAMMAR_DEPTH",
    "MAX_NAME_LENGTH",
    "MAX_RULES",
    "MODIFIERS",
    "SYMBOL_PATTERN",
    "Grammar",
    "NameGenerator",
    "Tag",
    "article",
    "capitalize",
    "clean_name",
    "grammar_problems",
    "parse_rule",
]

MAX_RULES = 50
MAX_GRAMMAR_DEPTH = 20
MAX_EXPANSIONS = 5000
MAX_NAME_LENGTH = 100
SYMBOL_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}\Z")
_VOWELS = frozenset("aeiouAEIOU")


def capitalize(text: str) -> str:
    """Upper-case the first character, leave the rest alone (Tracery's ``capitalize``)."""
    return text[:1].upper() + text[1:]


def article(text: str) -> str:
    """Prefix ``an`` when the text starts with a vowel letter (a e i o u), else ``a``."""
    return ("an " if text[:1] in _VOWELS else "a ") + text


MODIFIERS: dict[str, Callable[[str], str]] = {"capitalize": capitalize, "a": article}


@dataclass(frozen=True, slots=True)
class Tag:
    """A ``#name.modifier...#`` tag; ``is_field`` says whether ``name`` is a field key."""

    name: str
    modifiers: tuple[Callable[[str], str], ...]
    is_field: bool


Piece = str | Tag
Rule = tuple[Piece, ...]


def parse_rule(rule: str, symbols: Mapping[str, object], field_keys: Mapping[str, object]) -> Rule:
    """Split a rule into literal text and tags; raise ValueError with a message if it is bad."""
    chunks = rule.split("#")
    if len(chunks) % 2 == 0:
        raise ValueError("has an unclosed '#' tag")
    pieces: list[Piece] = []
    for index, chunk in enumerate(chunks):
        if index % 2 == 0:
            if chunk:
                pieces.append(chunk)
            continue
        if not chunk:
            raise ValueError("has an empty '##' tag")
        name, *modifier_names = chunk.split(".")
        functions = []
        for modifier in modifier_names:
            if modifier not in MODIFIERS:
                raise ValueError(
                    f"unknown modifier '.{modifier}' in '#{chunk}#' (use .capitalize or .a)"
                )
            functions.append(MODIFIERS[modifier])
        if name in symbols:
            pieces.append(Tag(name, tuple(functions), False))
        elif name in field_keys:
            pieces.append(Tag(name, tuple(functions), True))
        else:
            raise ValueError(f"'#{chunk}#' names no symbol of this grammar and no field")
    return tuple(pieces)


class Grammar:
    """A compiled grammar: symbols with their parsed rules, known to be acyclic and bounded.

    ``steps[symbol]`` is the most expansion steps expanding ``symbol`` can take (each rule
    chosen, each field inserted; at most ``MAX_EXPANSIONS``).
    """

    __slots__ = ("name", "steps", "symbols")

    def __init__(self, name: str, symbols: Mapping[str, tuple[Rule, ...]]) -> None:
        self.name = name
        self.symbols = dict(symbols)
        self.steps = _measure(self.symbols)[1]

    def field_refs(self, start: str) -> frozenset[str]:
        """Every field key that an expansion from ``start`` can insert."""
        found: set[str] = set()
        seen: set[str] = set()
        pending = [start]
        while pending:
            symbol = pending.pop()
            if symbol in seen:
                continue
            seen.add(symbol)
            for rule in self.symbols[symbol]:
                for piece in rule:
                    if isinstance(piece, Tag):
                        if piece.is_field:
                            found.add(piece.name)
                        else:
                            pending.append(piece.name)
        return frozenset(found)

    def expand(self, start: str, stream: Stream, insert: Callable[[str], str], limit: int) -> str:
        """Expand ``start`` on ``stream``; ``insert(key)`` gives a field's value as text.

        The text is the first ``limit`` characters of the whole expansion, made without the
        rest: expansion stops as soon as that many are written. (Each step only adds to the
        end of the text, and the modifiers only look at the start of theirs, so what is cut
        off never changes what is kept; a few bytes of grammar could otherwise write hundreds
        of megabytes to keep one character.)
        """
        out: list[str] = []
        with contextlib.suppress(_Full):
            self._expand(start, stream, insert, out, _Budget(limit))
        return "".join(out)[:limit]

    def _expand(
        self,
        symbol: str,
        stream: Stream,
        insert: Callable[[str], str],
        out: list[str],
        budget: _Budget,
    ) -> None:
        rules = self.symbols[symbol]
        for piece in rules[stream.below(len(rules))]:
            if type(piece) is str:
                out.append(piece)
                budget.spend(len(piece))
                continue
            if piece.is_field:
                text = insert(piece.name)
            elif piece.modifiers:
                inner: list[str] = []
                # stopped once it fills what is left: the modifiers need only its start
                with contextlib.suppress(_Full):
                    self._expand(piece.name, stream, insert, inner, _Budget(budget.left))
                text = "".join(inner)
            else:
                self._expand(piece.name, stream, insert, out, budget)
                continue
            for modifier in piece.modifiers:
                text = modifier(text)
            out.append(text)
            budget.spend(len(text))


class _Full(Exception):
    """The text has all the characters it will keep."""


class _Budget:
    """How many characters the text may still take before expansion stops."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left <= 0:
            raise _Full


def _children(symbols: Mapping[str, tuple[Rule, ...]]) -> dict[str, list[str]]:
    """The symbols each symbol's rules refer to."""
    return {
        symbol: sorted(
            {piece.name for rule in rules for piece in rule if isinstance(piece, Tag)}
            & set(symbols)
        )
        for symbol, rules in symbols.items()
    }


def _measure(symbols: Mapping[str, tuple[Rule, ...]]) -> tuple[dict[str, int], dict[str, int]]:
    """Of an acyclic grammar: how deep expanding each symbol goes, and how many steps it can
    take (capped at ``MAX_EXPANSIONS + 1``: anything more is already too many)."""
    depth: dict[str, int] = {}
    size: dict[str, int] = {}
    for symbol in _postorder(_children(symbols)):  # children are measured before their parents
        best_depth = 1
        best_size = 0
        for rule in symbols[symbol]:
            rule_size = 1
            for piece in rule:
                if isinstance(piece, Tag):
                    if piece.is_field:
                        rule_size += 1
                    else:
                        best_depth = max(best_depth, 1 + depth[piece.name])
                        rule_size += size[piece.name]
            best_size = max(best_size, rule_size)
        depth[symbol] = best_depth
        size[symbol] = min(best_size, MAX_EXPANSIONS + 1)
    return depth, size


def grammar_problems(symbols: Mapping[str, tuple[Rule, ...]]) -> list[tuple[str | None, str]]:
    """Cycles, depth and size problems of a grammar as (symbol or None, message)."""
    problems: list[tuple[str | None, str]] = []
    children = _children(symbols)
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    in_cycle: set[str] = set()
    for root in symbols:
        if state.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        state[root] = 1
        while stack:
            symbol, position = stack[-1]
            if position < len(children[symbol]):
                stack[-1] = (symbol, position + 1)
                child = children[symbol][position]
                if state.get(child) == 1:
                    loop = [*path[path.index(child) :], child]
                    for member in loop[:-1]:
                        if member not in in_cycle:
                            in_cycle.add(member)
                            if len(loop) == 2:
                                message = f"symbol '{member}' refers to itself"
                            else:
                                message = f"symbol '{member}' refers to itself: " + " -> ".join(
                                    loop[loop.index(member) :] + loop[1 : loop.index(member) + 1]
                                )
                            problems.append((member, message))
                elif not state.get(child):
                    state[child] = 1
                    stack.append((child, 0))
                    path.append(child)
            else:
                state[symbol] = 2
                stack.pop()
                path.pop()
    if in_cycle:
        return problems
    depth, size = _measure(symbols)
    for symbol in symbols:
        if depth[symbol] > MAX_GRAMMAR_DEPTH:
            problems.append(
                (
                    symbol,
                    f"expanding '{symbol}' goes {depth[symbol]} levels deep (at most "
                    f"{MAX_GRAMMAR_DEPTH})",
                )
            )
        elif size[symbol] > MAX_EXPANSIONS:
            problems.append(
                (symbol, f"expanding '{symbol}' can take more than {MAX_EXPANSIONS} steps")
            )
    return problems


def _postorder(children: Mapping[str, list[str]]) -> list[str]:
    """Symbols of an acyclic graph, children before parents (iterative)."""
    order: list[str] = []
    done: set[str] = set()
    for root in children:
        if root in done:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            symbol, position = stack[-1]
            if position < len(children[symbol]):
                stack[-1] = (symbol, position + 1)
                child = children[symbol][position]
                if child not in done:
                    stack.append((child, 0))
            else:
                stack.pop()
                if symbol not in done:
                    done.add(symbol)
                    order.append(symbol)
    return order


class NameGenerator:
    """``{"parts": [[...], [...], ...]}``: one part drawn from each list, concatenated, and the
    result cleaned as a name a user sends would be (:func:`clean_name`).

    ``max_length`` bounds the cleaned names (the longest cleaned part of each list, added up);
    ``can_be_blank`` says whether some draw shows nothing once cleaned: a draw is blank exactly
    when each of its parts is (cleaning never removes a visible character), where blank means
    no visible character (:func:`~app.generation.cleaning.has_visible_character`).
    """

    __slots__ = ("can_be_blank", "max_length", "name", "parts")

    def __init__(self, name: str, parts: tuple[tuple[str, ...], ...]) -> None:
        self.name = name
        self.parts = parts
        self.max_length = sum(
            max(len(normalise_text(part)) for part in options) for options in parts
        )
        self.can_be_blank = all(
            any(not has_visible_character(part) for part in options) for options in parts
        )

    def generate(self, stream: Stream) -> str | None:
        """Draw one part from each list, in order, join them and clean the result (None when
        nothing is left)."""
        below = stream.below
        return clean_name("".join(options[below(len(options))] for options in self.parts))


def clean_name(raw: str) -> str | None:
    """A generated name as it can be stored: cleaned like every name a user sends (NFC, no
    control characters, trimmed), so that sending it back stores it unchanged; cut to
    ``MAX_NAME_LENGTH`` characters (then trimmed again) in the rare case that cleaning the
    whole makes it longer than its parts said (NFC spells a few characters, such as U+0958,
    with two code points, and joining parts can undo a composition); None when it is blank:
    empty, or without a visible character (``"\u200b"``), which no client may send as a name.

    A name that was clean already is returned unchanged, so generation stays reproducible for
    every generator whose names were valid before names were cleaned.
    """
    name = clean_text(raw)
    if len(name) > MAX_NAME_LENGTH:
        name = name[:MAX_NAME_LENGTH].rstrip()
    return name if has_visible_character(name) else None
