"""Dice notation: a hand-written parser, a small evaluation tree and exact bounds.

Grammar (whitespace anywhere is ignored before parsing; everything is lowercase)::

    expr     := term (("+" | "-") term)*
    term     := factor ("*" factor)*
    factor   := dice | INTEGER | "(" expr ")"
    dice     := [INTEGER] "d" (INTEGER | "%") [modifier]
    modifier := ("kh" | "kl" | "dh" | "dl") INTEGER | "!"

``NdS`` rolls N dice with S faces (1 <= N <= 100, 2 <= S <= 1000); ``dS`` is ``1dS`` and ``d%``
is ``d100``. ``khK``/``klK`` keep the K highest/lowest dice, ``dhK``/``dlK`` drop them (1 <= K <=
N). ``!`` explodes: every die that shows its highest face adds another die (which may explode in
turn), at most 100 extra dice per term. Every possible result must lie within +-(2**53 - 1).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from .rng import Stream

__all__ = ["MAX_DICE_LENGTH", "Dice", "DiceError", "parse_dice"]

MAX_DICE_LENGTH = 120
MAX_DICE = 100
MIN_SIDES = 2
MAX_SIDES = 1000
MAX_EXPLOSIONS = 100
MAX_MAGNITUDE = 2**53 - 1
_DIGITS = frozenset("0123456789")


class DiceError(ValueError):
    """A dice notation that breaks a rule; the message says what is wrong."""


class _Node(ABC):
    __slots__ = ("high", "low")

    low: int
    high: int

    @abstractmethod
    def roll(self, stream: Stream) -> int:
        """Evaluate this node on ``stream``."""


class _Const(_Node):
    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value
        self.low = self.high = value

    def roll(self, stream: Stream) -> int:
        return self.value


class _Roll(_Node):
    """``count`` dice of ``sides`` faces with an optional keep/drop or explode modifier."""

    __slots__ = ("count", "keep", "mode", "sides")

    def __init__(self, count: int, sides: int, mode: str, keep: int) -> None:
        self.count = count
        self.sides = sides
        self.mode = mode  # "", "!", "kh", "kl", "dh", "dl"
        self.keep = keep
        if mode == "!":
            self.low, self.high = count, (count + MAX_EXPLOSIONS) * sides
        else:
            kept = {"": count, "kh": keep, "kl": keep, "dh": count - keep, "dl": count - keep}
            self.low, self.high = kept[mode], kept[mode] * sides

    def roll(self, stream: Stream) -> int:
        sides = self.sides
        below = stream.below
        rolls = [1 + below(sides) for _ in range(self.count)]
        mode = self.mode
        if not mode:
            return sum(rolls)
        if mode == "!":
            total = 0
            extra = 0
            for face in rolls:
                total += face
                while face == sides and extra < MAX_EXPLOSIONS:
                    extra += 1
                    face = 1 + below(sides)
                    total += face
            return total
        rolls.sort()
        keep = self.keep
        if mode == "kh":
            return sum(rolls[-keep:])
        if mode == "kl":
            return sum(rolls[:keep])
        if mode == "dh":
            return sum(rolls[: len(rolls) - keep])
        return sum(rolls[keep:])  # "dl"


class _Binary(_Node):
    __slots__ = ("left", "op", "right")

    def __init__(self, op: str, left: _Node, right: _Node) -> None:
        self.op = op
        self.left = left
        self.right = right
        a, b, c, d = left.low, left.high, right.low, right.high
        if op == "+":
            self.low, self.high = a + c, b + d
        elif op == "-":
            self.low, self.high = a - d, b - c
        else:
            products = (a * c, a * d, b * c, b * d)
            self.low, self.high = min(products), max(products)

    def roll(self, stream: Stream) -> int:
        left = self.left.roll(stream)
        right = self.right.roll(stream)
        if self.op == "+":
            return left + right
        if self.op == "-":
            return left - right
        return left * right


class Dice:
    """A parsed dice notation: ``roll(stream)`` and the exact ``low``/``high`` bounds.

    The bounds are the true smallest and largest results (every die is independent, so interval
    arithmetic is exact for ``+``, ``-`` and ``*``); values in between are not all reachable
    (``2*d6`` is always even), and validation only checks the bounds.
    """

    __slots__ = ("_tree", "cost", "high", "low", "text")

    def __init__(self, text: str, tree: _Node, cost: int) -> None:
        self.text = text
        self._tree = tree
        self.low = tree.low
        self.high = tree.high
        self.cost = cost  # the most dice one roll can throw, explosions included

    def roll(self, stream: Stream) -> int:
        """Roll the dice on ``stream``, left to right."""
        return self._tree.roll(stream)

    def __repr__(self) -> str:
        return f"Dice({self.text!r}, low={self.low}, high={self.high}, cost={self.cost})"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.dice_terms = 0
        self.most_dice = 0  # dice thrown at most, every explosion included

    def error(self, message: str) -> DiceError:
        return DiceError(message)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def unexpected(self) -> DiceError:
        char = self.peek()
        if not char:
            return self.error(f"'{self.text}' ends too early")
        if char == "D" or char in "KHL":
            return self.error(f"dice notation is lowercase: use {char.lower()!r}, not {char!r}")
        return self.error(f"unexpected {char!r} at position {self.pos + 1} of '{self.text}'")

    def integer(self) -> int | None:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _DIGITS:
            self.pos += 1
        if self.pos == start:
            return None
        digits = self.text[start : self.pos]
        if len(digits) > 16:
            raise self.error(f"number '{digits}' is too large")
        return int(digits)

    def expr(self) -> _Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.peek()
            self.pos += 1
            node = _Binary(op, node, self.term())
        return node

    def term(self) -> _Node:
        node = self.factor()
        while self.peek() == "*":
            self.pos += 1
            node = _Binary("*", node, self.factor())
        return node

    def factor(self) -> _Node:
        char = self.peek()
        if char == "(":
            self.pos += 1
            node = self.expr()
            if self.peek() != ")":
                raise self.unexpected() if self.peek() else self.error("missing ')'")
            self.pos += 1
            return node
        start = self.pos
        number = self.integer()
        if self.peek() == "d":
            return self.dice(start, number)
        if number is None:
            raise self.unexpected()
        return _Const(number)

    def dice(self, start: int, count: int | None) -> _Node:
        self.pos += 1  # the "d"
        if self.peek() == "%":
            self.pos += 1
            sides: int | None = 100
        else:
            sides = self.integer()
            if sides is None:
                raise self.error(f"'{self.text[start : self.pos]}' needs a number of sides")
        count = 1 if count is None else count
        mode, keep = "", 0
        char = self.peek()
        if char == "!":
            self.pos += 1
            mode = "!"
        elif char in ("k", "d") and self.pos + 1 < len(self.text):
            two = self.text[self.pos : self.pos + 2]
            if two in ("kh", "kl", "dh", "dl"):
                self.pos += 2
                number = self.integer()
                if number is None:
                    raise self.error(f"'{self.text[start : self.pos]}' needs a count after {two!r}")
                mode, keep = two, number
        notation = self.text[start : self.pos]
        if count < 1:
            raise self.error(f"'{notation}' needs at least one die")
        if count > MAX_DICE:
            raise self.error(f"'{notation}' rolls more than {MAX_DICE} dice")
        if not MIN_SIDES <= sides <= MAX_SIDES:
            raise self.error(f"'{notation}': dice have {MIN_SIDES} to {MAX_SIDES} sides")
        if mode and mode != "!" and not 1 <= keep <= count:
            word = "keep" if mode[0] == "k" else "drop"
            raise self.error(f"'{notation}': can only {word} 1 to {count} dice")
        self.dice_terms += 1
        self.most_dice += count + (MAX_EXPLOSIONS if mode == "!" else 0)
        return _Roll(count, sides, mode, keep)


def parse_dice(text: str) -> Dice:
    """Parse dice notation into a :class:`Dice`; raise :class:`DiceError` if it breaks a rule."""
    if not isinstance(text, str):
        raise DiceError("dice notation must be a string")
    if len(text) > MAX_DICE_LENGTH:
        raise DiceError(f"dice notation is longer than {MAX_DICE_LENGTH} characters")
    compact = "".join(char for char in text if not char.isspace())
    if not compact:
        raise DiceError("dice notation is empty")
    parser = _Parser(compact)
    tree = parser.expr()
    if parser.pos != len(compact):
        raise parser.unexpected()
    if parser.dice_terms == 0:
        raise DiceError(f"'{compact}' has no dice: a dice expression needs at least one die")
    if tree.low < -MAX_MAGNITUDE or tree.high > MAX_MAGNITUDE:
        raise DiceError(f"'{compact}' can produce results beyond +-(2**53 - 1)")
    return Dice(compact, tree, parser.most_dice)
