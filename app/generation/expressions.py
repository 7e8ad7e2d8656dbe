"""Safe expressions (`when`, `plus`, `expr`): a whitelist of Python syntax, statically typed.

An expression is parsed with :mod:`ast` in ``eval`` mode, every node is checked against a small
whitelist, every name must be a field key, and the tree is then turned into nested closures
(``bind``) after a static type check. Evaluation is exact: ``/`` makes a
:class:`fractions.Fraction`, an integral result is an ``int``, and every intermediate number must
stay within +-(2**53 - 1) with a denominator of at most 2**53 - 1, or evaluation fails.

At run time evaluation fails (raises :class:`EvalFailure`) on a null operand, a division by zero
or an overflow; the caller decides what a failure means for its field.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from fractions import Fraction

from .cleaning import text_fault

__all__ = [
    "BOOL",
    "FUNCTIONS",
    "INT",
    "LIST",
    "MAX_EXPRESSION_LENGTH",
    "NUM",
    "STR",
    "EvalFailure",
    "Expression",
    "ExpressionError",
    "Type",
    "describe_type",
    "evaluate",
    "parse_expression",
]

MAX_EXPRESSION_LENGTH = 1000
MAX_DEPTH = 64
LIMIT = 2**53 - 1

Type = frozenset[str] | None  # atoms: "int", "frac", "bool", "str", "list"; None = unknown
INT: frozenset[str] = frozenset({"int"})
NUM: frozenset[str] = frozenset({"int", "frac"})
BOOL: frozenset[str] = frozenset({"bool"})
STR: frozenset[str] = frozenset({"str"})
LIST: frozenset[str] = frozenset({"list"})

FUNCTIONS = ("floor", "ceil", "round", "min", "max", "abs")

Evaluator = Callable[[Mapping[str, object]], object]


class ExpressionError(ValueError):
    """An expression that can never be valid; the message says why."""


class EvalFailure(Exception):
    """Evaluation failed at run time (null operand, division by zero, overflow)."""


_OPERATORS: dict[type, str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.And: "and",
    ast.Or: "or",
    ast.Not: "not",
    ast.USub: "-",
    ast.UAdd: "+",
}
_STRUCTURE = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.Name,
    ast.Constant,
    ast.Load,
)
_FORBIDDEN: dict[type, str] = {
    ast.Attribute: "attribute access is not allowed",
    ast.Subscript: "indexing is not allowed",
    ast.Pow: "'**' is not allowed",
    ast.MatMult: "'@' is not allowed",
    ast.BitAnd: "'&' is not allowed",
    ast.BitOr: "'|' is not allowed",
    ast.BitXor: "'^' is not allowed",
    ast.LShift: "'<<' is not allowed",
    ast.RShift: "'>>' is not allowed",
    ast.Invert: "'~' is not allowed",
    ast.In: "'in' is not allowed",
    ast.NotIn: "'not in' is not allowed",
    ast.Is: "'is' is not allowed: use '=='",
    ast.IsNot: "'is not' is not allowed: use '!='",
    ast.Lambda: "lambda is not allowed",
    ast.NamedExpr: "':=' is not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.Set: "sets are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.Starred: "'*' unpacking is not allowed",
    ast.keyword: "keyword arguments are not allowed",
}


def describe_type(kind: Type) -> str:
    """Human wording of a static type."""
    if kind is None:
        return "unknown"
    if kind == LIST:
        return "a list"
    if kind <= NUM:
        return "an integer" if kind == INT else "a number"
    if kind == BOOL:
        return "a boolean"
    if kind == STR:
        return "a string"
    return "a value of mixed type"


def _fail_null(key: str) -> EvalFailure:
    return EvalFailure(f"'{key}' has no value")


def _number(value: int | Fraction) -> int | Fraction:
    """Normalise a numeric result and enforce the magnitude limits."""
    if type(value) is int:
        if -LIMIT <= value <= LIMIT:
            return value
        raise EvalFailure("number out of range")
    if value.denominator == 1:
        return _number(value.numerator)
    if value.denominator > LIMIT or not -LIMIT <= value <= LIMIT:
        raise EvalFailure("number out of range")
    return value


def _round(value: int | Fraction) -> int:
    """Round half away from zero."""
    if type(value) is int:
        return value
    rounded = math.floor(abs(value) + Fraction(1, 2))
    return rounded if value >= 0 else -rounded


def _depth(node: ast.AST, depth: int = 0) -> int:
    if depth > MAX_DEPTH:
        return depth
    children = list(ast.iter_child_nodes(node))
    if not children:
        return depth
    return max(_depth(child, depth + 1) for child in children)


class Expression:
    """A parsed, whitelisted expression; ``bind`` type-checks it and builds an evaluator."""

    __slots__ = ("_tree", "names", "source")

    def __init__(self, source: str, tree: ast.Expression, names: frozenset[str]) -> None:
        self.source = source
        self._tree = tree
        self.names = names

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def bind(self, types: Mapping[str, Type]) -> tuple[Evaluator, Type]:
        """Type-check against the fields' static types; return (evaluator, result type)."""
        return _build(self._tree.body, types)


def parse_expression(source: object, known_names: Mapping[str, object]) -> Expression:
    """Parse and whitelist ``source``; every name must be a key of ``known_names``."""
    if not isinstance(source, str):
        raise ExpressionError("must be a string")
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"is longer than {MAX_EXPRESSION_LENGTH} characters")
    if not source.strip():
        raise ExpressionError("expression is empty")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise ExpressionError(f"syntax error{where}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError):
        raise ExpressionError("cannot be parsed") from None
    if _depth(tree) > MAX_DEPTH:
        raise ExpressionError(
            f"is nested more than {MAX_DEPTH} levels deep (each operator of a chain such as "
            f"a + b + c is one more level: group a long one, (a + b) + (c + d))"
        )
    names: set[str] = set()
    nodes = list(ast.walk(tree))
    callees = {id(node.func) for node in nodes if isinstance(node, ast.Call)}
    for node in nodes:
        kind = type(node)
        if kind in _FORBIDDEN:
            raise ExpressionError(_FORBIDDEN[kind])
        if kind not in _OPERATORS and not isinstance(node, _STRUCTURE):
            raise ExpressionError(f"{kind.__name__} is not allowed")
        if isinstance(node, ast.Call):
            _check_call(node)
        elif isinstance(node, ast.Name) and id(node) not in callees:
            if node.id not in known_names:
                if node.id in FUNCTIONS:
                    raise ExpressionError(f"{node.id} is a function: call it, {node.id}(...)")
                raise ExpressionError(f"unknown name '{node.id}'")
            names.add(node.id)
        elif isinstance(node, ast.Constant):
            _check_constant(node.value)
    return Expression(source, tree, frozenset(names))


def _check_call(node: ast.Call) -> None:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        raise ExpressionError("only floor, ceil, round, min, max and abs can be called")
    if node.keywords:
        raise ExpressionError("keyword arguments are not allowed")
    name = node.func.id
    count = len(node.args)
    if name in ("min", "max") and count < 2:
        raise ExpressionError(f"{name}() needs at least two arguments")
    if name not in ("min", "max") and count != 1:
        raise ExpressionError(f"{name}() takes exactly one argument")


def _check_constant(value: object) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, str):
        # an escape in a string literal ('\\x00', '\\ud800') can spell what a JSON body may
        # not (app.common.api checks bodies with the same text_fault)
        fault = text_fault(value)
        if fault:
            raise ExpressionError(f"a string {fault}")
        return
    if isinstance(value, int):
        if not -LIMIT <= value <= LIMIT:
            raise ExpressionError("integer constant is larger than 2**53 - 1")
        return
    if value is None:
        raise ExpressionError("None is not allowed")
    if isinstance(value, float):
        raise ExpressionError("decimal numbers are not allowed: use integers and '/'")
    raise ExpressionError(f"{type(value).__name__} constants are not allowed")


# ---------------------------------------------------------------------------------------------
# Type checking and closure building


def _is_numeric(kind: Type) -> bool:
    return kind is None or (bool(kind) and kind <= NUM)


def _require(kind: Type, wanted: frozenset[str], what: str) -> None:
    if kind is None:
        return
    if wanted == NUM:
        if not _is_numeric(kind):
            raise ExpressionError(f"{what} needs numbers, not {describe_type(kind)}")
    elif kind != wanted:
        raise ExpressionError(f"{what} needs {describe_type(wanted)}, not {describe_type(kind)}")


def _family(kind: frozenset[str]) -> str | None:
    if kind <= NUM:
        return "number"
    if kind == BOOL:
        return "boolean"
    if kind == STR:
        return "string"
    return None


def _build(node: ast.AST, types: Mapping[str, Type]) -> tuple[Evaluator, Type]:
    if isinstance(node, ast.Constant):
        value = node.value
        kind = BOOL if isinstance(value, bool) else STR if isinstance(value, str) else INT
        return (lambda values: value), kind
    if isinstance(node, ast.Name):
        return _build_name(node.id, types)
    if isinstance(node, ast.BinOp):
        return _build_binop(node, types)
    if isinstance(node, ast.UnaryOp):
        return _build_unary(node, types)
    if isinstance(node, ast.BoolOp):
        return _build_boolop(node, types)
    if isinstance(node, ast.Compare):
        return _build_compare(node, types)
    if isinstance(node, ast.IfExp):
        return _build_ifexp(node, types)
    if isinstance(node, ast.Call):
        return _build_call(node, types)
    raise ExpressionError(f"{type(node).__name__} is not allowed")  # pragma: no cover


def _build_name(key: str, types: Mapping[str, Type]) -> tuple[Evaluator, Type]:
    kind = types.get(key)
    if kind == LIST:
        raise ExpressionError(f"'{key}' is a list (a pick field) and cannot be used in expressions")

    def name(values: Mapping[str, object]) -> object:
        value = values.get(key)
        if value is None:
            raise _fail_null(key)
        return value

    return name, kind


def _build_binop(node: ast.BinOp, types: Mapping[str, Type]) -> tuple[Evaluator, Type]:
    symbol = _OPERATORS[type(node.op)]
    left, left_type = _build(node.left, types)
    right, right_type = _build(node.right, types)
    what = f"'{symbol}'"
    if symbol == "+" and STR in (left_type, right_type):
        raise ExpressionError("'+' needs numbers: strings cannot be joined")
    if symbol == "*" and STR in (left_type, right_type):
        raise ExpressionError("'*' needs numbers: strings cannot be repeated")
    _require(left_type, NUM, what)
    _require(right_type, NUM, what)
    both_int = left_type == INT and right_type == INT
    if symbol == "/":
        result_type: Type = NUM

        def operation(values: Mapping[str, object]) -> object:
            a, b = left(values), right(values)
            if b == 0:
                raise EvalFailure("division by zero")
            return _number(Fraction(a) / b)  # type: ignore[arg-type,operator]

    elif symbol == "//":
        result_type = INT

        def operation(values: Mapping[str, object]) -> object:
            a, b = left(values), right(values)
            if b == 0:
                raise EvalFailure("division by zero")
            return _number(a // b)  # type: ignore[operator]

    elif symbol == "%":
        result_type = INT if both_int else NUM

        def operation(values: Mapping[str, object]) -> object:
            a, b = left(values), right(values)
            if b == 0:
                raise EvalFailure("division by zero")
            return _number(a % b)  # type: ignore[operator]

    else:
        result_type = INT if both_int else NUM
        if symbol == "+":

            def operation(values: Mapping[str, object]) -> object:
                return _number(left(values) + right(values))  # type: ignore[operator]

        elif symbol == "-":

            def operation(values: Mapping[str, object]) -> object:
                return _number(left(values) - right(values))  # type: ignore[operator]

        else:

            def operation(values: Mapping[str, object]) -> object:
                return _number(left(values) * right(values))  # type: ignore[operator]

    if left_type is None or right_type is None:
        result_type = None if symbol not in ("/", "//") else result_type
    return operation, result_type


def _build_unary(node: ast.UnaryOp, types: Mapping[str, Type]) -> tuple[Evaluator, Type]:
    operand, kind = _build(node.operand, types)
    if isinstance(node.op, ast.Not):
        _require(kind, BOOL, "'not'")
        return (lambda values: not operand(values)), BOOL
    _require(kind, NUM, f"unary '{_OPERATORS[type(node.op)]}'")
    if isinstance(node.op, ast.USub):
        return (lambda values: -operand(values)), kind  # type: ignore[operator]
    return operand, kind


def _build_boolop(node: ast.BoolOp, types: Mapping[str, Type]) -> tuple[Evaluator, Type]:
    word = _OPERATORS[type(node.op)]
    parts = []
    for value in node.values:
        part, kind = _build(value, types)
        _require(kind, BOOL, f"'{word}'")
        parts.append(part)
    if isinstance(node.op, ast.And):

        def both(values: Mapping[str, object]) -> object:
            return all(part(values) for part in parts)

        return both, BOOL

    def either(values: Mapping[str, object]) -> object:
        return any(part(values) for part in parts)

    return either, BOOL


_COMPARE: dict[str, Callable[[object, object], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,  # type: ignore[operator]
    "<=": lambda a, b: a <= b,  # type: ignore[operator]
    ">": lambda a, b: a > b,  # type: ignore[operator]
    ">=": lambda a, b: a >= b,  # type: ignore[operator]
}


def _build_compare(node: ast.Compare, types: Mapping[str, Type]) -> tuple[Evaluator, Type]:
    operands = [_build(node.left, types)]
    operands.extend(_build(item, types) for item in node.comparators)
    symbols = [_OPERATORS[type(op)] for op in node.ops]
    for index, symbol in enumerate(symbols):
        left_type, right_type = operands[index][1], operands[index + 1][1]
        if left_type is None or right_type is None:
            continue
        left_family, right_family = _family(left_type), _family(right_type)
        if left_family is None or right_family is None:
            raise ExpressionError(f"'{symbol}' cannot compare values of mixed type")
        if left_family != right_family:
            raise ExpressionError(
                f"'{symbol}' cannot compare {describe_type(left_type)} "
                f"with {describe_type(right_type)}"
            )
        if symbol not in ("==", "!=") and left_family == "boolean":
            raise ExpressionError(f"'{symbol}' cannot order booleans")
    functions = [operand[0] for operand in operands]
    tests = [_COMPARE[symbol] for symbol in symbols]

    def compare(values: Mapping[str, object]) -> object:
        left = functions[0](values)
        for test, function in zip(tests, functions[1:], strict=True):
            right = function(values)
            if not test(left, right):
                return False
            left = right
        return True

    return compare, BOOL


def _build_ifexp(node: ast.IfExp, types: Mapping[str, Type]) -> tuple[Evaluator, Type]:
    test, test_type = _build(node.test, types)
    _require(test_type, BOOL, "'if ... else' condition")
    body, body_type = _build(node.body, types)
    orelse, orelse_type = _build(node.orelse, types)
    kind = None if body_type is None or orelse_type is None else body_type | orelse_type

    def choose(values: Mapping[str, object]) -> object:
        return body(values) if test(values) else orelse(values)

    return choose, kind


def _build_call(node: ast.Call, types: Mapping[str, Type]) -> tuple[Evaluator, Type]:
    name = node.func.id  # type: ignore[attr-defined]
    built = [_build(argument, types) for argument in node.args]
    for _, kind in built:
        _require(kind, NUM, f"{name}()")
    arguments = [function for function, _ in built]
    if name in ("min", "max"):
        pick = min if name == "min" else max
        kinds = [kind for _, kind in built]
        if any(kind is None for kind in kinds):
            result: Type = None
        else:
            result = INT if all(kind == INT for kind in kinds) else NUM

        def extreme(values: Mapping[str, object]) -> object:
            return pick(argument(values) for argument in arguments)  # type: ignore[type-var]

        return extreme, result
    argument = arguments[0]
    if name == "abs":
        return (lambda values: abs(argument(values))), built[0][1]  # type: ignore[arg-type]
    if name == "floor":
        return (lambda values: math.floor(argument(values))), INT  # type: ignore[call-overload]
    if name == "ceil":
        return (lambda values: math.ceil(argument(values))), INT  # type: ignore[call-overload]
    return (lambda values: _round(argument(values))), INT  # type: ignore[arg-type]


def evaluate(evaluator: Evaluator, values: Mapping[str, object]) -> object:
    """Run ``evaluator``; any run-time failure (including a defensive type error) is EvalFailure."""
    try:
        return evaluator(values)
    except EvalFailure:
        raise
    except (TypeError, ZeroDivisionError, OverflowError, ValueError) as exc:
        raise EvalFailure(str(exc)) from None
